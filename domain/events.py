"""Commands and events that travel on Kafka, as plain frozen dataclasses.

Field names equal the Avro field names in ``schemas/*.avsc`` so the codec maps
them one to one. Money is ``int`` paisa. Nothing card-shaped ever appears here:
``payment_details`` carries only a VPA, a vault token, a bank or wallet code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from domain.ids import event_id
from domain.status import FraudAction, PaymentStatus


@dataclass(frozen=True, slots=True)
class PaymentRequested:
    """Command: a merchant asked us to collect a payment (topic ``payments.requests``)."""

    payment_id: str
    merchant_id: str
    user_id: str
    amount_paisa: int
    fees_paisa: int
    currency: str
    payment_method: str
    payment_details: dict[str, str]
    description: str
    callback_url: str | None
    metadata: dict[str, str]
    created_at: datetime
    expires_at: datetime
    request_id: str


@dataclass(frozen=True, slots=True)
class FraudDecision:
    """The fraud engine's verdict on one payment."""

    action: str = FraudAction.ALLOW.value
    score: int = 0
    reasons: list[str] = field(default_factory=list)
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PaymentScreened:
    """Event: a payment request passed through fraud screening (``payments.screened``)."""

    request: PaymentRequested
    decision: FraudDecision


@dataclass(frozen=True, slots=True)
class PaymentStatusChanged:
    """Event: a payment's status changed; carries the whole payment (``payments.events``).

    It is a snapshot, not a delta, so a sink can upsert the row from any one event;
    ``sequence`` increases by one per change of the same payment, which lets sinks
    and receivers ignore stale or duplicate deliveries.
    """

    payment_id: str
    merchant_id: str
    user_id: str
    sequence: int
    status: str
    previous_status: str | None
    amount_paisa: int
    fees_paisa: int
    currency: str
    payment_method: str
    payment_details: dict[str, str]
    description: str
    callback_url: str | None
    metadata: dict[str, str]
    created_at: datetime
    expires_at: datetime
    occurred_at: datetime
    processed_at: datetime | None = None
    provider: str | None = None
    external_txn_id: str | None = None
    rrn: str | None = None
    approval_code: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    fraud_score: int | None = None
    request_id: str | None = None
    refunded_paisa: int = 0
    operation: str | None = None

    @classmethod
    def first(
        cls,
        request: PaymentRequested,
        status: PaymentStatus,
        occurred_at: datetime,
        **changes: Any,
    ) -> PaymentStatusChanged:
        """The first status event of a payment, built from its request."""
        base = cls(
            payment_id=request.payment_id,
            merchant_id=request.merchant_id,
            user_id=request.user_id,
            sequence=1,
            status=status.value,
            previous_status=PaymentStatus.CREATED.value,
            amount_paisa=request.amount_paisa,
            fees_paisa=request.fees_paisa,
            currency=request.currency,
            payment_method=request.payment_method,
            payment_details=dict(request.payment_details),
            description=request.description,
            callback_url=request.callback_url,
            metadata=dict(request.metadata),
            created_at=request.created_at,
            expires_at=request.expires_at,
            occurred_at=occurred_at,
            request_id=request.request_id,
        )
        return replace(base, **changes) if changes else base

    def next(
        self, status: PaymentStatus, occurred_at: datetime, **changes: Any
    ) -> PaymentStatusChanged:
        """The event that follows this one: ``sequence + 1``, ``previous_status`` set."""
        return replace(
            self,
            sequence=self.sequence + 1,
            status=status.value,
            previous_status=self.status,
            occurred_at=occurred_at,
            **changes,
        )

    @property
    def event_id(self) -> str:
        """The stable id of this change (same on redelivery)."""
        return event_id(self.payment_id, self.sequence)


@dataclass(frozen=True, slots=True)
class RefundRequested:
    """Command: execute a refund the API accepted and reserved (``refunds.requests``)."""

    refund_id: str
    payment_id: str
    merchant_id: str
    amount_paisa: int
    currency: str
    payment_method: str
    provider: str | None
    provider_txn_id: str | None
    reason: str
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A merchant-facing event to deliver (topic ``webhooks.delivery``).

    ``data`` is the object exactly as the API returns it, as a JSON string.
    """

    event_id: str
    event_type: str
    created_at: datetime
    merchant_id: str
    object_type: str
    object_id: str
    sequence: int
    data: str
    callback_url: str | None = None
