"""Refund execution: send an accepted refund to the provider that charged, settle it.

Consumes: ``refunds.requests`` (RefundRequested)
Produces: ``payments.events`` (PaymentStatusChanged PARTIALLY_REFUNDED / REFUNDED, via the outbox)
Tables:   none

The refund id is the provider's idempotency key, so a redelivered request cannot
refund twice; an UNKNOWN answer is resolved by refund status inquiry (bounded), and
a refund still unresolved stays PENDING for the janitor to retry later.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.events import RefundRequested
from domain.ports import PaymentProvider, RefundOutcome, RefundRequest, RefundResult
from schemas.errors import SerializationError
from sinks import refunds
from sinks.metrics import agent_events_total
from streams import outbox
from streams.codec import acked_after_processing, decode_event, process_reliably

if TYPE_CHECKING:
    import faust

    from streams.app import PipelineTopics
    from streams.resources import WorkerResources

log = logging.getLogger(__name__)

INQUIRY_DELAYS_S = (0.5, 1.0, 2.0)


async def _execute(provider: PaymentProvider, request: RefundRequest) -> RefundResult:
    result = await provider.refund(request)
    if result.outcome is RefundOutcome.NOT_SENT and result.retriable:
        await asyncio.sleep(0.2)
        result = await provider.refund(request)
    for delay in INQUIRY_DELAYS_S:
        if result.outcome not in (RefundOutcome.UNKNOWN, RefundOutcome.PENDING):
            break
        await asyncio.sleep(delay)
        result = await provider.refund_status(request.refund_id, request.idempotency_key)
    return result


async def process(
    command: RefundRequested, topics: PipelineTopics, resources: WorkerResources
) -> str:
    """Execute one refund; returns the refund's status afterwards."""
    pool = await resources.pool()
    async with pool.acquire() as conn:
        current = await refunds.get_refund(conn, command.refund_id)
    if current["status"] != "PENDING":
        return str(current["status"])
    providers = await resources.providers()
    provider = providers[command.payment_method]
    request = RefundRequest(
        refund_id=command.refund_id,
        payment_id=command.payment_id,
        idempotency_key=command.refund_id,
        amount_paisa=command.amount_paisa,
        currency=command.currency,
        payment_method=command.payment_method,
        provider_txn_id=command.provider_txn_id or "",  # checked below
        reason=command.reason,
    )
    if command.provider_txn_id:
        result = await _execute(provider, request)
    else:  # nothing to refund against: fail it now rather than retry forever
        result = RefundResult(
            RefundOutcome.FAILED,
            provider.name,
            failure_code="original_charge_unknown",
            failure_message="The original charge has no provider transaction id.",
        )
    if result.outcome not in (RefundOutcome.PROCESSED, RefundOutcome.FAILED):
        log.warning(
            "refund outcome not final; the janitor will retry",
            extra={"refund_id": command.refund_id, "outcome": result.outcome.value},
        )
        return "PENDING"
    processed = result.outcome is RefundOutcome.PROCESSED
    async with pool.acquire() as conn:
        moved = await refunds.settle_refund(
            conn,
            command.refund_id,
            processed=processed,
            now=datetime.now(UTC),
            external_refund_id=result.external_refund_id,
            failure_code=result.failure_code,
            failure_message=result.failure_message,
        )
    if moved is not None:
        await outbox.publish(topics.payment_events, pool, [moved.outbox])
    return "PROCESSED" if processed else "FAILED"


def register(app: faust.App, topics: PipelineTopics, resources: WorkerResources) -> Any:
    """Declare the refund agent on ``app``."""

    @app.agent(topics.refund_requests, name="refund", concurrency=4)
    async def refund(stream: faust.StreamT) -> None:
        async for event in acked_after_processing(stream):

            async def handle(event: faust.EventT = event) -> None:
                command = decode_event(event)
                if not isinstance(command, RefundRequested):
                    raise SerializationError(f"expected RefundRequested, got {type(command)}")
                status = await process(command, topics, resources)
                agent_events_total.labels("refund", status.lower()).inc()

            await process_reliably("refund", event, handle, topics.dead_letters)

    return refund
