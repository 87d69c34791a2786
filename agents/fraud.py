"""Fraud screening (pass-through in the walking skeleton; the fraud engine replaces it).

Consumes: ``payments.requests`` (PaymentRequested)
Produces: ``payments.screened`` (PaymentScreened), key payment_id
Tables:   none yet
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.events import FraudDecision, PaymentRequested, PaymentScreened
from domain.status import FraudAction
from schemas.errors import SerializationError
from sinks.metrics import agent_events_total
from streams.codec import acked_after_processing, decode_event, process_reliably, send_record

if TYPE_CHECKING:
    import faust

    from streams.app import PipelineTopics

log = logging.getLogger(__name__)


def screen(request: PaymentRequested, now: datetime) -> PaymentScreened:
    """The skeleton's decision: allow everything with score 0."""
    return PaymentScreened(
        request=request, decision=FraudDecision(FraudAction.ALLOW.value, 0, [], now)
    )


def register(app: faust.App, topics: PipelineTopics) -> Any:
    """Declare the fraud agent on ``app``."""

    @app.agent(topics.payment_requests, name="fraud", concurrency=4)
    async def fraud(stream: faust.StreamT) -> None:
        async for event in acked_after_processing(stream):

            async def handle(event: faust.EventT = event) -> None:
                request = decode_event(event)
                if not isinstance(request, PaymentRequested):
                    raise SerializationError(f"expected PaymentRequested, got {type(request)}")
                screened = screen(request, datetime.now(UTC))
                await send_record(topics.payments_screened, request.payment_id, screened)
                agent_events_total.labels("fraud", "ok").inc()

            await process_reliably("fraud", event, handle, topics.dead_letters)

    return fraud
