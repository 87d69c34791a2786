"""The UPI Core adapter: pure request building and a closed response mapping, plus a thin client.

The contract (served by the sandbox in :mod:`providers.simulator`):

``POST {base}/upi/v1/collect`` with ``{merchant_ref, idempotency_key, amount_paisa,
currency, payer_vpa, note}`` answers 200 with
``{status: SUCCESS|FAILED|PENDING, txn_id, rrn, approval_code, error_code,
error_message, merchant_ref, idempotency_key}``; 400 ``{"error": {...}}`` when the
body is invalid (nothing charged); 422 when the idempotency key was already used
with other parameters (the key may have charged: we resolve by status inquiry).
A repeated key returns the original answer and never charges twice.

``GET {base}/upi/v1/status/{idempotency_key}`` answers 200 with the same body as the
collect (``PENDING`` while the collect is still being processed) or 404
``{"status": "NOT_FOUND"}`` when the provider never received the key.

``GET {base}/health`` answers 200 when the provider is up.

Mapping (closed; anything not listed is ``UNKNOWN``): ``SUCCESS`` -> ``APPROVED``,
``FAILED`` -> ``DECLINED`` with the NPCI code normalised through :data:`DECLINE_CODES`
(an unlisted code on a ``FAILED`` becomes the generic, non-retriable
``provider_declined``: the provider did say no), ``PENDING`` -> ``PENDING``, 400 ->
``DECLINED`` (``provider_rejected_request``), 404 ``NOT_FOUND`` on a status inquiry
-> ``NOT_SENT``. A ``SUCCESS`` without a ``txn_id``, or an answer naming another
idempotency key or merchant ref, is garbled and therefore ``UNKNOWN``.

Refunds. ``POST {base}/upi/v1/refunds`` with ``{merchant_ref (our refund_id),
payment_ref (the payment id), original_txn_id, idempotency_key, amount_paisa,
currency, reason}`` answers 200 with ``{status: SUCCESS|FAILED|PENDING,
refund_txn_id, merchant_ref, payment_ref, original_txn_id, idempotency_key,
amount_paisa, currency, error_code, error_message}``, 400 on an invalid body, 422
when the key was used for another refund; idempotent like collects. ``GET
{base}/upi/v1/refunds/{idempotency_key}`` is the refund status inquiry (404
``NOT_FOUND`` when never received).

Refund mapping (closed; anything not listed is ``UNKNOWN``): ``SUCCESS`` with a
``refund_txn_id`` -> ``PROCESSED``; ``FAILED`` -> ``FAILED`` with the code normalised
through :data:`REFUND_FAILURE_CODES` (unlisted -> ``provider_refund_failed``);
``PENDING`` -> ``PENDING``; 400 -> ``FAILED`` (``provider_rejected_request``); 404
``NOT_FOUND`` on a refund status inquiry -> ``NOT_SENT``; 422 and every other status
-> ``UNKNOWN``. An answer naming another idempotency key, refund id, payment or amount
is garbled: ``UNKNOWN``. Transport failures follow :mod:`providers.http`: connect
refused -> ``NOT_SENT``, timeout or reset after sending -> ``UNKNOWN``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

import aiohttp

from domain.ports import (
    ChargeRequest,
    ChargeResult,
    ProviderOutcome,
    RefundOutcome,
    RefundRequest,
    RefundResult,
)
from providers.errors import ProviderError, ProviderRequestError
from providers.http import execute

__all__ = [
    "COLLECT_PATH",
    "DECLINE_CODES",
    "GENERIC_DECLINE",
    "GENERIC_REFUND_FAILURE",
    "HEALTH_PATH",
    "MAX_REFUND_REASON_CHARS",
    "PROVIDER_NAME",
    "REFUND_FAILURE_CODES",
    "REFUND_PATH",
    "REFUND_STATUS_PATH",
    "REJECTED_REFUND",
    "REJECTED_REQUEST",
    "STATUS_PATH",
    "Decline",
    "RefundFailure",
    "UpiCoreProvider",
    "UpiStatus",
    "build_collect_request",
    "build_refund_request",
    "map_refund_response",
    "map_refund_status_response",
    "map_response",
    "map_status_response",
    "refund_result_from_error",
    "result_from_error",
]

PROVIDER_NAME: Final = "upi_core"
COLLECT_PATH: Final = "/upi/v1/collect"
STATUS_PATH: Final = "/upi/v1/status/{idempotency_key}"
REFUND_PATH: Final = "/upi/v1/refunds"
REFUND_STATUS_PATH: Final = "/upi/v1/refunds/{idempotency_key}"
HEALTH_PATH: Final = "/health"
HEALTH_TIMEOUT_S: Final = 1.0
MAX_NOTE_CHARS: Final = 50
"""UPI carries at most 50 characters of remark (``tn``)."""
MAX_REFUND_REASON_CHARS: Final = 100
"""UPI Core accepts at most 100 characters of refund reason."""
_MAX_RAW_STATUS_CHARS: Final = 64
_MAX_REFUND_CODE_CHARS: Final = 32
_R = TypeVar("_R", ChargeResult, RefundResult)


class UpiStatus(StrEnum):
    """The transaction statuses UPI Core reports (its vocabulary, not ours)."""

    SUCCESS = "SUCCESS"
    """The payer's account was debited: money moved."""
    FAILED = "FAILED"
    """The collect ended without a debit; ``error_code`` says why."""
    PENDING = "PENDING"
    """The collect was received and awaits the payer (or is still being processed)."""
    NOT_FOUND = "NOT_FOUND"
    """Status inquiry only: the provider never received this idempotency key."""


