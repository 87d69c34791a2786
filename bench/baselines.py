"""Raw baselines on the same broker: what Kafka alone costs for a produce -> consume trip."""

from __future__ import annotations

import asyncio
import struct
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.stats import Summary, summarize
from settings import Settings


async def kafka_relay(
    settings: Settings, count: int, payload_bytes: int, concurrency: int
) -> Summary:
    """Produce ``count`` messages (``concurrency`` in flight) and time each until consumed."""
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, settings.kafka_partitions, 1)])
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all", linger_ms=2
    )
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{topic}.g",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    # a fresh group on a fresh topic reads from the earliest offset: nothing is missed
    latencies: list[float] = []
    padding = b"x" * max(0, payload_bytes - 8)
    done = asyncio.Event()

    async def consume() -> None:
        async for message in consumer:
            (sent,) = struct.unpack(">d", message.value[:8])
            latencies.append(time.perf_counter() - sent)
            if len(latencies) >= count:
                done.set()
                return

    consuming = asyncio.create_task(consume())
    gate = asyncio.Semaphore(concurrency)

    async def send(index: int) -> None:
        async with gate:
            body = struct.pack(">d", time.perf_counter()) + padding
            await producer.send_and_wait(topic, body, key=str(index).encode())

    started = time.perf_counter()
    await asyncio.gather(*(send(i) for i in range(count)))
    await asyncio.wait_for(done.wait(), timeout=120)
    elapsed = time.perf_counter() - started
    consuming.cancel()
    await producer.stop()
    await consumer.stop()
    await admin.delete_topics([topic])
    await admin.close()
    return summarize("raw kafka produce->consume", latencies, elapsed)
