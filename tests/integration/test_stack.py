"""The local stack that `make test` starts (Kafka, PostgreSQL, Redis) is up and answers.

These tests never start anything themselves first and never skip: a service that is
not running is a failure that names it (run `make stack-up PROFILE=test`). ``settings``
is the session fixture of tests/conftest.py (the test profile's environment).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from settings import Settings
from stack import manager

pytestmark = pytest.mark.integration

SERVICES = ["kafka", "postgres", "redis"]


def _assert_all_up(settings: Settings) -> dict[str, int | None]:
    statuses = manager.status(settings)
    assert [s.name for s in statuses] == SERVICES
    not_up = [s.line() for s in statuses if s.state != "up"]
    assert not_up == [], f"stack services not up (run `make stack-up PROFILE=test`): {not_up}"
    pids = {s.name: s.pid for s in statuses}
    assert all(pid is not None for pid in pids.values()), pids
    return pids


def test_status_reports_every_service_up_with_port_and_pid(settings: Settings) -> None:
    statuses = {s.name: s for s in manager.status(settings)}
    _assert_all_up(settings)
    assert statuses["postgres"].port == settings.db_port
    assert statuses["redis"].port == settings.redis_port
    assert f"127.0.0.1:{statuses['kafka'].port}" in settings.kafka_brokers


async def test_up_again_is_a_fast_no_op(settings: Settings) -> None:
    before = _assert_all_up(settings)
    started = time.monotonic()
    after = await manager.up_async(settings)
    elapsed = time.monotonic() - started
    assert {s.name: s.pid for s in after} == before, "up restarted a running service"
    assert elapsed < 5.0, f"a no-op up took {elapsed:.1f}s"


async def test_kafka_produces_and_consumes_on_a_throwaway_topic(settings: Settings) -> None:
    _assert_all_up(settings)
    topic = f"stack-test-{uuid.uuid4().hex[:12]}"
    payload = uuid.uuid4().bytes
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        # the broker's metadata cache catches up with the controller asynchronously
        deadline = time.monotonic() + 15
        while topic not in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} never showed in the topic list"
            await asyncio.sleep(0.1)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(topic, payload, key=b"stack-test")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partition = TopicPartition(topic, sent.partition)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            record = await asyncio.wait_for(consumer.getone(), timeout=30)
        finally:
            await consumer.stop()
        assert (record.key, record.value, record.offset) == (b"stack-test", payload, sent.offset)
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def test_postgres_round_trip_as_the_app_user(settings: Settings) -> None:
    _assert_all_up(settings)
    conn = await asyncpg.connect(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_username,
        password=settings.db_password.reveal(),
        database=settings.db_database,
        timeout=10,
    )
    try:
        user, database = await conn.fetchrow("SELECT current_user, current_database()")
        assert (user, database) == (settings.db_username, settings.db_database)
        await conn.execute("CREATE TEMP TABLE stack_probe (id int PRIMARY KEY, note text)")
        await conn.execute("INSERT INTO stack_probe VALUES ($1, $2)", 1, "round trip")
        assert await conn.fetchval("SELECT note FROM stack_probe WHERE id = $1", 1) == "round trip"
    finally:
        await conn.close()


async def test_redis_set_get(settings: Settings) -> None:
    _assert_all_up(settings)
    client = aioredis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_password.reveal() or None,
        db=settings.redis_db,
    )
    key, value = f"stack-test:{uuid.uuid4().hex}", uuid.uuid4().hex.encode()
    try:
        assert await client.set(key, value, ex=60)
        assert await client.get(key) == value
    finally:
        await client.delete(key)
        await client.aclose()
