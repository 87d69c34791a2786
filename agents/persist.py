"""Persistence: status events into PostgreSQL, and their webhook events onto Kafka.

Consumes: ``payments.events`` (PaymentStatusChanged)
Produces: ``webhooks.delivery`` (WebhookEvent), key merchant_id
Tables:   none

The upsert only moves a payment forward (by ``sequence``), so redelivery changes
nothing; the webhook event id is derived from (payment, sequence), so a redelivered
change yields the same event id and delivery deduplicates on it. The input offset
is committed only after both writes (the loop awaits them before the next event).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.events import PaymentStatusChanged, WebhookEvent
from domain.status import PaymentStatus
from domain.views import WEBHOOK_EVENT_TYPES, payment_view
from schemas.errors import SerializationError
from sinks import postgres
from sinks.metrics import agent_events_total, payments_total, sink_writes_total
from streams.codec import acked_after_processing, decode_event, send_record

if TYPE_CHECKING:
    import faust

    from streams.app import PipelineTopics
    from streams.resources import WorkerResources

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


def register(app: faust.App, topics: PipelineTopics, resources: WorkerResources) -> Any:
    """Declare the persistence agent on ``app``."""

    @app.agent(topics.payment_events, name="persist", concurrency=8)
    async def persist(stream: faust.StreamT) -> None:
        async for event in acked_after_processing(stream):
            try:
                change = decode_event(event)
            except SerializationError:
                log.exception("undecodable status event skipped")
                agent_events_total.labels("persist", "undecodable").inc()
                continue
            if not isinstance(change, PaymentStatusChanged):
                agent_events_total.labels("persist", "wrong_type").inc()
                continue
            pool = await resources.pool()
            async with pool.acquire() as conn:
                moved = await postgres.apply_status_change(conn, change)
            sink_writes_total.labels("applied" if moved else "stale").inc()
            if moved:
                payments_total.labels(change.payment_method, change.status, change.currency).inc()
            await send_record(topics.webhooks, change.merchant_id, webhook_event_for(change))
            log.info(
                "payment status recorded",
                extra={
                    "payment_id": change.payment_id,
                    "status": change.status,
                    "sequence": change.sequence,
                    "applied": moved,
                    "at": datetime.now(UTC).isoformat(),
                },
            )
            agent_events_total.labels("persist", "ok").inc()

    return persist
