"""Idempotency-Key on the real PostgreSQL, Redis and Kafka of the test profile.

The ingress app runs in-process (aiohttp TestServer); the shared ``stack`` fixture has
applied the migrations (003 creates ``idempotency_keys``) and created the topics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp import ClientConnectionError, web
from aiohttp.test_utils import TestClient, TestServer

from domain.events import PaymentRequested
from domain.vault_crypto import record_aad
from ingress.app import create_app
from ingress.auth import mint_token
from ingress.idempotency import fingerprint, fingerprint_key, idempotent
from ingress.idempotency_store import STALE_CLAIM_S, cache_key
from schemas.topics import build_topics
from settings import Settings, load_settings
from sinks.vault import keyring_from_settings
from tests.support.pipeline import read_topic_since

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RUN = secrets.token_hex(4)
PAYMENTS = "/api/v1/payments"
ECHO = "/api/v1/test-echo"
SLOW = "/api/v1/test-slow"
CRASH = "/api/v1/test-crash"
CANCEL = "/api/v1/test-cancel"
BODY: dict[str, Any] = {
    "user_id": "123e4567-e89b-12d3-a456-426614174000",
    "amount_paisa": 10000,
    "currency": "INR",
    "payment_method": "UPI",
    "payment_details": {"vpa": "user@paytm"},
    "description": "Payment for order #12345",
    "metadata": {"order_id": "12345"},
}


def merchant(label: str) -> str:
    return f"m_idem_{label}_{RUN}"


def headers(merchant_id: str, key: str | None = None, settings: Settings | None = None):
    out = {"Authorization": f"Bearer {mint_token(settings or Settings(), merchant_id)}"}
    if key is not None:
        out["Idempotency-Key"] = key
    return out


def new_key() -> str:
    return str(uuid.uuid4())


def closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ExtraRoutes:
    """Extra /api/v1 routes that show the middleware's behaviour around odd handlers."""

    def __init__(self) -> None:
        self.echo_calls = 0
        self.slow_started = asyncio.Event()
        self.slow_release = asyncio.Event()

    async def echo(self, request: web.Request) -> web.Response:
        self.echo_calls += 1
        return web.json_response({"call": self.echo_calls, "body": await request.json()})

    @idempotent(required=True)
    async def slow(self, request: web.Request) -> web.Response:
        self.slow_started.set()
        await self.slow_release.wait()
        return web.json_response({"slow": "done"}, status=201)

    @idempotent(required=True)
    async def crash(self, request: web.Request) -> web.Response:
        raise RuntimeError("handler bug")

    @idempotent(required=True)
    async def cancel(self, request: web.Request) -> web.Response:
        raise asyncio.CancelledError

    def add_to(self, app: web.Application) -> web.Application:
        app.router.add_post(ECHO, self.echo)
        app.router.add_post(SLOW, self.slow)
        app.router.add_post(CRASH, self.crash)
        app.router.add_post(CANCEL, self.cancel)
        return app


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(settings.database_dsn, min_size=1, max_size=4, timeout=5)
    yield pool
    await pool.execute("DELETE FROM idempotency_keys WHERE merchant_id LIKE $1", f"%{RUN}")
    await pool.close()


@pytest.fixture(scope="module")
def routes() -> ExtraRoutes:
    return ExtraRoutes()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(
    settings: Settings, pool: asyncpg.Pool, routes: ExtraRoutes
) -> AsyncIterator[TestClient]:
    del pool  # schema applied
    async with TestClient(TestServer(routes.add_to(create_app(settings)))) as test_client:
        yield test_client


async def requests_of(settings: Settings, since_ms: int, merchant_id: str) -> list[Any]:
    """PaymentRequested records of ``merchant_id`` on payments.requests since ``since_ms``."""
    topic = build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks)
    records = await read_topic_since(settings, topic.payment_requests.name, since_ms, 10**9, 3)
    return [
        record
        for _headers, record in records
        if isinstance(record, PaymentRequested) and record.merchant_id == merchant_id
    ]


