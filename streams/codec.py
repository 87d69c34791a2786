"""Bridge between Faust and the pipeline: Avro codec, manual acks, retries, dead letters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import faust
from aiokafka.errors import KafkaError

from schemas.records import Record, decode, encode
from sinks.metrics import agent_events_total, kafka_messages_produced_total

log = logging.getLogger(__name__)


def decode_event(event: faust.EventT) -> Record:
    """Decode a raw Faust event with the schema named in its headers."""
    headers: Any = event.headers or event.message.headers or []
    return decode(event.value, headers)


async def send_record(topic: faust.TopicT, key: str, record: Record) -> Any:
    """Encode ``record``, send it keyed by ``key`` and wait for the broker's ack.

    Waiting is what makes the pipeline at-least-once: an agent moves on (and its
    input offset becomes committable) only after its output is durably in Kafka.
    """
    body, headers = encode(record)
    pending = await topic.send(key=key.encode(), value=body, headers=headers)
    metadata = await pending
    kafka_messages_produced_total.labels(topic.get_topic_name()).inc()
    return metadata


async def acked_after_processing(stream: faust.StreamT) -> AsyncIterator[faust.EventT]:
    """Yield the stream's events, acking each only once its processing has completed.

    Faust's default iteration acks the current event in a ``finally`` block, so an
    agent cancelled mid-event (worker shutdown) would commit work it never finished.
    Here acks are manual: the ack runs when the agent asks for the next event, which
    it does only after the body finished; a cancelled or failed body never acks, so
    the event is redelivered after a restart or rebalance.
    """
    manual = stream.noack()
    async for event in manual.events():
        yield event
        await manual.ack(event)


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    KafkaError,
    OSError,
    TimeoutError,
)
"""Failures of the infrastructure, not of the message: retried until they pass."""

POISON_ATTEMPTS = 3
MAX_BACKOFF_S = 5.0


async def process_reliably(
    agent: str,
    event: faust.EventT,
    handler: Callable[[], Awaitable[object]],
    dead_letters: faust.TopicT,
) -> bool:
    """Run ``handler`` for one event so that one bad message cannot stop an agent.

    Infrastructure failures (PostgreSQL, Kafka, network) are retried with backoff
    until they pass: the message is fine, the world is not. Any other exception is
    retried twice and then the message goes to the dead-letter topic with its
    original bytes and headers, so it can be inspected and replayed. Returns True
    when the handler succeeded.
    """
    delay, failures = 0.2, 0
    while True:
        try:
            await handler()
            return True
        except TRANSIENT_ERRORS as exc:
            log.warning(
                "transient failure, retrying",
                extra={"agent": agent, "error": type(exc).__name__, "retry_in_s": delay},
            )
            agent_events_total.labels(agent, "retried").inc()
        except Exception as exc:  # a bug or a poison message: bounded retries, then DLQ
            failures += 1
            log.exception("event processing failed", extra={"agent": agent, "attempt": failures})
            if failures >= POISON_ATTEMPTS:
                await send_dead_letter(dead_letters, agent, event, exc)
                return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)


async def send_dead_letter(
    dead_letters: faust.TopicT, agent: str, event: faust.EventT, error: BaseException
) -> None:
    """Park a message on the dead-letter topic with where it came from and why."""
    message = event.message
    original = (
        list(event.headers.items())
        if isinstance(event.headers, dict)
        else list(event.headers or [])
    )
    headers = [
        *original,
        ("dlq-agent", agent.encode()),
        ("dlq-topic", str(message.topic).encode()),
        ("dlq-partition", str(message.partition).encode()),
        ("dlq-offset", str(message.offset).encode()),
        ("dlq-error", f"{type(error).__name__}: {error}"[:500].encode()),
    ]
    delivery = await dead_letters.send(key=message.key, value=message.value, headers=headers)
    await delivery
    agent_events_total.labels(agent, "dead_lettered").inc()
    log.error(
        "message moved to the dead-letter topic",
        extra={"agent": agent, "topic": message.topic, "offset": message.offset},
    )
