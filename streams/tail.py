"""``paystream tail TOPIC``: print a topic's records as JSON lines, decoded from Avro.

For operators and the README: ``paystream tail webhooks.delivery --last 5``.
Reads without a consumer group (commits nothing) and stops after ``--timeout``
seconds without a new record, or never with ``--follow``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from schemas.errors import SchemaError
from schemas.records import decode
from settings import Settings


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


async def _tail(settings: Settings, topic: str, last: int, follow: bool, timeout_s: float) -> int:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    printed = 0
    try:
        partitions = list(consumer.assignment())
        if not partitions:
            print(f"paystream tail: topic {topic!r} does not exist", file=sys.stderr)
            return 2
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(0, ends[tp] - last))
        while True:
            batch = await consumer.getmany(timeout_ms=int(timeout_s * 1000))
            if not batch and not follow:
                return 0
            for records in batch.values():
                for record in records:
                    try:
                        value: Any = dataclasses.asdict(
                            decode(record.value, list(record.headers))  # type: ignore[arg-type]
                        )
                    except SchemaError as exc:
                        value = {"undecodable": str(exc)}
                    key = record.key.decode(errors="replace") if record.key else None
                    line = {"partition": record.partition, "offset": record.offset, "key": key}
                    print(json.dumps({**line, "value": value}, default=_jsonable), flush=True)
                    printed += 1
    finally:
        await consumer.stop()


def main(settings: Settings, argv: list[str] | None = None) -> int:
    """Print the last records of a topic (per partition) as JSON lines."""
    parser = argparse.ArgumentParser(prog="paystream tail")
    parser.add_argument("topic", help="e.g. payments.events or webhooks.delivery")
    parser.add_argument("--last", type=int, default=10, help="records per partition (10)")
    parser.add_argument("--follow", action="store_true", help="keep printing new records")
    parser.add_argument("--timeout", type=float, default=2.0, help="stop after S idle seconds")
    args = parser.parse_args(argv or [])
    return asyncio.run(_tail(settings, args.topic, args.last, args.follow, args.timeout))