@dataclass(frozen=True, slots=True)
class Decline:
    """Our normalised reading of one provider decline code."""

    code: str
    """Our decline code (stable, merchant-facing, snake_case)."""
    message: str
    """A message safe to show a merchant."""
    retriable: bool
    """A fresh attempt (usually payer-initiated) can succeed; never an automatic resend."""


DECLINE_CODES: Final[Mapping[str, Decline]] = MappingProxyType(
    {
        "U30": Decline("debit_failed", "The payer's bank could not debit the account.", True),
        "ZM": Decline("incorrect_pin", "The payer entered an incorrect UPI PIN.", True),
        "Z9": Decline("insufficient_funds", "The payer's account has insufficient funds.", True),
        "U69": Decline(
            "collect_expired", "The payer did not approve the collect request in time.", True
        ),
        "ZA": Decline("payer_declined", "The payer declined the collect request.", False),
        "Z6": Decline("pin_tries_exceeded", "The payer exceeded the UPI PIN attempts.", False),
        "Z8": Decline(
            "amount_limit_exceeded", "The amount exceeds the payer's transaction limit.", False
        ),
        "U16": Decline("risk_declined", "The payer's bank declined it for risk reasons.", False),
        "ZH": Decline("invalid_vpa", "The payer's VPA does not exist.", False),
    }
)
"""NPCI response codes UPI Core sends on ``FAILED``, mapped to ours (closed set)."""
GENERIC_DECLINE: Final = Decline(
    "provider_declined", "The payer's bank declined the payment.", False
)
"""A ``FAILED`` whose code is missing or not in :data:`DECLINE_CODES`."""
REJECTED_REQUEST: Final = Decline(
    "provider_rejected_request", "The provider rejected the request as invalid.", False
)
"""HTTP 400 from the provider: nothing was charged and resending cannot help."""


@dataclass(frozen=True, slots=True)
class RefundFailure:
    """Our normalised reading of one provider refund error code."""

    code: str
    """Our failure code (stable, merchant-facing, snake_case)."""
    message: str
    """A message safe to show a merchant."""


REFUND_FAILURE_CODES: Final[Mapping[str, RefundFailure]] = MappingProxyType(
    {
        "REFUND_EXCEEDS": RefundFailure(
            "refund_exceeds_captured",
            "The refund exceeds what the provider still holds for the payment.",
        ),
        "ORIGINAL_NOT_FOUND": RefundFailure(
            "original_not_found", "The provider does not know the original payment."
        ),
        "ORIGINAL_NOT_SUCCESS": RefundFailure(
            "original_not_successful", "The original payment did not succeed at the provider."
        ),
        "REFUND_DECLINED": RefundFailure(
            "refund_declined", "The payer's bank declined the refund."
        ),
    }
)
"""Error codes UPI Core sends on a ``FAILED`` refund, mapped to ours (closed set)."""
GENERIC_REFUND_FAILURE: Final = RefundFailure(
    "provider_refund_failed", "The provider could not process the refund."
)
"""A ``FAILED`` refund whose code is missing or not in :data:`REFUND_FAILURE_CODES`."""
REJECTED_REFUND: Final = RefundFailure(
    "provider_rejected_request", "The provider rejected the refund request as invalid."
)
"""HTTP 400 on a refund: nothing was refunded and resending cannot help."""


