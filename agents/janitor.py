"""Janitor timers: expire payments nobody completed, requeue idle refunds, relay the outbox.

Consumes: nothing (timers on every worker; row locks make them safe to run in parallel)
Produces: ``payments.events`` (EXPIRED, and any outbox leftovers), ``refunds.requests``
Tables:   none
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg

from domain.events import RefundRequested
from domain.lifecycle import Moved, Operation, Outcome
from sinks import payments, refunds
from sinks.metrics import agent_events_total
from streams import outbox
from streams.codec import send_record

if TYPE_CHECKING:
    import faust

    from streams.app import PipelineTopics
    from streams.resources import WorkerResources

log = logging.getLogger(__name__)

EXPIRY_INTERVAL_S = 2.0
RELAY_INTERVAL_S = 2.0
EXPIRY_BATCH = 200
REFUND_RETRY_AFTER_S = 30.0


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


async def requeue_idle_refunds(topic: faust.TopicT, pool: asyncpg.Pool, now: datetime) -> int:
    """Queue again refunds left PENDING (never queued, or an unresolved outcome)."""
    async with pool.acquire() as conn:
        idle = await refunds.stale_pending(conn, older_than_s=REFUND_RETRY_AFTER_S)
        for row in idle:
            command = RefundRequested(
                refund_id=row["refund_id"],
                payment_id=row["payment_id"],
                merchant_id=row["merchant_id"],
                amount_paisa=row["amount_paisa"],
                currency=row["currency"].strip(),
                payment_method=row["payment_method"],
                provider=row["provider"],
                provider_txn_id=row["external_txn_id"],
                reason=row["reason"],
                requested_at=now,
            )
            await send_record(topic, row["payment_id"], command)
            await refunds.touch(conn, row["refund_id"], now)
    return len(idle)


def register(app: faust.App, topics: PipelineTopics, resources: WorkerResources) -> None:
    """Declare the janitor timers on ``app``."""

    @app.timer(interval=EXPIRY_INTERVAL_S, name="janitor.expire")
    async def expire() -> None:
        try:
            await expire_due(topics.payment_events, await resources.pool(), datetime.now(UTC))
        except Exception:  # a periodic task must outlive a blip; the next tick retries
            log.exception("expiry pass failed")

    @app.timer(interval=REFUND_RETRY_AFTER_S / 2, name="janitor.refunds")
    async def requeue_refunds() -> None:
        try:
            await requeue_idle_refunds(
                topics.refund_requests, await resources.pool(), datetime.now(UTC)
            )
        except Exception:  # a periodic task must outlive a blip; the next tick retries
            log.exception("refund requeue pass failed")

    @app.timer(interval=RELAY_INTERVAL_S, name="janitor.relay")
    async def relay() -> None:
        try:
            await outbox.relay_once(topics.payment_events, await resources.pool())
        except Exception:  # a periodic task must outlive a blip; the next tick retries
            log.exception("outbox relay pass failed")
