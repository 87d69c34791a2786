"""Per-merchant rate limits (a token bucket in Redis) on the real stack of the test profile."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import prometheus_client
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from domain.ids import new_payment_id
from ingress.app import create_app
from ingress.auth import mint_token
from ingress.ratelimit import bucket_key
from settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

RUN = secrets.token_hex(4)
PAYMENTS = "/api/v1/payments"
RATE = 2
BURST = 5


def auth(merchant_id: str, settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, merchant_id)}"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def post_without_key(client: TestClient, merchant_id: str, settings: Settings) -> Any:
    """A request that needs no Redis past the limiter: 400 idempotency_key_missing."""
    return await client.post(PAYMENTS, json={}, headers=auth(merchant_id, settings))


def redis_errors() -> float:
    return prometheus_client.REGISTRY.get_sample_value("rate_limit_redis_errors_total") or 0.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def limited(settings: Settings) -> AsyncIterator[TestClient]:
    tight = dataclasses.replace(settings, rate_limit_per_s=RATE, rate_limit_burst=BURST)
    async with TestClient(TestServer(create_app(tight))) as client:
        yield client


async def get_unknown(client: TestClient, merchant_id: str, settings: Settings) -> Any:
    return await client.get(f"{PAYMENTS}/{new_payment_id()}", headers=auth(merchant_id, settings))


async def test_a_burst_beyond_capacity_is_429_until_tokens_refill(
    limited: TestClient, settings: Settings, redis: aioredis.Redis
) -> None:
    merchant_id = f"m_rl_burst_{RUN}"
    remaining = []
    for _ in range(BURST):
        response = await get_unknown(limited, merchant_id, settings)
        assert response.status == 404  # allowed: the handler ran
        assert response.headers["RateLimit-Limit"] == str(BURST)
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]

    refused = await get_unknown(limited, merchant_id, settings)
    assert refused.status == 429
    error = (await refused.json())["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")
    assert error["request_id"] == refused.headers["X-Request-Id"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Limit"] == str(BURST)
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 0 < await redis.pttl(bucket_key(merchant_id)) <= 1000 * (BURST / RATE + 1)

    await asyncio.sleep(1.0 / RATE + 0.1)  # one token back
    again = await get_unknown(limited, merchant_id, settings)
    assert again.status == 404
    assert (await get_unknown(limited, merchant_id, settings)).status == 429


async def test_buckets_are_per_merchant(limited: TestClient, settings: Settings) -> None:
    greedy, other = f"m_rl_greedy_{RUN}", f"m_rl_other_{RUN}"
    statuses = [(await get_unknown(limited, greedy, settings)).status for _ in range(BURST + 2)]
    assert statuses[-1] == 429
    assert (await get_unknown(limited, other, settings)).status == 404


async def test_limited_routes_carry_the_headers_and_probes_are_not_limited(
    limited: TestClient, settings: Settings
) -> None:
    merchant_id = f"m_rl_headers_{RUN}"
    headers = {**auth(merchant_id, settings), "Idempotency-Key": str(uuid.uuid4())}
    invalid = await limited.post(PAYMENTS, json={"amount_paisa": 1}, headers=headers)
    assert invalid.status == 400
    assert invalid.headers["RateLimit-Remaining"] == str(BURST - 1)
    missing_key = await limited.post(PAYMENTS, json={}, headers=auth(merchant_id, settings))
    assert missing_key.status == 400
    assert missing_key.headers["RateLimit-Remaining"] == str(BURST - 2)
    for path in ("/health", "/ready", "/metrics"):
        for _ in range(BURST + 1):
            response = await limited.get(path)
            assert response.status == 200, path
            assert "RateLimit-Limit" not in response.headers
    unauthenticated = await limited.get(f"{PAYMENTS}/{new_payment_id()}")
    assert unauthenticated.status == 401
    assert "RateLimit-Limit" not in unauthenticated.headers


async def test_redis_down_fails_open_by_default(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    assert settings.rate_limit_fail_open is True
    down = dataclasses.replace(settings, redis_port=closed_port(), rate_limit_burst=1)
    before = redis_errors()
    with caplog.at_level(logging.WARNING, logger="paystream.ingress"):
        async with TestClient(TestServer(create_app(down))) as client:
            for _ in range(5):  # more than the burst: nothing is limited
                response = await post_without_key(client, f"m_rl_open_{RUN}", settings)
                assert response.status == 400  # the request went on to the idempotency check
                assert response.headers["RateLimit-Limit"] == "1"
                assert "RateLimit-Remaining" not in response.headers
    assert redis_errors() - before == 5
    warnings = [r for r in caplog.records if r.getMessage().startswith("rate limiter unavailable")]
    assert len(warnings) <= 1  # at most one line per 10 s


async def test_redis_down_fails_closed_when_configured(settings: Settings) -> None:
    down = dataclasses.replace(settings, redis_port=closed_port(), rate_limit_fail_open=False)
    before = redis_errors()
    async with TestClient(TestServer(create_app(down))) as client:
        response = await post_without_key(client, f"m_rl_closed_{RUN}", settings)
        assert response.status == 503
        error = (await response.json())["error"]
        assert (error["type"], error["code"]) == ("api_error", "service_unavailable")
        assert response.headers["Retry-After"] == "1"
        assert response.headers["RateLimit-Limit"] == str(settings.rate_limit_burst)
        health = await client.get("/health")
        assert health.status == 200
    assert redis_errors() - before == 1