def build_collect_request(request: ChargeRequest) -> dict[str, Any]:
    """Build the JSON body of ``POST /upi/v1/collect`` for ``request``.

    The amount stays an integer count of paisa. Raises :class:`ProviderRequestError`
    (``NOT_SENT``, not retriable) when the request cannot be sent: a missing or empty
    ``payment_details["vpa"]``, a non-integer or non-positive amount.
    """
    amount = _positive_amount(request.amount_paisa, "authorize")
    vpa = request.payment_details.get("vpa")
    if not isinstance(vpa, str) or not vpa.strip():
        raise ProviderRequestError(
            "payment_details.vpa is required for UPI", provider=PROVIDER_NAME, operation="authorize"
        )
    return {
        "merchant_ref": request.payment_id,
        "idempotency_key": request.idempotency_key,
        "amount_paisa": amount,
        "currency": request.currency,
        "payer_vpa": vpa.strip(),
        "note": request.description[:MAX_NOTE_CHARS],
    }


def map_response(
    status_code: int,
    body: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    merchant_ref: str | None = None,
) -> ChargeResult:
    """Map a UPI Core collect (or status) answer onto a :class:`ChargeResult`.

    Closed: only the combinations in the module docstring map to a definite outcome;
    everything else is ``UNKNOWN``. When ``idempotency_key`` / ``merchant_ref`` are
    given, an answer that names different ones is garbled and ``UNKNOWN``.
    """
    raw_status = _raw_status(body)
    extra = {"http_status": str(status_code)}
    if status_code == 400:
        provider_code = _error_code(body)
        if provider_code:
            extra["provider_error_code"] = provider_code
        return _declined(REJECTED_REQUEST, raw_status, extra)
    if status_code != 200:
        return _unknown(raw_status, extra, "unexpected_http_status")
    if _mismatch(body, "idempotency_key", idempotency_key) or _mismatch(
        body, "merchant_ref", merchant_ref
    ):
        return _unknown(raw_status, extra, "answer_for_another_request")

    status = body.get("status")
    if status == UpiStatus.SUCCESS:
        txn_id = _text(body, "txn_id")
        if txn_id is None:
            return _unknown(raw_status, extra, "success_without_txn_id")
        return ChargeResult(
            outcome=ProviderOutcome.APPROVED,
            provider=PROVIDER_NAME,
            external_txn_id=txn_id,
            rrn=_digits(body, "rrn", 12),
            approval_code=_digits(body, "approval_code", 6),
            raw_status=raw_status,
            extra=extra,
        )
    if status == UpiStatus.FAILED:
        provider_code = _error_code(body)
        decline = DECLINE_CODES.get(provider_code or "", GENERIC_DECLINE)
        if provider_code:
            extra["provider_decline_code"] = provider_code
        return _declined(decline, raw_status, extra, external_txn_id=_text(body, "txn_id"))
    if status == UpiStatus.PENDING:
        return ChargeResult(
            outcome=ProviderOutcome.PENDING,
            provider=PROVIDER_NAME,
            external_txn_id=_text(body, "txn_id"),
            raw_status=raw_status,
            extra=extra,
        )
    return _unknown(raw_status, extra, "unrecognised_status")


def map_status_response(
    status_code: int,
    body: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    merchant_ref: str | None = None,
) -> ChargeResult:
    """Map a status-inquiry answer: 404 ``NOT_FOUND`` is ``NOT_SENT``, else as :func:`map_response`.

    Only a 404 whose JSON body says ``NOT_FOUND`` counts: a bare 404 (wrong base URL,
    a proxy) is not proof that the provider never saw the request.
    """
    if _is_not_found(status_code, body):
        return _CHARGE.not_found(body, idempotency_key)
    return map_response(
        status_code, body, idempotency_key=idempotency_key, merchant_ref=merchant_ref
    )


def result_from_error(error: ProviderError) -> ChargeResult:
    """Turn a transport failure into a result (the adapter boundary never raises).

    ``retriable`` on the result means "a new attempt is safe", so it is true only for a
    retriable ``NOT_SENT``; an ``UNKNOWN`` is never retriable here (resolve it first).
    """
    return _CHARGE.from_error(error)


