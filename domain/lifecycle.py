"""The payment lifecycle as data: (status, operation, outcome) -> next status.

Every change of a payment's status goes through :func:`decide`, whoever causes it
(the routing agent, a provider callback, the expiry timer, a merchant's cancel,
capture or refund). Two kinds of input are told apart:

* **facts from outside** (provider results, submissions, expiry, fraud blocks) that
  arrive late, twice or out of order: when the table has no entry they are
  *ignored* (:class:`Unchanged`), so a late or duplicate provider callback never
  moves a terminal payment;
* **merchant requests** (capture, cancel, refund) that are *refused* with
  :class:`InvalidTransitionError` (HTTP 409) when the payment is not in a state that
  allows them.

Money rules live in :class:`PaymentState`: a refund can only be reserved out of
what was captured and not yet refunded or reserved, so refunded <= captured holds
whatever the order of requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from domain.errors import RequestError, UnprocessableError
from domain.status import PaymentStatus as S


class Operation(StrEnum):
    """What happens to a payment."""

    SUBMIT = "submit"
    """Accepted and queued for processing (-> PENDING); DECLINED when it could not be
    queued (-> FAILED, nothing was sent to any provider)."""
    BLOCK = "block"
    """Risk checks blocked it before any provider saw it."""
    PROVIDER_RESULT = "provider_result"
    """A provider's answer: to the authorize call, a status inquiry or a callback."""
    CAPTURE = "capture"
    """The merchant captures an authorized card payment."""
    CANCEL = "cancel"
    """The merchant cancels a payment that has not been processed."""
    EXPIRE = "expire"
    """The payer did not complete the payment before ``expires_at``."""
    REFUND = "refund"
    """A refund settled: part of the captured amount, or the rest of it, went back."""


class Outcome(StrEnum):
    """The result an operation reports."""

    OK = "ok"
    CAPTURED = "captured"
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    ACTION_REQUIRED = "action_required"
    PENDING = "pending"
    UNKNOWN = "unknown"
    PARTIAL = "partial"
    FULL = "full"


Op = Operation
Out = Outcome

_PROVIDER_OPEN: Final = {
    (Op.PROVIDER_RESULT, Out.CAPTURED): S.SUCCESS,
    (Op.PROVIDER_RESULT, Out.AUTHORIZED): S.AUTHORIZED,
    (Op.PROVIDER_RESULT, Out.DECLINED): S.FAILED,
    (Op.PROVIDER_RESULT, Out.ACTION_REQUIRED): S.REQUIRES_ACTION,
    (Op.PROVIDER_RESULT, Out.UNKNOWN): S.UNKNOWN,
}

TRANSITIONS: Final[dict[tuple[S, Operation, Outcome], S]] = {
    (S.CREATED, Op.SUBMIT, Out.OK): S.PENDING,
    (S.CREATED, Op.SUBMIT, Out.DECLINED): S.FAILED,
    (S.PENDING, Op.SUBMIT, Out.DECLINED): S.FAILED,
    (S.CREATED, Op.BLOCK, Out.OK): S.FAILED,
    (S.CREATED, Op.CANCEL, Out.OK): S.CANCELLED,
    (S.CREATED, Op.EXPIRE, Out.OK): S.EXPIRED,
    **{(S.PENDING, op, out): to for (op, out), to in _PROVIDER_OPEN.items()},
    **{
        (S.REQUIRES_ACTION, op, out): to
        for (op, out), to in _PROVIDER_OPEN.items()
        if to is not S.REQUIRES_ACTION
    },
    (S.REQUIRES_ACTION, Op.PROVIDER_RESULT, Out.PENDING): S.PENDING,
    (S.REQUIRES_ACTION, Op.CANCEL, Out.OK): S.CANCELLED,
    (S.REQUIRES_ACTION, Op.EXPIRE, Out.OK): S.EXPIRED,
    **{(S.UNKNOWN, op, out): to for (op, out), to in _PROVIDER_OPEN.items() if to is not S.UNKNOWN},
    (S.UNKNOWN, Op.PROVIDER_RESULT, Out.PENDING): S.PENDING,
    (S.AUTHORIZED, Op.CAPTURE, Out.CAPTURED): S.SUCCESS,
    (S.AUTHORIZED, Op.CAPTURE, Out.DECLINED): S.FAILED,
    (S.AUTHORIZED, Op.PROVIDER_RESULT, Out.CAPTURED): S.SUCCESS,
    (S.AUTHORIZED, Op.CANCEL, Out.OK): S.CANCELLED,
    (S.AUTHORIZED, Op.EXPIRE, Out.OK): S.EXPIRED,
    (S.SUCCESS, Op.REFUND, Out.PARTIAL): S.PARTIALLY_REFUNDED,
    (S.SUCCESS, Op.REFUND, Out.FULL): S.REFUNDED,
    (S.PARTIALLY_REFUNDED, Op.REFUND, Out.PARTIAL): S.PARTIALLY_REFUNDED,
    (S.PARTIALLY_REFUNDED, Op.REFUND, Out.FULL): S.REFUNDED,
}
"""The whole lifecycle. Anything not listed is ignored (facts) or refused (requests)."""

