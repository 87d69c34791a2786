"""Stored idempotent responses are encrypted: a webhook secret shown once stays secret."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from ingress.app import create_app
from ingress.auth import mint_token
from ingress.webhooks import RESOLVER, HostResolver
from settings import Settings
from sinks.db import create_pool


class PublicResolver(HostResolver):
    """Every name resolves to a public address (this machine has no public DNS)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        return ["93.184.216.34"]


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(settings)
    app[RESOLVER] = PublicResolver()
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest_asyncio.fixture(loop_scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_a_replayed_webhook_secret_is_stored_only_encrypted(
    client: TestClient, pool: asyncpg.Pool, settings: Settings
) -> None:
    merchant_id = f"idem-secret-{uuid.uuid4()}"
    key = str(uuid.uuid4())
    headers = {
        "Authorization": f"Bearer {mint_token(settings, merchant_id)}",
        "Idempotency-Key": key,
    }
    body = {"url": "https://merchant.example/webhook", "events": ["payment.success"]}
    first = await client.post("/api/v1/webhooks", json=body, headers=headers)
    created = await first.json()
    assert first.status == 201, created
    secret = created["secret"]
    assert secret.startswith("whsec_")

    replay = await client.post("/api/v1/webhooks", json=body, headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert (await replay.json())["secret"] == secret

    stored = await pool.fetchval(
        "SELECT response_body FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
        merchant_id,
        key,
    )
    assert stored is not None
    assert secret.encode() not in bytes(stored)
    redis = aioredis.Redis(host=settings.redis_host, port=settings.redis_port, db=settings.redis_db)
    try:
        async for cache_key in redis.scan_iter(match="paystream:idem:*", count=1000):
            value = await redis.get(cache_key)
            assert value is None or secret.encode() not in value
    finally:
        await redis.aclose()
