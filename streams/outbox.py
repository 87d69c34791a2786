"""Publishing the status-event outbox (``payment_status_history``) to ``payments.events``.

The code that made a change publishes its event at once (:func:`publish`); the relay
timer publishes whatever a crash or a failed send left behind, after a grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg
import faust

from sinks import payments
from sinks.metrics import kafka_messages_produced_total

log = logging.getLogger(__name__)

RELAY_GRACE_S = 5.0
"""The relay leaves events younger than this to the code that wrote them."""


async def send_outbox(topic: faust.TopicT, events: Sequence[payments.OutboxEvent]) -> None:
    """Send encoded events keyed by payment and wait for every broker ack."""
    pending = [
        await topic.send(key=event.payment_id.encode(), value=event.body, headers=event.headers)
        for event in events
    ]
    for delivery in pending:
        await delivery
    kafka_messages_produced_total.labels(topic.get_topic_name()).inc(len(events))


async def publish(
    topic: faust.TopicT, pool: asyncpg.Pool, events: Sequence[payments.OutboxEvent | None]
) -> None:
    """Publish events a transition just wrote, then mark them published."""
    ready = [event for event in events if event is not None]
    if not ready:
        return
    await send_outbox(topic, ready)
    async with pool.acquire() as conn:
        await payments.mark_published(conn, ready)


async def publish_unpublished_for(topic: faust.TopicT, pool: asyncpg.Pool, payment_id: str) -> None:
    """Publish a payment's events that are still in the outbox (e.g. written by the ingress)."""
    async with pool.acquire() as conn, conn.transaction():
        events = await payments.unpublished(conn, payment_id=payment_id)
        if events:
            await send_outbox(topic, events)
            await payments.mark_published(conn, events)


async def relay_once(topic: faust.TopicT, pool: asyncpg.Pool, limit: int = 500) -> int:
    """Publish outbox rows older than the grace period; returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        events = await payments.unpublished(conn, older_than_s=RELAY_GRACE_S, limit=limit)
        if events:
            await send_outbox(topic, events)
            await payments.mark_published(conn, events)
    if events:
        log.info("outbox relay published", extra={"events": len(events)})
    return len(events)
