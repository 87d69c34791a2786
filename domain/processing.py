"""Pure decisions of the payment pipeline: what a provider's answer does to a payment.

The agents call these with decoded events and write what they return; no IO here.
"""

from __future__ import annotations

from datetime import datetime

from domain.events import PaymentRequested, PaymentStatusChanged
from domain.ports import ChargeRequest, ChargeResult, ProviderOutcome
from domain.status import PaymentStatus

PROVIDER_UNAVAILABLE = "provider_unavailable"
"""Failure code when no provider could be reached; certainly no money moved."""


def charge_request(
    request: PaymentRequested, attempt_no: int, idempotency_key: str
) -> ChargeRequest:
    """The provider call for one attempt of a requested payment."""
    return ChargeRequest(
        payment_id=request.payment_id,
        attempt_no=attempt_no,
        idempotency_key=idempotency_key,
        amount_paisa=request.amount_paisa,
        currency=request.currency,
        payment_method=request.payment_method,
        payment_details=dict(request.payment_details),
        description=request.description,
    )


def after_charge(
    current: PaymentStatusChanged, result: ChargeResult, now: datetime
) -> PaymentStatusChanged | None:
    """The status event a provider result causes, or ``None`` when the status stays.

    APPROVED -> SUCCESS; DECLINED -> FAILED with the provider's normalised code;
    UNKNOWN -> UNKNOWN (resolved later by inquiry, never by charging again);
    NOT_SENT -> FAILED ``provider_unavailable`` (nothing reached the provider);
    PENDING -> no change yet.
    """
    common = {"provider": result.provider, "external_txn_id": result.external_txn_id}
    match result.outcome:
        case ProviderOutcome.APPROVED:
            return current.next(
                PaymentStatus.SUCCESS,
                now,
                processed_at=now,
                rrn=result.rrn,
                approval_code=result.approval_code,
                **common,
            )
        case ProviderOutcome.DECLINED:
            return current.next(
                PaymentStatus.FAILED,
                now,
                processed_at=now,
                failure_code=result.decline_code or "declined",
                failure_message=result.decline_message or "The payment was declined.",
                **common,
            )
        case ProviderOutcome.UNKNOWN:
            if current.status == PaymentStatus.UNKNOWN.value:
                return None
            return current.next(PaymentStatus.UNKNOWN, now, **common)
        case ProviderOutcome.NOT_SENT:
            return current.next(
                PaymentStatus.FAILED,
                now,
                processed_at=now,
                failure_code=PROVIDER_UNAVAILABLE,
                failure_message="The payment provider could not be reached; nothing was charged.",
                provider=result.provider,
            )
        case ProviderOutcome.PENDING:
            return None
