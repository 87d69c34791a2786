"""Bridge between Faust events and the Avro codec in :mod:`schemas.records`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust

from schemas.records import Record, decode, encode
from sinks.metrics import kafka_messages_produced_total


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
