"""Notification: every payment status event becomes a merchant-facing webhook event.

Consumes: ``payments.events`` (PaymentStatusChanged)
Produces: ``webhooks.delivery`` (WebhookEvent), key merchant_id
Tables:   none

Status changes are written to PostgreSQL where they are decided (see
:mod:`sinks.payments`); this agent only announces them. The webhook event id is
derived from (payment, sequence), so a redelivered change yields the same event id
and delivery deduplicates on it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC
from typing import TYPE_CHECKING, Any

from domain.events import PaymentStatusChanged, WebhookEvent
from domain.status import PaymentStatus
from domain.views import WEBHOOK_EVENT_TYPES, payment_view
from schemas.errors import SerializationError
from sinks.metrics import agent_events_total, payments_total
from streams.codec import acked_after_processing, decode_event, process_reliably, send_record

if TYPE_CHECKING:
    import faust

    from streams.app import PipelineTopics

log = logging.getLogger(__name__)


def webhook_event_for(change: PaymentStatusChanged) -> WebhookEvent:
    """The merchant-facing event announcing ``change`` (pure)."""
    return WebhookEvent(
        event_id=change.event_id,
        event_type=WEBHOOK_EVENT_TYPES[PaymentStatus(change.status)],
        created_at=change.occurred_at.astimezone(UTC),
        merchant_id=change.merchant_id,
        object_type="payment",
        object_id=change.payment_id,
        sequence=change.sequence,
        data=json.dumps(payment_view(dataclasses.asdict(change)), separators=(",", ":")),
        callback_url=change.callback_url,
    )


def register(app: faust.App, topics: PipelineTopics) -> Any:
    """Declare the notification agent on ``app``."""

    @app.agent(topics.payment_events, name="notify", concurrency=8)
    async def notify(stream: faust.StreamT) -> None:
        async for event in acked_after_processing(stream):

            async def handle(event: faust.EventT = event) -> None:
                change = decode_event(event)
                if not isinstance(change, PaymentStatusChanged):
                    raise SerializationError(f"expected PaymentStatusChanged, got {type(change)}")
                payments_total.labels(change.payment_method, change.status, change.currency).inc()
                await send_record(topics.webhooks, change.merchant_id, webhook_event_for(change))
                log.info(
                    "payment status announced",
                    extra={
                        "payment_id": change.payment_id,
                        "status": change.status,
                        "sequence": change.sequence,
                    },
                )
                agent_events_total.labels("notify", "ok").inc()

            await process_reliably("notify", event, handle, topics.dead_letters)

    return notify
