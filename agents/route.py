"""Routing: journal an attempt, call the provider, publish the payment's status.

Consumes: ``payments.screened`` (PaymentScreened)
Produces: ``payments.events`` (PaymentStatusChanged, via the PostgreSQL outbox), key payment_id
Tables:   none yet (provider health comes with the routing issue)

No double charge: the attempt row is written to PostgreSQL before the provider is
called, and the provider gets an idempotency key derived from (payment, attempt).
When a redelivered message finds its attempt already journaled, the agent asks
the provider for the attempt's status instead of charging again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.events import PaymentScreened, PaymentStatusChanged
from domain.ids import attempt_idempotency_key
from domain.lifecycle import Operation, Outcome
from domain.ports import ChargeRequest, ChargeResult, PaymentProvider, ProviderOutcome
from domain.processing import charge_outcome, charge_request
from domain.status import FraudAction, PaymentStatus
from schemas.errors import SerializationError
from sinks import payments, postgres
from sinks.metrics import agent_events_total, payment_processing_duration_seconds
from streams import outbox
from streams.codec import acked_after_processing, decode_event, process_reliably

if TYPE_CHECKING:
    import faust

    from streams.app import PipelineTopics
    from streams.resources import WorkerResources

log = logging.getLogger(__name__)

NOT_SENT_RETRIES = 3
NOT_SENT_BACKOFF_S = 0.2
UNKNOWN_INQUIRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
"""Status inquiries after an UNKNOWN outcome before the payment is left UNKNOWN."""


async def _resolve_unknown(provider: PaymentProvider, request: ChargeRequest) -> ChargeResult:
    """Ask the provider what happened to an attempt whose outcome is unknown.

    Bounded: a few inquiries with backoff. Never a new charge; a provider that
    never saw the attempt gets the SAME idempotency key again, which it deduplicates.
    """
    result = ChargeResult(ProviderOutcome.UNKNOWN, provider.name)
    for delay in UNKNOWN_INQUIRY_DELAYS_S:
        await asyncio.sleep(delay)
        result = await provider.status(request.payment_id, request.idempotency_key)
        if result.outcome is ProviderOutcome.NOT_SENT:
            result = await provider.authorize(request)
        if result.outcome in (ProviderOutcome.APPROVED, ProviderOutcome.DECLINED):
            return result
    return (
        result
        if result.outcome is not ProviderOutcome.NOT_SENT
        else ChargeResult(ProviderOutcome.UNKNOWN, provider.name)
    )


async def _charge_once(
    provider: PaymentProvider, screened: PaymentScreened, attempt: postgres.Attempt
) -> ChargeResult:
    """Call the provider for a journaled attempt, or inquire if it was sent before.

    An attempt journaled by an earlier run is never charged blindly: a recorded final
    answer is reused as is; otherwise the provider is asked, and charged (with the
    same idempotency key) only if it never saw the attempt.
    """
    if attempt.result is not None:  # replay of an attempt whose answer we recorded
        return attempt.result
    if not attempt.created_now:
        inquiry = await provider.status(attempt.payment_id, attempt.idempotency_key)
        if inquiry.outcome is not ProviderOutcome.NOT_SENT:
            return inquiry
    request = charge_request(screened.request, attempt.attempt_no, attempt.idempotency_key)
    result = await provider.authorize(request)
    for retry in range(NOT_SENT_RETRIES):
        if result.outcome is not ProviderOutcome.NOT_SENT:
            break
        await asyncio.sleep(NOT_SENT_BACKOFF_S * (2**retry))
        result = await provider.authorize(request)
    if result.outcome is ProviderOutcome.UNKNOWN:
        result = await _resolve_unknown(provider, request)
    return result


async def process(
    screened: PaymentScreened, topics: PipelineTopics, resources: WorkerResources
) -> PaymentStatusChanged:
    """Take one screened payment to its provider outcome; returns the payment as it ends.

    Every status change is a PostgreSQL transition (row lock, lifecycle table,
    outbox) published right after commit. A replayed message finds the payment
    already moved and the attempt journaled, so it re-publishes or inquires; it
    never charges twice.
    """
    request = screened.request
    pool = await resources.pool()
    events = topics.payment_events
    async with pool.acquire() as conn:
        created = await payments.create_pending(conn, request, datetime.now(UTC))
    await outbox.publish(events, pool, [created.outbox])
    await outbox.publish_unpublished_for(events, pool, request.payment_id)
    current = created.event
    if current.status != PaymentStatus.PENDING.value:
        return current  # cancelled while queued, or already processed by an earlier run

    if screened.decision.action == FraudAction.BLOCK.value:
        now = datetime.now(UTC)
        async with pool.acquire() as conn:
            blocked = await payments.transition(
                conn,
                request.payment_id,
                Operation.SUBMIT,
                Outcome.DECLINED,
                now=now,
                changes={
                    "processed_at": now,
                    "failure_code": "fraud_blocked",
                    "failure_message": "The payment was blocked by risk checks.",
                    "fraud_score": screened.decision.score,
                },
            )
        await outbox.publish(events, pool, [blocked.outbox])
        return blocked.event

    providers = await resources.providers()
    provider = providers[request.payment_method]
    attempt_no = 1
    async with pool.acquire() as conn:
        attempt = await postgres.begin_attempt(
            conn,
            request.payment_id,
            attempt_no,
            provider.name,
            attempt_idempotency_key(request.payment_id, attempt_no),
        )
    started = time.perf_counter()
    result = await _charge_once(provider, screened, attempt)
    payment_processing_duration_seconds.labels(request.payment_method, provider.name).observe(
        time.perf_counter() - started
    )
    now = datetime.now(UTC)
    outcome, changes = charge_outcome(result, now, request.payment_method)
    async with pool.acquire() as conn:
        await postgres.finish_attempt(conn, request.payment_id, attempt_no, result)
        moved = await payments.transition(
            conn, request.payment_id, Operation.PROVIDER_RESULT, outcome, now=now, changes=changes
        )
    await outbox.publish(events, pool, [moved.outbox])
    return moved.event


def register(app: faust.App, topics: PipelineTopics, resources: WorkerResources) -> Any:
    """Declare the routing agent on ``app``."""

    @app.agent(topics.payments_screened, name="route", concurrency=16)
    async def route(stream: faust.StreamT) -> None:
        async for event in acked_after_processing(stream):

            async def handle(event: faust.EventT = event) -> None:
                screened = decode_event(event)
                if not isinstance(screened, PaymentScreened):
                    raise SerializationError(f"expected PaymentScreened, got {type(screened)}")
                last = await process(screened, topics, resources)
                agent_events_total.labels("route", last.status.lower()).inc()

            await process_reliably("route", event, handle, topics.dead_letters)

    return route
