"""Pure decisions of the payment pipeline: what a provider's answer means for a payment.

The agents call these with decoded events and write what they return; no IO here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.events import PaymentRequested
from domain.lifecycle import Outcome
from domain.ports import ChargeRequest, ChargeResult, ProviderOutcome

PROVIDER_UNAVAILABLE = "provider_unavailable"
"""Failure code when no provider could be reached; certainly no money moved."""
QUEUE_UNAVAILABLE = "queue_unavailable"
"""Failure code when an accepted payment could not be queued; nothing was sent."""


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


def charge_outcome(
    result: ChargeResult, now: datetime, payment_method: str = "UPI"
) -> tuple[Outcome, dict[str, Any]]:
    """The lifecycle outcome of a provider result, and the columns it sets.

    APPROVED -> captured (rrn, approval code); DECLINED -> declined with the provider's
    normalised code; NOT_SENT (after retries) -> declined ``provider_unavailable``,
    since nothing reached a provider; UNKNOWN stays unknown (resolved by inquiry,
    never by charging again); PENDING waits: for UPI it means a collect request sits
    in the payer's app, i.e. the payment requires the payer's action (and expires at
    ``expires_at`` if they never approve it).
    """
    common: dict[str, Any] = {"provider": result.provider}
    if result.external_txn_id:
        common["external_txn_id"] = result.external_txn_id
    match result.outcome:
        case ProviderOutcome.APPROVED:
            return Outcome.CAPTURED, {
                **common,
                "processed_at": now,
                "rrn": result.rrn,
                "approval_code": result.approval_code,
            }
        case ProviderOutcome.DECLINED:
            return Outcome.DECLINED, {
                **common,
                "processed_at": now,
                "failure_code": result.decline_code or "declined",
                "failure_message": result.decline_message or "The payment was declined.",
            }
        case ProviderOutcome.NOT_SENT:
            return Outcome.DECLINED, {
                "provider": result.provider,
                "processed_at": now,
                "failure_code": PROVIDER_UNAVAILABLE,
                "failure_message": "The payment provider could not be reached; nothing charged.",
            }
        case ProviderOutcome.UNKNOWN:
            return Outcome.UNKNOWN, common
        case ProviderOutcome.PENDING:
            if payment_method == "UPI":
                return Outcome.ACTION_REQUIRED, common
            return Outcome.PENDING, common
