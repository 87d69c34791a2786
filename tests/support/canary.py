"""Canary sweeps: look for secret values in every place data can land.

Used by the vault tests and by the end-of-suite sweep: every text, JSON and bytea
column of every PostgreSQL table, every Redis key and value, every message of every
Kafka topic (Faust changelogs included) and the services' log files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from settings import Settings

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea")


async def pg_hits(pool: asyncpg.Pool, needle: str, regex: str | None) -> list[str]:
    columns = await pool.fetch(
        """
        SELECT c.table_schema, c.table_name, c.column_name, c.data_type
        FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_schema, table_name)
        WHERE t.table_type = 'BASE TABLE'
          AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
          AND c.data_type = ANY($1::text[])
        """,
        list(TEXT_TYPES),
    )
    hits = []
    for col in columns:
        name = f'"{col["table_schema"]}"."{col["table_name"]}"'
        column = f'"{col["column_name"]}"'
        if col["data_type"] == "bytea":
            as_text = f"encode({column}, 'escape')"
            exact = f"position(convert_to($1, 'UTF8') in {column}) > 0"
        else:
            as_text = f"{column}::text"
            exact = f"strpos({as_text}, $1) > 0"
        count = await pool.fetchval(
            f"SELECT count(*) FROM {name} WHERE {exact} OR {as_text} ~ $2::text",
            needle,
            regex,
        )
        if count:
            hits.append(f"{name}.{column}: {count}")
    return hits


async def redis_hits(redis: aioredis.Redis, needles: list[bytes], cvv: re.Pattern[bytes]) -> list:
    hits = []
    async for key in redis.scan_iter(count=1000):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            values = [await redis.get(key) or b""]
        elif kind == "hash":
            values = [b for kv in (await redis.hgetall(key)).items() for b in kv]
        elif kind == "list":
            values = await redis.lrange(key, 0, -1)
        elif kind == "set":
            values = list(await redis.smembers(key))
        elif kind == "zset":
            values = await redis.zrange(key, 0, -1)
        elif kind == "stream":
            entries = await redis.xrange(key)
            values = [b for _, fields in entries for kv in fields.items() for b in kv]
        else:
            values = []
        for blob in [key, *values]:
            if any(n in blob for n in needles) or cvv.search(blob):
                hits.append(key)
    return hits


async def kafka_hits(settings: Settings, needles: Iterable[bytes]) -> list[str]:
    """Topics (and offsets) whose key, value or headers contain a needle."""
    wanted = list(needles)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if not t.startswith("__")]
    finally:
        await admin.close()
    hits: list[str] = []
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=2000, max_records=5000)
            if not batch:
                break
            for tp, records in batch.items():
                for record in records:
                    blobs = [record.key or b"", record.value or b""]
                    blobs += [value for _, value in record.headers]
                    if any(n in blob for n in wanted for blob in blobs):
                        hits.append(f"{tp.topic}[{tp.partition}]@{record.offset}")
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return hits
    finally:
        await consumer.stop()


def log_hits(directory: Path, needles: Iterable[bytes]) -> list[str]:
    """Log files under ``directory`` containing a needle."""
    wanted = list(needles)
    return [
        str(path)
        for path in sorted(directory.rglob("*.log"))
        if any(n in path.read_bytes() for n in wanted)
    ]


__all__ = ["TEXT_TYPES", "kafka_hits", "log_hits", "pg_hits", "re", "redis_hits"]