MERCHANT_OPERATIONS: Final = frozenset({Op.CAPTURE, Op.CANCEL, Op.REFUND})
"""Operations a merchant asks for: refused, not ignored, when not allowed."""

CAPTURED_STATUSES: Final = frozenset({S.SUCCESS, S.PARTIALLY_REFUNDED, S.REFUNDED})
"""Statuses in which the payment's amount has been collected."""

NOT_CHARGED_TERMINALS: Final = frozenset({S.FAILED, S.CANCELLED, S.EXPIRED})
"""Terminal statuses in which no money is supposed to have moved."""


class InvalidTransitionError(RequestError):
    """A merchant asked for an operation the payment's status does not allow (409)."""

    status = 409

    def __init__(self, status: S, operation: Operation) -> None:
        super().__init__(
            "payment_invalid_state",
            f"cannot {operation.value} a payment in status {status.value}",
            None,
        )
        self.from_status = status
        self.operation = operation


@dataclass(frozen=True, slots=True)
class Moved:
    """The operation changes the payment's status (possibly to the same value)."""

    status: S


@dataclass(frozen=True, slots=True)
class Unchanged:
    """The operation is a late, duplicate or out-of-order fact: nothing changes.

    ``needs_reversal`` flags a provider reporting money collected for a payment we
    consider not charged (a capture after cancel, expiry or failure): the money
    must go back, which a refund of the late charge does.
    """

    reason: str
    needs_reversal: bool = False


def decide(status: S, operation: Operation, outcome: Outcome) -> Moved | Unchanged:
    """What ``operation`` with ``outcome`` does to a payment in ``status``.

    Raises :class:`InvalidTransitionError` for merchant operations the status refuses.
    """
    target = TRANSITIONS.get((status, operation, outcome))
    if target is not None:
        return Moved(target)
    if operation in MERCHANT_OPERATIONS:
        raise InvalidTransitionError(status, operation)
    late_charge = (
        operation is Op.PROVIDER_RESULT
        and outcome is Out.CAPTURED
        and status in NOT_CHARGED_TERMINALS
    )
    if status.is_terminal:
        return Unchanged(f"{status.value} is terminal", needs_reversal=late_charge)
    return Unchanged(f"{operation.value}/{outcome.value} does not apply to {status.value}")


def allowed_operations(status: S) -> frozenset[Operation]:
    """Operations that can change a payment in ``status`` (for docs and ``next_actions``)."""
    return frozenset(op for (st, op, _), _to in TRANSITIONS.items() if st is status)


@dataclass(frozen=True, slots=True)
class PaymentState:
    """The parts of a payment the lifecycle and the money rules need."""

    status: S
    amount_paisa: int
    refunded_paisa: int = 0
    refund_reserved_paisa: int = 0
    sequence: int = 0

    @property
    def captured_paisa(self) -> int:
        """Money collected from the payer (the whole amount once captured)."""
        return self.amount_paisa if self.status in CAPTURED_STATUSES else 0

    @property
    def refundable_paisa(self) -> int:
        """What a new refund may still take: captured - refunded - reserved."""
        return self.captured_paisa - self.refunded_paisa - self.refund_reserved_paisa

    def apply(
        self, operation: Operation, outcome: Outcome
    ) -> tuple[PaymentState, Moved | Unchanged]:
        """The state after a status operation (``sequence`` +1 when it moved)."""
        decision = decide(self.status, operation, outcome)
        if isinstance(decision, Unchanged):
            return self, decision
        return replace(self, status=decision.status, sequence=self.sequence + 1), decision

    def reserve_refund(self, amount_paisa: int) -> PaymentState:
        """Hold ``amount_paisa`` for a new refund, or refuse it (409/422)."""
        if self.status not in (S.SUCCESS, S.PARTIALLY_REFUNDED):
            raise InvalidTransitionError(self.status, Op.REFUND)
        if amount_paisa <= 0:
            raise RequestError(
                "amount_too_small", "a refund must be at least 1 paisa", "amount_paisa"
            )
        if amount_paisa > self.refundable_paisa:
            raise UnprocessableError(
                "refund_exceeds_captured",
                f"amount_paisa {amount_paisa} exceeds the refundable {self.refundable_paisa}"
                " (captured minus refunded and pending refunds)",
                "amount_paisa",
            )
        return replace(self, refund_reserved_paisa=self.refund_reserved_paisa + amount_paisa)

    def settle_refund(
        self, amount_paisa: int, *, processed: bool
    ) -> tuple[PaymentState, Moved | None]:
        """Release a reserved refund: into ``refunded`` when processed, back when failed."""
        if amount_paisa > self.refund_reserved_paisa:
            raise ValueError("settling more than was reserved")
        released = replace(self, refund_reserved_paisa=self.refund_reserved_paisa - amount_paisa)
        if not processed:
            return released, None
        refunded = released.refunded_paisa + amount_paisa
        outcome = Out.FULL if refunded == released.captured_paisa else Out.PARTIAL
        moved_state, decision = replace(released, refunded_paisa=refunded).apply(Op.REFUND, outcome)
        assert isinstance(decision, Moved)
        return moved_state, decision
