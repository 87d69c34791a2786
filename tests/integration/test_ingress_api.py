"""The ingress against the real Kafka, PostgreSQL and Redis of the test profile.

The stack must be up (``make test`` starts it; KAFKA_BROKERS=127.0.0.1:19092,
DB_PORT=15432, REDIS_PORT=16379). The shared ``stack`` fixture (tests/conftest.py, autouse
in this folder) fails the run if a service is missing, creates the topics and applies the
migrations; the fixtures below fail too (never skip) if a client cannot connect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jwt
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition

from domain.events import PaymentRequested
from domain.ids import new_payment_id
from ingress.app import create_app
from ingress.auth import mint_token
from ingress.errors import observe_middleware
from ingress.store import cache_key, cache_ttl_s
from schemas.records import decode
from schemas.topics import build_topics
from settings import Settings, load_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

RUN = secrets.token_hex(4)
MERCHANT = f"m_it_{RUN}"
OTHER_MERCHANT = f"m_other_{RUN}"
PAYMENTS = "/api/v1/payments"
PAN_LIKE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def card_numbers(text: str) -> list[str]:
    """Digit runs of 13-19 digits in ``text`` that pass the Luhn check (card-number shaped)."""
    found = []
    for match in PAN_LIKE.finditer(text):
        digits = [int(c) for c in match.group() if c.isdigit()]
        odd = digits[-1::-2]
        even = [sum(divmod(2 * d, 10)) for d in digits[-2::-2]]
        if (sum(odd) + sum(even)) % 10 == 0:
            found.append(match.group())
    return found


ERROR_KEYS = {"type", "code", "message", "param", "request_id"}
VALID_BODY: dict[str, Any] = {
    "user_id": "123e4567-e89b-12d3-a456-426614174000",
    "merchant_id": MERCHANT,
    "amount_paisa": 10000,
    "currency": "INR",
    "payment_method": "UPI",
    "payment_details": {"vpa": "user@paytm"},
    "description": "Payment for order #12345",
    "callback_url": "https://merchant.example/webhook",
    "metadata": {"order_id": "12345", "customer_email": "user@example.com"},
}


@pytest.fixture(scope="module")
def topic(settings: Settings) -> str:
    return build_topics(
        settings.kafka_topic_payments, settings.kafka_topic_webhooks
    ).payment_requests.name


def auth(merchant_id: str = MERCHANT, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(load_settings(), merchant_id, **kwargs)}"}


def new_key() -> dict[str, str]:
    """A fresh Idempotency-Key (required on POST /api/v1/payments)."""
    return {"Idempotency-Key": str(uuid.uuid4())}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def consumer(settings: Settings, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        request_timeout_ms=5000,
    )
    try:
        await consumer.start()
        partitions = await asyncio.wait_for(consumer._client._wait_on_metadata(topic), 10)
    except Exception as exc:
        await consumer.stop()
        pytest.fail(f"Kafka {settings.kafka_bootstrap}: no topic {topic}: {exc!r}")
    consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
    await consumer.seek_to_end()
    yield consumer
    await consumer.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(
    settings: Settings, pool: asyncpg.Pool, redis: aioredis.Redis, consumer: AIOKafkaConsumer
) -> AsyncIterator[TestClient]:
    del pool, redis, consumer  # the stack is checked and the topic exists before the app starts
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def end_offsets(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    return await consumer.end_offsets(list(consumer.assignment()))


async def records_between(
    consumer: AIOKafkaConsumer, before: dict[TopicPartition, int], after: dict[TopicPartition, int]
) -> list[Any]:
    """Every record in [before, after) of each partition."""
    pending = {tp for tp, end in after.items() if end > before[tp]}
    for tp in pending:
        consumer.seek(tp, before[tp])
    found: list[Any] = []
    deadline = time.monotonic() + 10
    while pending:
        assert time.monotonic() < deadline, "timed out reading the new records"
        batch = await consumer.getmany(*pending, timeout_ms=500)
        for tp, messages in batch.items():
            found.extend(m for m in messages if m.offset < after[tp])
        for tp in list(pending):
            if await consumer.position(tp) >= after[tp]:
                pending.discard(tp)
    return found


async def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json"
    body = json.loads(text)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == ERROR_KEYS, body
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]
    assert body["error"]["message"]
    assert "Traceback" not in text
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


async def test_create_payment_is_acked_produced_and_cached(
    client: TestClient, consumer: AIOKafkaConsumer, redis: aioredis.Redis, settings: Settings
):
    before = await end_offsets(consumer)
    response = await client.post(PAYMENTS, json=VALID_BODY, headers={**auth(), **new_key()})
    created = await response.json()
    assert response.status == 201, created
    after = await end_offsets(consumer)

    payment_id = created["payment_id"]
    assert re.fullmatch(r"PAY_[0-9A-Z]{26}", payment_id)
    assert response.headers["Location"] == f"{PAYMENTS}/{payment_id}"
    assert created["status"] == "PENDING"
    assert created["amount_paisa"] == 10000
    assert created["fees_paisa"] == 0
    assert created["currency"] == "INR"
    assert created["merchant_id"] == MERCHANT
    assert created["payment_url"].startswith(f"upi://pay?pa={settings.upi_payee_vpa}&")
    assert "am=100.00" in created["payment_url"]
    assert f"tr={payment_id}" in created["payment_url"]
    assert created["qr_code"].startswith("data:image/png;base64,iVBOR")
    created_at = datetime.fromisoformat(created["created_at"])
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert expires_at - created_at == timedelta(seconds=settings.payment_expiry_s)
    assert abs(datetime.now(UTC) - created_at) < timedelta(seconds=30)

    records = [
        r for r in await records_between(consumer, before, after) if r.key == payment_id.encode()
    ]
    assert len(records) == 1
    record = records[0]
    event = decode(record.value, record.headers)
    assert isinstance(event, PaymentRequested)
    assert event.amount_paisa == 10000
    assert event.merchant_id == MERCHANT
    assert event.payment_details == {"vpa": "user@paytm"}
    assert event.request_id == response.headers["X-Request-Id"]
    raw = record.value.decode("latin-1") + "".join(v.decode("latin-1") for _, v in record.headers)
    assert card_numbers(raw) == []

    cached = json.loads(await redis.get(cache_key(payment_id)))
    view = {k: v for k, v in created.items() if k not in {"payment_url", "qr_code"}}
    assert cached == view
    ttl = await redis.ttl(cache_key(payment_id))
    assert cache_ttl_s(settings) - 60 < ttl <= cache_ttl_s(settings)

    fetched = await client.get(f"{PAYMENTS}/{payment_id}", headers=auth())
    assert fetched.status == 200
    got = await fetched.json()
    assert set(got) == set(view)
    assert (got["payment_id"], got["merchant_id"], got["amount_paisa"]) == (
        payment_id,
        MERCHANT,
        10000,
    )
    assert fetched.headers["Cache-Control"] == "no-store"


async def test_get_answers_from_postgres_once_the_row_exists(
    client: TestClient, pool: asyncpg.Pool
):
    response = await client.post(PAYMENTS, json=VALID_BODY, headers={**auth(), **new_key()})
    assert response.status == 201
    created = await response.json()
    payment_id = created["payment_id"]
    now = datetime.now(UTC)
    await pool.execute(
        """
        INSERT INTO payments (payment_id, merchant_id, user_id, status, sequence, amount_paisa,
            fees_paisa, currency, payment_method, description, metadata, provider,
            external_txn_id, rrn, approval_code, created_at, expires_at, processed_at)
        VALUES ($1, $2, $3, 'SUCCESS', 1000, 10000, 0, 'INR', 'UPI', 'it', $4::jsonb, 'upi_sim',
            'TXN789456123', '123456789012', '123456', $5, $6, $7)
        ON CONFLICT (payment_id) DO UPDATE SET status = 'SUCCESS', sequence = 1000,
            metadata = EXCLUDED.metadata,
            provider = 'upi_sim', external_txn_id = 'TXN789456123', rrn = '123456789012',
            approval_code = '123456', processed_at = EXCLUDED.processed_at
        """,
        payment_id,
        MERCHANT,
        VALID_BODY["user_id"],
        json.dumps({"order_id": "12345"}),
        now - timedelta(seconds=5),
        now + timedelta(minutes=15),
        now,
    )
    try:
        fetched = await client.get(f"{PAYMENTS}/{payment_id}", headers=auth())
        got = await fetched.json()
        assert fetched.status == 200, got
        assert got["status"] == "SUCCESS"
        assert got["external_txn_id"] == "TXN789456123"
        assert got["gateway_response"] == {"rrn": "123456789012", "approval_code": "123456"}
        assert got["metadata"] == {"order_id": "12345"}
        assert got["processed_at"].endswith("Z")

        foreign = await client.get(f"{PAYMENTS}/{payment_id}", headers=auth(OTHER_MERCHANT))
        await assert_error(foreign, 404, "resource_missing")
        admin = await client.get(f"{PAYMENTS}/{payment_id}", headers=auth("ops", admin=True))
        assert admin.status == 200
    finally:
        await pool.execute("DELETE FROM payment_status_history WHERE payment_id = $1", payment_id)
        await pool.execute("DELETE FROM payments WHERE payment_id = $1", payment_id)


async def test_get_falls_back_to_the_cache_and_hides_other_merchants(
    client: TestClient, redis: aioredis.Redis
):
    payment_id = new_payment_id()
    view = {
        "payment_id": payment_id,
        "merchant_id": MERCHANT,
        "status": "PENDING",
        "amount_paisa": 500,
    }
    await redis.set(cache_key(payment_id), json.dumps(view), ex=60)
    try:
        mine = await client.get(f"{PAYMENTS}/{payment_id}", headers=auth())
        assert mine.status == 200
        assert await mine.json() == view

        foreign = await assert_error(
            await client.get(f"{PAYMENTS}/{payment_id}", headers=auth(OTHER_MERCHANT)), 404
        )
        unknown = await assert_error(
            await client.get(f"{PAYMENTS}/{new_payment_id()}", headers=auth(OTHER_MERCHANT)), 404
        )
        same = {k: v for k, v in foreign.items() if k != "request_id"}
        assert same == {k: v for k, v in unknown.items() if k != "request_id"}
        assert same["code"] == "resource_missing"
    finally:
        await redis.delete(cache_key(payment_id))


@pytest.mark.parametrize("payment_id", ["abc", "PAY_x", "PAY_" + "0" * 27, "pay_" + "0" * 26])
async def test_malformed_payment_id_is_404(client: TestClient, payment_id: str):
    response = await client.get(f"{PAYMENTS}/{payment_id}", headers=auth())
    await assert_error(response, 404, "resource_missing")


def _body(**changes: Any) -> bytes:
    body = {**VALID_BODY, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


JSON = "application/json"
BAD_REQUESTS = [
    # (case, raw body, expected code[, content type, status])
    ("malformed json", b'{"user_id": ', "body_invalid"),
    ("array", b"[]", "body_invalid"),
    ("empty", b"", "body_invalid"),
    ("duplicate key", b'{"amount_paisa": 1, "amount_paisa": 2}', "body_invalid"),
    ("text/plain", _body(), "content_type_invalid", "text/plain"),
    ("too large", b'{"description": "' + b"x" * 70_000 + b'"}', "request_too_large", JSON, 413),
    ("unknown field", _body(foo=1), "parameter_unknown"),
    ("server status", _body(status="SUCCESS"), "parameter_unknown"),
    ("server fees", _body(fees_paisa=0), "parameter_unknown"),
    ("float amount", _body(amount_paisa=100.0), "amount_invalid"),
    ("string amount", _body(amount_paisa="100"), "amount_invalid"),
    ("bool amount", _body(amount_paisa=True), "amount_invalid"),
    ("zero amount", _body(amount_paisa=0), "amount_too_small"),
    ("huge amount", _body(amount_paisa=10**15), "amount_too_large"),
    ("USD", _body(currency="USD"), "currency_not_supported"),
    ("CARD", _body(payment_method="CARD"), "payment_method_unavailable"),
    ("BTC", _body(payment_method="BTC"), "payment_method_invalid"),
    ("bad vpa", _body(payment_details={"vpa": "nope"}), "vpa_invalid"),
    ("extra detail", _body(payment_details={"vpa": "a@ok", "x": "1"}), "parameter_unknown"),
    ("merchant mismatch", _body(merchant_id="m_victim"), "merchant_mismatch"),
    ("user missing", _body(user_id=...), "parameter_missing"),
    ("pan in description", _body(description="4111 1111 1111 1111"), "card_data_not_allowed"),
    ("ftp callback", _body(callback_url="ftp://x.example/"), "parameter_invalid"),
    ("metadata too big", _body(metadata={f"k{i}": "v" for i in range(21)}), "parameter_invalid"),
]


async def test_bad_inputs_answer_in_one_shape_and_produce_nothing(
    client: TestClient, consumer: AIOKafkaConsumer
):
    before = await end_offsets(consumer)
    for case, raw, code, *rest in BAD_REQUESTS:
        content_type, status = (*rest, 400)[:2] if rest else (JSON, 400)
        response = await client.post(
            PAYMENTS, data=raw, headers={**auth(), **new_key(), "Content-Type": content_type}
        )
        error = await assert_error(response, status, code)
        assert error["type"] == "invalid_request_error", case
    after = await end_offsets(consumer)
    if after != before:  # other suites may share the topic: none of the new records is ours
        for record in await records_between(consumer, before, after):
            event = decode(record.value, record.headers)
            assert getattr(event, "merchant_id", None) != MERCHANT


async def test_http_errors_of_aiohttp_use_the_same_shape(client: TestClient):
    await assert_error(await client.get("/no/such/route"), 404, "route_not_found")
    response = await client.delete(PAYMENTS, headers=auth())
    await assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(",")) == {"GET", "POST"}


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_requests_without_a_valid_token_are_401(client: TestClient, method: str):
    settings = load_settings()
    path = PAYMENTS if method == "POST" else f"{PAYMENTS}/{new_payment_id()}"
    expired = mint_token(settings, MERCHANT, ttl_s=60, now=int(time.time()) - 3600)
    forged = jwt.encode(
        {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "merchant_id": MERCHANT,
         "sub": MERCHANT, "exp": int(time.time()) + 600},
        "not-the-server-secret-but-long-enough-0123456789",
        algorithm="HS256",
    )  # fmt: skip
    unsigned = jwt.encode({"merchant_id": MERCHANT, "exp": int(time.time()) + 600}, None, "none")
    cases = [
        ({}, "missing_token"),
        ({"Authorization": f"Bearer {expired}"}, "token_expired"),
        ({"Authorization": f"Bearer {forged}"}, "invalid_token"),
        ({"Authorization": f"Bearer {unsigned}"}, "invalid_token"),
        ({"Authorization": f"Basic {forged}"}, "invalid_authorization"),
    ]
    for headers, code in cases:
        response = await client.request(method, path, json=VALID_BODY, headers=headers)
        error = await assert_error(response, 401, code)
        assert error["type"] == "authentication_error"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_request_id_is_echoed_when_sane_and_replaced_otherwise(client: TestClient):
    sane = await client.get("/health", headers={"X-Request-Id": "lb-1234567890abcdef"})
    assert sane.headers["X-Request-Id"] == "lb-1234567890abcdef"
    insane = await client.get("/health", headers={"X-Request-Id": "<script>alert(1)</script>"})
    assert insane.headers["X-Request-Id"].startswith("req_")
    missing = await client.get("/health")
    assert missing.headers["X-Request-Id"].startswith("req_")


async def test_health_ready_and_metrics(client: TestClient):
    health = await client.get("/health")
    assert (health.status, await health.json()) == (200, {"status": "healthy"})

    ready = await client.get("/ready")
    body = await ready.json()
    assert ready.status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"kafka", "postgres", "redis"}
    assert all(check == {"status": "healthy"} for check in body["checks"].values())

    await client.get(f"{PAYMENTS}/{new_payment_id()}", headers=auth())
    metrics = await client.get("/metrics")
    text = await metrics.text()
    assert metrics.status == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert "http_requests_total{" in text
    assert 'route="/api/v1/payments/{payment_id}"' in text
    assert "http_request_duration_seconds_bucket{" in text
    assert "PAY_" not in text  # routes are templates, never raw paths


async def test_kafka_down_answers_503_and_writes_nothing(
    settings: Settings, pool: asyncpg.Pool, redis: aioredis.Redis
):
    del pool  # schema ready
    merchant = f"m_down_{RUN}"
    dead = dataclasses.replace(settings, kafka_brokers=("127.0.0.1:1",))
    async with TestClient(TestServer(create_app(dead))) as down:
        response = await down.post(
            PAYMENTS,
            json={**VALID_BODY, "merchant_id": merchant},
            headers={**auth(merchant), **new_key()},
        )
        error = await assert_error(response, 503, "service_unavailable")
        assert error["type"] == "api_error"
        assert response.headers["Retry-After"]

        ready = await down.get("/ready")
        body = await ready.json()
        assert ready.status == 503
        assert body["status"] == "degraded"
        assert body["checks"]["kafka"]["status"] == "unhealthy"
        assert body["checks"]["kafka"]["error"]
        assert body["checks"]["postgres"] == {"status": "healthy"}
        assert body["checks"]["redis"] == {"status": "healthy"}
    async for key in redis.scan_iter(match=cache_key("*"), count=1000):
        value = await redis.get(key)
        assert value is None or json.loads(value).get("merchant_id") != merchant


async def test_unexpected_exception_is_a_generic_500():
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("internal detail 4111111111111111")

    app = web.Application(middlewares=[observe_middleware])
    app.router.add_get("/boom", boom)
    async with TestClient(TestServer(app)) as bare:
        response = await bare.get("/boom")
        error = await assert_error(response, 500, "internal_error")
        assert error["type"] == "api_error"
        assert "internal detail" not in await response.text()
