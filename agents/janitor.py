"""Janitor timers: expire payments nobody completed, and relay the event outbox.

Consumes: nothing (timers on every worker; row locks make them safe to run in parallel)
Produces: ``payments.events`` (PaymentStatusChanged EXPIRED, and any outbox leftovers)
Tables:   none
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg

from domain.lifecycle import Moved, Operation, Outcome
from sinks import payments
from sinks.metrics import agent_events_total
from streams import outbox

if TYPE_CHECKING:
    import faust

    from streams.app import PipelineTopics
    from streams.resources import WorkerResources

log = logging.getLogger(__name__)

EXPIRY_INTERVAL_S = 2.0
RELAY_INTERVAL_S = 2.0
EXPIRY_BATCH = 200


async def expire_due(topic: faust.TopicT, pool: asyncpg.Pool, now: datetime) -> int:
    """Expire payments still waiting for the payer after ``expires_at``; returns how many."""
    async with pool.acquire() as conn:
        due = await conn.fetch(
            "SELECT payment_id FROM payments WHERE status IN ('CREATED', 'REQUIRES_ACTION')"
            " AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
            now,
            EXPIRY_BATCH,
        )
        results = [
            await payments.transition(
                conn, row["payment_id"], Operation.EXPIRE, Outcome.OK, now=now
            )
            for row in due
        ]
    moved = [r for r in results if isinstance(r.decision, Moved)]
    await outbox.publish(topic, pool, [r.outbox for r in moved])
    if moved:
        agent_events_total.labels("janitor", "expired").inc(len(moved))
        log.info("expired payments", extra={"count": len(moved)})
    return len(moved)


def register(app: faust.App, topics: PipelineTopics, resources: WorkerResources) -> None:
    """Declare the janitor timers on ``app``."""

    @app.timer(interval=EXPIRY_INTERVAL_S, name="janitor.expire")
    async def expire() -> None:
        try:
            await expire_due(topics.payment_events, await resources.pool(), datetime.now(UTC))
        except Exception:  # a periodic task must outlive a blip; the next tick retries
            log.exception("expiry pass failed")

    @app.timer(interval=RELAY_INTERVAL_S, name="janitor.relay")
    async def relay() -> None:
        try:
            await outbox.relay_once(topics.payment_events, await resources.pool())
        except Exception:  # a periodic task must outlive a blip; the next tick retries
            log.exception("outbox relay pass failed")