def build_refund_request(request: RefundRequest) -> dict[str, Any]:
    """Build the JSON body of ``POST /upi/v1/refunds`` for ``request``.

    Raises :class:`ProviderRequestError` (``NOT_SENT``, not retriable) when the refund
    cannot be sent: a non-integer or non-positive amount, or an empty refund id,
    payment id or original ``provider_txn_id``.
    """
    amount = _positive_amount(request.amount_paisa, "refund")
    for name in ("refund_id", "payment_id", "provider_txn_id", "idempotency_key"):
        value = getattr(request, name)
        if not isinstance(value, str) or not value.strip():
            raise ProviderRequestError(
                f"{name} is required for a UPI refund", provider=PROVIDER_NAME, operation="refund"
            )
    return {
        "merchant_ref": request.refund_id,
        "payment_ref": request.payment_id,
        "original_txn_id": request.provider_txn_id,
        "idempotency_key": request.idempotency_key,
        "amount_paisa": amount,
        "currency": request.currency,
        "reason": request.reason[:MAX_REFUND_REASON_CHARS],
    }


def map_refund_response(
    status_code: int,
    body: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    refund_id: str | None = None,
    payment_id: str | None = None,
    amount_paisa: int | None = None,
) -> RefundResult:
    """Map a UPI Core refund (or refund status) answer onto a :class:`RefundResult`.

    Closed: only the combinations in the module docstring map to a definite outcome;
    everything else is ``UNKNOWN``. The expected ids and amount, when given, must
    match the answer's (when present there), else the answer is garbled.
    """
    raw_status = _raw_status(body)
    extra = {"http_status": str(status_code)}
    if status_code == 400:
        provider_code = _error_code(body, _MAX_REFUND_CODE_CHARS)
        if provider_code:
            extra["provider_error_code"] = provider_code
        return _refund_failed(REJECTED_REFUND, raw_status, extra)
    if status_code != 200:
        return _refund_unknown(raw_status, extra, "unexpected_http_status")
    if (
        _mismatch(body, "idempotency_key", idempotency_key)
        or _mismatch(body, "merchant_ref", refund_id)
        or _mismatch(body, "payment_ref", payment_id)
        or _amount_mismatch(body, amount_paisa)
    ):
        return _refund_unknown(raw_status, extra, "answer_for_another_request")

    status = body.get("status")
    if status == UpiStatus.SUCCESS:
        refund_txn_id = _text(body, "refund_txn_id")
        if refund_txn_id is None:
            return _refund_unknown(raw_status, extra, "success_without_refund_txn_id")
        return RefundResult(
            outcome=RefundOutcome.PROCESSED,
            provider=PROVIDER_NAME,
            external_refund_id=refund_txn_id,
            raw_status=raw_status,
            extra=extra,
        )
    if status == UpiStatus.FAILED:
        provider_code = _error_code(body, _MAX_REFUND_CODE_CHARS)
        failure = REFUND_FAILURE_CODES.get(provider_code or "", GENERIC_REFUND_FAILURE)
        if provider_code:
            extra["provider_error_code"] = provider_code
        return _refund_failed(
            failure, raw_status, extra, external_refund_id=_text(body, "refund_txn_id")
        )
    if status == UpiStatus.PENDING:
        return RefundResult(
            outcome=RefundOutcome.PENDING,
            provider=PROVIDER_NAME,
            external_refund_id=_text(body, "refund_txn_id"),
            raw_status=raw_status,
            extra=extra,
        )
    return _refund_unknown(raw_status, extra, "unrecognised_status")


def map_refund_status_response(
    status_code: int,
    body: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    refund_id: str | None = None,
) -> RefundResult:
    """Map a refund status inquiry: 404 ``NOT_FOUND`` is ``NOT_SENT``, else as
    :func:`map_refund_response` (a bare 404 proves nothing and is ``UNKNOWN``)."""
    if _is_not_found(status_code, body):
        return _REFUND.not_found(body, idempotency_key)
    return map_refund_response(
        status_code, body, idempotency_key=idempotency_key, refund_id=refund_id
    )


def refund_result_from_error(error: ProviderError) -> RefundResult:
    """Turn a transport failure on a refund call into a result (never raises).

    ``retriable`` is true only for a retriable ``NOT_SENT``: an ``UNKNOWN`` refund is
    resolved by :meth:`UpiCoreProvider.refund_status`, never re-sent with a new key.
    """
    return _REFUND.from_error(error)


