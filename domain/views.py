"""The merchant-facing JSON view of a payment, shared by the API and webhooks.

One function renders a payment for ``GET /api/v1/payments/{id}``, for the create
response and for webhook payloads, so the three can never drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.status import PaymentStatus

WEBHOOK_EVENT_TYPES = {
    PaymentStatus.CREATED: "payment.created",
    PaymentStatus.PENDING: "payment.pending",
    PaymentStatus.REQUIRES_ACTION: "payment.requires_action",
    PaymentStatus.AUTHORIZED: "payment.authorized",
    PaymentStatus.SUCCESS: "payment.success",
    PaymentStatus.FAILED: "payment.failed",
    PaymentStatus.CANCELLED: "payment.cancelled",
    PaymentStatus.EXPIRED: "payment.expired",
    PaymentStatus.UNKNOWN: "payment.unknown",
    PaymentStatus.PARTIALLY_REFUNDED: "payment.partially_refunded",
    PaymentStatus.REFUNDED: "payment.refunded",
}
"""The webhook event type announced for each status a payment enters."""


def isoformat(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z`` and whole seconds, as the spec's examples show."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def payment_view(payment: Mapping[str, Any]) -> dict[str, Any]:
    """Render a payment (a database row or an event as a mapping) for merchants.

    Keys follow the product brief's response examples; absent optional values
    are ``null`` so the shape never changes between states.
    """
    gateway_response = None
    if payment.get("rrn") or payment.get("approval_code"):
        gateway_response = {
            "rrn": payment.get("rrn"),
            "approval_code": payment.get("approval_code"),
        }
    failure = None
    if payment.get("failure_code"):
        failure = {"code": payment["failure_code"], "message": payment.get("failure_message")}
    return {
        "payment_id": payment["payment_id"],
        "merchant_id": payment["merchant_id"],
        "user_id": payment["user_id"],
        "status": payment["status"],
        "amount_paisa": payment["amount_paisa"],
        "fees_paisa": payment["fees_paisa"],
        "refunded_paisa": payment.get("refunded_paisa") or 0,
        "currency": str(payment["currency"]).strip(),
        "payment_method": payment["payment_method"],
        "description": payment.get("description") or "",
        "metadata": dict(payment.get("metadata") or {}),
        "provider": payment.get("provider"),
        "external_txn_id": payment.get("external_txn_id"),
        "gateway_response": gateway_response,
        "failure": failure,
        "processed_at": isoformat(payment.get("processed_at")),
        "expires_at": isoformat(payment.get("expires_at")),
        "created_at": isoformat(payment.get("created_at")),
    }
