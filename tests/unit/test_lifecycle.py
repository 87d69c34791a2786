"""The lifecycle table and money rules, table-driven and as a Hypothesis state machine."""

from __future__ import annotations

import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.errors import RequestError
from domain.lifecycle import (
    TRANSITIONS,
    InvalidTransitionError,
    Moved,
    Operation,
    Outcome,
    PaymentState,
    Unchanged,
    allowed_operations,
    decide,
)
from domain.status import PaymentStatus as S

TERMINAL = {s for s in S if s.is_terminal}


def test_terminal_states_have_no_way_out() -> None:
    for (status, _op, _out), _to in TRANSITIONS.items():
        assert status not in TERMINAL, f"{status} must be terminal"


def test_every_status_is_reachable_from_created() -> None:
    reached, frontier = {S.CREATED}, [S.CREATED]
    while frontier:
        current = frontier.pop()
        for (status, _op, _out), target in TRANSITIONS.items():
            if status is current and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(S)


@pytest.mark.parametrize(
    ("status", "operation", "outcome", "expected"),
    [
        (S.CREATED, Operation.SUBMIT, Outcome.OK, S.PENDING),
        (S.PENDING, Operation.PROVIDER_RESULT, Outcome.CAPTURED, S.SUCCESS),
        (S.PENDING, Operation.PROVIDER_RESULT, Outcome.DECLINED, S.FAILED),
        (S.PENDING, Operation.PROVIDER_RESULT, Outcome.UNKNOWN, S.UNKNOWN),
        (S.UNKNOWN, Operation.PROVIDER_RESULT, Outcome.CAPTURED, S.SUCCESS),
        (S.PENDING, Operation.PROVIDER_RESULT, Outcome.ACTION_REQUIRED, S.REQUIRES_ACTION),
        (S.REQUIRES_ACTION, Operation.EXPIRE, Outcome.OK, S.EXPIRED),
        (S.AUTHORIZED, Operation.CAPTURE, Outcome.CAPTURED, S.SUCCESS),
        (S.SUCCESS, Operation.REFUND, Outcome.PARTIAL, S.PARTIALLY_REFUNDED),
        (S.PARTIALLY_REFUNDED, Operation.REFUND, Outcome.FULL, S.REFUNDED),
    ],
)
def test_allowed_transitions(
    status: S, operation: Operation, outcome: Outcome, expected: S
) -> None:
    assert decide(status, operation, outcome) == Moved(expected)


@pytest.mark.parametrize("status", sorted(TERMINAL))
@pytest.mark.parametrize("outcome", list(Outcome))
def test_late_provider_results_never_move_a_terminal_payment(status: S, outcome: Outcome) -> None:
    decision = decide(status, Operation.PROVIDER_RESULT, outcome)
    assert isinstance(decision, Unchanged)


def test_a_capture_reported_after_cancel_is_flagged_for_reversal() -> None:
    decision = decide(S.CANCELLED, Operation.PROVIDER_RESULT, Outcome.CAPTURED)
    assert decision == Unchanged("CANCELLED is terminal", needs_reversal=True)
    assert not decide(S.REFUNDED, Operation.PROVIDER_RESULT, Outcome.CAPTURED).needs_reversal  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("status", "operation"),
    [
        (S.PENDING, Operation.CANCEL),
        (S.SUCCESS, Operation.CANCEL),
        (S.PENDING, Operation.CAPTURE),
        (S.SUCCESS, Operation.CAPTURE),
        (S.FAILED, Operation.REFUND),
    ],
)
def test_merchant_operations_in_the_wrong_state_are_refused(
    status: S, operation: Operation
) -> None:
    outcome = {Operation.CANCEL: Outcome.OK, Operation.CAPTURE: Outcome.CAPTURED}.get(
        operation, Outcome.PARTIAL
    )
    with pytest.raises(InvalidTransitionError) as info:
        decide(status, operation, outcome)
    assert info.value.status == 409
    assert info.value.code == "payment_invalid_state"


def test_allowed_operations_documents_the_table() -> None:
    assert allowed_operations(S.AUTHORIZED) >= {Operation.CAPTURE, Operation.CANCEL}
    assert allowed_operations(S.REFUNDED) == frozenset()