async def row(pool: asyncpg.Pool, merchant_id: str, key: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT * FROM idempotency_keys WHERE merchant_id = $1 AND key = $2", merchant_id, key
    )


async def test_fifty_concurrent_creates_with_one_key_make_one_payment(
    client: TestClient, settings: Settings
) -> None:
    since_ms = int(time.time() * 1000) - 1000
    merchant_id = merchant("race")
    sent = headers(merchant_id, new_key())

    async def post() -> tuple[int, bytes, dict[str, str]]:
        response = await client.post(PAYMENTS, json=BODY, headers=sent)
        return response.status, await response.read(), dict(response.headers)

    answers = await asyncio.gather(*(post() for _ in range(50)))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {201, 409}, statuses
    created = [(body, hdrs) for status, body, hdrs in answers if status == 201]
    assert created, statuses
    assert len({body for body, _ in created}) == 1  # every 201 body is identical
    assert sum(1 for _, hdrs in created if "Idempotent-Replayed" not in hdrs) == 1
    for status, body, hdrs in answers:
        if status == 409:
            error = json.loads(body)["error"]
            assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_in_use")
            assert hdrs["Retry-After"] == "1"

    payment_id = json.loads(created[0][0])["payment_id"]
    replay = await client.post(PAYMENTS, json=BODY, headers=sent)
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await replay.read() == created[0][0]
    assert replay.headers["Location"] == f"{PAYMENTS}/{payment_id}"
    assert replay.headers["Content-Type"].startswith("application/json")

    produced = await requests_of(settings, since_ms, merchant_id)
    assert [record.payment_id for record in produced] == [payment_id]


async def test_replay_reuse_and_missing_key(client: TestClient, pool: asyncpg.Pool) -> None:
    merchant_id = merchant("replay")
    key = new_key()
    first = await client.post(PAYMENTS, json=BODY, headers=headers(merchant_id, key))
    assert first.status == 201
    assert "Idempotent-Replayed" not in first.headers
    created = await first.read()

    # same body, other key order and whitespace: the same request
    reordered = json.dumps(dict(reversed(list(BODY.items()))), indent=2)
    again = await client.post(
        PAYMENTS,
        data=reordered,
        headers={**headers(merchant_id, key), "Content-Type": "application/json"},
    )
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.read() == created
    assert (await again.json())["payment_id"] == json.loads(created)["payment_id"]

    other = await client.post(
        PAYMENTS, json={**BODY, "amount_paisa": 20000}, headers=headers(merchant_id, key)
    )
    assert other.status == 422
    error = (await other.json())["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "idempotency_error",
        "idempotency_key_reused",
        "Idempotency-Key",
    )
    elsewhere = await client.post(ECHO, json=BODY, headers=headers(merchant_id, key))
    assert elsewhere.status == 422  # same key, another path

    stored = await row(pool, merchant_id, key)
    assert stored is not None
    assert (stored["state"], stored["response_status"]) == ("completed", 201)
    # stored encrypted (a response can carry a secret shown once), bound to merchant and key
    sealed = bytes(stored["response_body"]).decode("ascii")
    aad = record_aad("idempotency", merchant_id, key)
    assert keyring_from_settings(load_settings()).decrypt(sealed, aad) == created
    assert 86_000 < (stored["expires_at"] - stored["created_at"]).total_seconds() <= 86_400

    missing = await client.post(PAYMENTS, json=BODY, headers=headers(merchant_id))
    assert missing.status == 400
    error = (await missing.json())["error"]
    assert (error["code"], error["param"]) == ("idempotency_key_missing", "Idempotency-Key")
    for bad in ("x" * 256, "clé", ""):
        response = await client.post(
            PAYMENTS, json=BODY, headers={**headers(merchant_id), "Idempotency-Key": bad}
        )
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "idempotency_key_invalid"
    unauthenticated = await client.post(PAYMENTS, json=BODY, headers={"Idempotency-Key": key})
    assert unauthenticated.status == 401