class UpiCoreProvider:
    """UPI Core behind :class:`domain.ports.PaymentProvider`; the constructor does no IO."""

    name: str = PROVIDER_NAME

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        timeout_s: float,
        *,
        health_timeout_s: float = HEALTH_TIMEOUT_S,
    ) -> None:
        if timeout_s <= 0 or health_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._health_timeout_s = health_timeout_s

    def __repr__(self) -> str:
        return f"UpiCoreProvider(base_url={self._base_url!r}, timeout_s={self._timeout_s})"

    async def authorize(self, request: ChargeRequest) -> ChargeResult:
        """Send a collect for ``request`` with its idempotency key; never raises for outcomes.

        Connection refused -> ``NOT_SENT``; timeout or reset after sending -> ``UNKNOWN``.
        If the calling task is cancelled mid-call the cancellation propagates and the
        attempt must be treated as ``UNKNOWN`` (resolve with :meth:`status`).
        """
        try:
            payload = build_collect_request(request)
            status, body = await self._send(
                "POST", COLLECT_PATH, "authorize", payload, request.idempotency_key
            )
        except ProviderError as err:
            return result_from_error(err)
        return map_response(
            status, body, idempotency_key=request.idempotency_key, merchant_ref=request.payment_id
        )

    async def status(self, payment_id: str, idempotency_key: str) -> ChargeResult:
        """Ask for the outcome of the attempt sent with ``idempotency_key``.

        ``NOT_SENT`` (provider answered ``NOT_FOUND``) is only conclusive once the
        original call is over (its deadline has passed): a request still in transit
        is not yet known to the provider.
        """
        try:
            status, body = await self._send("GET", _inquiry(STATUS_PATH, idempotency_key), "status")
        except ProviderError as err:
            return result_from_error(err)
        return map_status_response(
            status, body, idempotency_key=idempotency_key, merchant_ref=payment_id
        )

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Send a refund of ``request.provider_txn_id`` with its idempotency key.

        Never raises for outcomes: connection refused -> ``NOT_SENT``; timeout or reset
        after sending -> ``UNKNOWN`` (resolve with :meth:`refund_status`). A cancelled
        call must be treated as ``UNKNOWN`` too.
        """
        try:
            payload = build_refund_request(request)
            status, body = await self._send(
                "POST", REFUND_PATH, "refund", payload, request.idempotency_key
            )
        except ProviderError as err:
            return refund_result_from_error(err)
        return map_refund_response(
            status,
            body,
            idempotency_key=request.idempotency_key,
            refund_id=request.refund_id,
            payment_id=request.payment_id,
            amount_paisa=request.amount_paisa,
        )

    async def refund_status(self, refund_id: str, idempotency_key: str) -> RefundResult:
        """Ask for the outcome of the refund sent with ``idempotency_key``.

        ``NOT_SENT`` is only conclusive once the original refund call is over.
        """
        try:
            status, body = await self._send(
                "GET", _inquiry(REFUND_STATUS_PATH, idempotency_key), "refund_status"
            )
        except ProviderError as err:
            return refund_result_from_error(err)
        return map_refund_status_response(
            status, body, idempotency_key=idempotency_key, refund_id=refund_id
        )

    async def _send(
        self,
        method: str,
        path: str,
        operation: str,
        payload: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One call with the call timeout; a ``payload`` is sent with its idempotency key."""
        return await execute(
            self._session,
            method,
            self._base_url + path,
            json=payload,
            headers=None if idempotency_key is None else {"Idempotency-Key": idempotency_key},
            timeout_s=self._timeout_s,
            provider=PROVIDER_NAME,
            operation=operation,
        )

    async def health(self) -> bool:
        """True when ``GET /health`` answers 200 within the health timeout (1 s)."""
        try:
            status, _ = await execute(
                self._session,
                "GET",
                self._base_url + HEALTH_PATH,
                timeout_s=self._health_timeout_s,
                provider=PROVIDER_NAME,
                operation="health",
            )
        except ProviderError:
            return False
        return status == 200