def test_refunds_cannot_exceed_what_was_captured() -> None:
    state = PaymentState(S.SUCCESS, 10_000)
    state = state.reserve_refund(6_000)
    with pytest.raises(RequestError) as info:
        state.reserve_refund(4_001)
    assert info.value.code == "refund_exceeds_captured"
    state, moved = state.settle_refund(6_000, processed=True)
    assert moved == Moved(S.PARTIALLY_REFUNDED)
    state = state.reserve_refund(4_000)
    state, moved = state.settle_refund(4_000, processed=True)
    assert (state.status, state.refunded_paisa, moved) == (S.REFUNDED, 10_000, Moved(S.REFUNDED))


def test_a_failed_refund_gives_the_amount_back() -> None:
    state = PaymentState(S.SUCCESS, 10_000).reserve_refund(10_000)
    state, moved = state.settle_refund(10_000, processed=False)
    assert moved is None
    assert state.refundable_paisa == 10_000
    assert state.status is S.SUCCESS


FACTS = [
    (Operation.SUBMIT, Outcome.OK),
    (Operation.BLOCK, Outcome.OK),
    (Operation.EXPIRE, Outcome.OK),
    *[(Operation.PROVIDER_RESULT, outcome) for outcome in Outcome],
]


class PaymentLifecycle(RuleBasedStateMachine):
    """Random sequences of facts (duplicated, late, out of order) and merchant requests."""

    def __init__(self) -> None:
        super().__init__()
        self.state = PaymentState(S.CREATED, 10_000)
        self.history: list[S] = [S.CREATED]
        self.pending_refunds: list[int] = []

    def _record(self, before: PaymentState) -> None:
        if self.state.sequence != before.sequence:
            assert self.state.sequence == before.sequence + 1
            key_found = any(
                st_ is before.status and to is self.state.status
                for (st_, _op, _out), to in TRANSITIONS.items()
            )
            assert key_found, f"{before.status} -> {self.state.status} is not in the table"
            self.history.append(self.state.status)

    @rule(fact=st.sampled_from(FACTS))
    def a_fact_arrives(self, fact: tuple[Operation, Outcome]) -> None:
        before = self.state
        self.state, _ = self.state.apply(*fact)
        self._record(before)

    @rule(operation=st.sampled_from([Operation.CANCEL, Operation.CAPTURE]))
    def the_merchant_asks(self, operation: Operation) -> None:
        before = self.state
        outcome = Outcome.OK if operation is Operation.CANCEL else Outcome.CAPTURED
        try:
            self.state, _ = self.state.apply(operation, outcome)
        except InvalidTransitionError:
            assert self.state == before
        self._record(before)

    @rule(amount=st.integers(min_value=1, max_value=12_000))
    def a_refund_is_requested(self, amount: int) -> None:
        before = self.state
        try:
            self.state = self.state.reserve_refund(amount)
        except RequestError:
            assert self.state == before
            return
        self.pending_refunds.append(amount)

    @precondition(lambda self: bool(self.pending_refunds))
    @rule(processed=st.booleans(), index=st.integers(min_value=0, max_value=10))
    def a_refund_settles(self, processed: bool, index: int) -> None:
        amount = self.pending_refunds.pop(index % len(self.pending_refunds))
        before = self.state
        self.state, _ = self.state.settle_refund(amount, processed=processed)
        self._record(before)

    @invariant()
    def money_is_never_over_refunded(self) -> None:
        assert 0 <= self.state.refunded_paisa <= self.state.captured_paisa or (
            self.state.refunded_paisa == 0
        )
        assert (
            self.state.refunded_paisa + self.state.refund_reserved_paisa
            <= max(self.state.captured_paisa, 0)
            or self.state.refund_reserved_paisa == 0
        )
        assert self.state.refund_reserved_paisa == sum(self.pending_refunds)

    @invariant()
    def at_most_one_terminal_state_and_it_stays(self) -> None:
        terminals = [status for status in self.history if status.is_terminal]
        assert len(terminals) <= 1
        if terminals:
            assert self.history[-1] is terminals[0]


PaymentLifecycle.TestCase.settings = hsettings(
    max_examples=300, stateful_step_count=40, deadline=None
)
TestPaymentLifecycle = PaymentLifecycle.TestCase