async def test_keys_are_per_merchant(client: TestClient) -> None:
    key = new_key()
    one = await client.post(PAYMENTS, json=BODY, headers=headers(merchant("one"), key))
    two = await client.post(PAYMENTS, json=BODY, headers=headers(merchant("two"), key))
    assert (one.status, two.status) == (201, 201)
    assert "Idempotent-Replayed" not in two.headers
    assert (await one.json())["payment_id"] != (await two.json())["payment_id"]


async def test_a_validation_error_is_stored_and_replayed(client: TestClient) -> None:
    sent = headers(merchant("invalid"), new_key())
    bad = {**BODY, "amount_paisa": 100.5}
    first = await client.post(PAYMENTS, json=bad, headers=sent)
    assert first.status == 400
    assert (await first.json())["error"]["code"] == "amount_invalid"
    second = await client.post(PAYMENTS, json=bad, headers=sent)
    assert second.status == 400
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await second.read() == await first.read()


async def test_optional_key_elsewhere(client: TestClient, routes: ExtraRoutes) -> None:
    merchant_id = merchant("echo")
    before = routes.echo_calls
    for _ in range(2):
        response = await client.post(ECHO, json={"n": 1}, headers=headers(merchant_id))
        assert response.status == 200
    assert routes.echo_calls == before + 2  # no key: runs every time

    sent = headers(merchant_id, new_key())
    first = await client.post(ECHO, json={"n": 2}, headers=sent)
    second = await client.post(ECHO, json={"n": 2}, headers=sent)
    assert await second.read() == await first.read()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert routes.echo_calls == before + 3
    invalid = await client.post(ECHO, json={}, headers={**sent, "Idempotency-Key": "k" * 256})
    assert (await invalid.json())["error"]["code"] == "idempotency_key_invalid"


async def test_in_flight_answers_409_then_the_replay(
    client: TestClient, routes: ExtraRoutes, pool: asyncpg.Pool
) -> None:
    merchant_id = merchant("slow")
    key = new_key()
    sent = headers(merchant_id, key)
    routes.slow_started.clear()
    routes.slow_release.clear()
    first = asyncio.ensure_future(client.post(SLOW, json={"a": 1}, headers=sent))
    await asyncio.wait_for(routes.slow_started.wait(), 10)
    assert (await row(pool, merchant_id, key))["state"] == "in_flight"

    busy = await client.post(SLOW, json={"a": 1}, headers=sent)
    assert busy.status == 409
    assert busy.headers["Retry-After"] == "1"
    assert (await busy.json())["error"]["code"] == "idempotency_key_in_use"
    reused = await client.post(SLOW, json={"a": 2}, headers=sent)
    assert reused.status == 422  # a different body is refused even while in flight

    routes.slow_release.set()
    done = await first
    assert done.status == 201
    replay = await client.post(SLOW, json={"a": 1}, headers=sent)
    assert (replay.status, replay.headers["Idempotent-Replayed"]) == (201, "true")


async def test_crash_and_cancellation_release_the_key(
    client: TestClient, pool: asyncpg.Pool
) -> None:
    merchant_id = merchant("crash")
    key = new_key()
    crashed = await client.post(CRASH, json={}, headers=headers(merchant_id, key))
    assert crashed.status == 500
    assert await row(pool, merchant_id, key) is None
    again = await client.post(CRASH, json={}, headers=headers(merchant_id, key))
    assert again.status == 500  # ran again: nothing was stored

    key = new_key()
    with pytest.raises(ClientConnectionError):
        await client.post(CANCEL, json={}, headers=headers(merchant_id, key))
    for _ in range(50):
        if await row(pool, merchant_id, key) is None:
            break
        await asyncio.sleep(0.05)
    assert await row(pool, merchant_id, key) is None


async def test_a_5xx_is_not_stored(settings: Settings, client: TestClient, pool: asyncpg.Pool):
    merchant_id = merchant("503")
    key = new_key()
    dead = dataclasses.replace(settings, kafka_brokers=("127.0.0.1:1",))
    async with TestClient(TestServer(create_app(dead))) as down:
        response = await down.post(PAYMENTS, json=BODY, headers=headers(merchant_id, key))
        assert response.status == 503
    assert await row(pool, merchant_id, key) is None
    retry = await client.post(PAYMENTS, json=BODY, headers=headers(merchant_id, key))
    assert retry.status == 201
    assert "Idempotent-Replayed" not in retry.headers