@dataclass(frozen=True, slots=True)
class _Results(Generic[_R]):
    """The results one operation kind (collects or refunds) shares the shape of."""

    result: Callable[..., _R]
    """:class:`ChargeResult` or :class:`RefundResult`."""
    outcome: Callable[[str], Any]
    """:class:`ProviderOutcome` or :class:`RefundOutcome` (same values where they meet)."""

    def unknown(self, raw_status: str | None, extra: dict[str, str], reason: str) -> _R:
        return self.result(
            outcome=self.outcome(ProviderOutcome.UNKNOWN.value),
            provider=PROVIDER_NAME,
            raw_status=raw_status,
            extra={**extra, "reason": reason},
        )

    def not_found(self, body: Mapping[str, Any], idempotency_key: str | None) -> _R:
        """A status inquiry answered 404 ``NOT_FOUND``: ``NOT_SENT``, unless it names
        another idempotency key (garbled: ``UNKNOWN``)."""
        if _mismatch(body, "idempotency_key", idempotency_key):
            return self.unknown(UpiStatus.NOT_FOUND.value, {}, "answer_for_another_request")
        return self.result(
            outcome=self.outcome(ProviderOutcome.NOT_SENT.value),
            provider=PROVIDER_NAME,
            raw_status=UpiStatus.NOT_FOUND.value,
            retriable=True,
            extra={"http_status": "404"},
        )

    def from_error(self, error: ProviderError) -> _R:
        return self.result(
            outcome=self.outcome(error.outcome.value),
            provider=PROVIDER_NAME,
            retriable=error.outcome is ProviderOutcome.NOT_SENT and error.retriable,
            extra={"error": type(error).__name__, "detail": error.message[:200]},
        )


_CHARGE: Final = _Results(ChargeResult, ProviderOutcome)
_REFUND: Final = _Results(RefundResult, RefundOutcome)


def _positive_amount(amount: object, operation: str) -> int:
    """``amount`` when it is a positive integer (paisa); else the call is never sent."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ProviderRequestError(
            f"amount_paisa must be a positive integer, got {type(amount).__name__}",
            provider=PROVIDER_NAME,
            operation=operation,
        )
    return amount


def _is_not_found(status_code: int, body: Mapping[str, Any]) -> bool:
    """A 404 whose JSON body says ``NOT_FOUND`` (a bare 404 proves nothing)."""
    return status_code == 404 and body.get("status") == UpiStatus.NOT_FOUND


def _inquiry(path: str, idempotency_key: str) -> str:
    return path.format(idempotency_key=quote(idempotency_key, safe=""))


def _declined(
    decline: Decline,
    raw_status: str | None,
    extra: dict[str, str],
    *,
    external_txn_id: str | None = None,
) -> ChargeResult:
    return ChargeResult(
        outcome=ProviderOutcome.DECLINED,
        provider=PROVIDER_NAME,
        external_txn_id=external_txn_id,
        decline_code=decline.code,
        decline_message=decline.message,
        raw_status=raw_status,
        retriable=decline.retriable,
        extra=extra,
    )


def _unknown(raw_status: str | None, extra: dict[str, str], reason: str) -> ChargeResult:
    return _CHARGE.unknown(raw_status, extra, reason)


def _refund_failed(
    failure: RefundFailure,
    raw_status: str | None,
    extra: dict[str, str],
    *,
    external_refund_id: str | None = None,
) -> RefundResult:
    return RefundResult(
        outcome=RefundOutcome.FAILED,
        provider=PROVIDER_NAME,
        external_refund_id=external_refund_id,
        failure_code=failure.code,
        failure_message=failure.message,
        raw_status=raw_status,
        extra=extra,
    )


def _refund_unknown(raw_status: str | None, extra: dict[str, str], reason: str) -> RefundResult:
    return _REFUND.unknown(raw_status, extra, reason)


def _raw_status(body: Mapping[str, Any]) -> str | None:
    status = body.get("status")
    return status[:_MAX_RAW_STATUS_CHARS] if isinstance(status, str) else None


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def _digits(body: Mapping[str, Any], key: str, length: int) -> str | None:
    value = _text(body, key)
    if value is None or len(value) != length or not (value.isascii() and value.isdigit()):
        return None
    return value


def _error_code(body: Mapping[str, Any], max_chars: int = 16) -> str | None:
    code = body.get("error_code")
    if code is None and isinstance(body.get("error"), Mapping):
        code = body["error"].get("code")
    return code[:max_chars] if isinstance(code, str) and code else None


def _mismatch(body: Mapping[str, Any], key: str, expected: object) -> bool:
    return expected is not None and key in body and body[key] != expected


def _amount_mismatch(body: Mapping[str, Any], expected: int | None) -> bool:
    if expected is None or "amount_paisa" not in body:
        return False
    amount = body["amount_paisa"]
    return type(amount) is not int or amount != expected