async def _insert(
    pool: asyncpg.Pool, merchant_id: str, key: str, digest: str, state: str, age_s: float
) -> None:
    await pool.execute(
        """
        INSERT INTO idempotency_keys (merchant_id, key, fingerprint, state, owner,
            response_status, response_body, created_at, locked_at, expires_at)
        VALUES ($1, $2, $3, $4, 'someone-else', $5, $6,
            now() - make_interval(secs => $7), now() - make_interval(secs => $7),
            now() - make_interval(secs => $7) + interval '1 day')
        """,
        merchant_id,
        key,
        digest,
        state,
        200 if state == "completed" else None,
        b"{}" if state == "completed" else None,
        age_s,
    )


async def test_stale_claims_are_taken_over_and_expired_keys_are_new(
    client: TestClient, pool: asyncpg.Pool, settings: Settings
) -> None:
    merchant_id = merchant("stale")
    sent_body = json.dumps(BODY).encode()
    key = fingerprint_key(settings.encryption_key.reveal().encode())
    digest = fingerprint("POST", PAYMENTS, sent_body, key)
    json_headers = {"Content-Type": "application/json"}

    fresh = new_key()
    await _insert(pool, merchant_id, fresh, digest, "in_flight", 1)
    busy = await client.post(
        PAYMENTS, data=sent_body, headers={**headers(merchant_id, fresh), **json_headers}
    )
    assert busy.status == 409

    stale = new_key()
    await _insert(pool, merchant_id, stale, digest, "in_flight", STALE_CLAIM_S + 5)
    taken = await client.post(
        PAYMENTS, data=sent_body, headers={**headers(merchant_id, stale), **json_headers}
    )
    assert taken.status == 201
    assert "Idempotent-Replayed" not in taken.headers
    assert (await row(pool, merchant_id, stale))["state"] == "completed"

    expired = new_key()
    await _insert(pool, merchant_id, expired, "another-request", "completed", 86_401)
    anew = await client.post(PAYMENTS, json=BODY, headers=headers(merchant_id, expired))
    assert anew.status == 201
    assert "Idempotent-Replayed" not in anew.headers


async def test_redis_fast_path_holds_completed_responses(
    client: TestClient, pool: asyncpg.Pool, redis: aioredis.Redis, settings: Settings
) -> None:
    merchant_id = merchant("fast")
    key = new_key()
    sent = headers(merchant_id, key)
    first = await client.post(PAYMENTS, json=BODY, headers=sent)
    assert first.status == 201
    ttl = await redis.ttl(cache_key(merchant_id, key))
    assert settings.idempotency_ttl_s - 60 < ttl <= settings.idempotency_ttl_s
    # with the row gone, only Redis can answer: the fast path serves the replay
    await pool.execute(
        "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2", merchant_id, key
    )
    replay = await client.post(PAYMENTS, json=BODY, headers=sent)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await replay.read() == await first.read()


async def test_redis_down_degrades_to_postgres(settings: Settings, pool: asyncpg.Pool) -> None:
    merchant_id = merchant("noredis")
    key = new_key()
    no_redis = dataclasses.replace(settings, redis_port=closed_port())
    async with TestClient(TestServer(create_app(no_redis))) as degraded:
        sent = headers(merchant_id, key)
        first = await degraded.post(PAYMENTS, json=BODY, headers=sent)
        assert first.status == 201, await first.text()
        replay = await degraded.post(PAYMENTS, json=BODY, headers=sent)
        assert replay.status == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert await replay.read() == await first.read()
        reused = await degraded.post(PAYMENTS, json={**BODY, "amount_paisa": 1234}, headers=sent)
        assert reused.status == 422
    assert (await row(pool, merchant_id, key))["state"] == "completed"
