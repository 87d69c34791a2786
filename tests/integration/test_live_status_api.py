"""Live payment status (SSE and WebSocket) on the real app against the test stack.

Payments are inserted with ``sinks.payments.create_pending`` (PENDING, sequence 1) and
never queued, so no worker touches them. The changes that follow are made the way the
pipeline makes them: a provider answer ("action required", sequence 2) applied with
``sinks.payments.transition`` and published to the payments events topic as the route
agent does, then a cancel through the API (sequence 3, published by the ingress). The
stream must carry both from Kafka. The path through a real worker is tests/e2e/.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer

import ingress.live_status as live_status
from domain.events import PaymentRequested
from domain.ids import new_payment_id
from domain.lifecycle import Operation, Outcome
from ingress.app import create_app
from ingress.auth import mint_token
from ingress.live_status import LIVE_STATUS
from schemas.topics import build_topics
from settings import Settings
from sinks import payments
from sinks.db import create_pool
from tests.support.sse import SseEvent, SseStream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RUN = uuid.uuid4().hex[:8]
MERCHANT = f"m_live_{RUN}"
OTHER = f"m_live_other_{RUN}"


def auth(settings: Settings, merchant_id: str = MERCHANT) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, merchant_id)}"}


def events_url(payment_id: str) -> str:
    return f"/api/v1/payments/{payment_id}/events"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    try:
        pool = await create_pool(settings, min_size=1, max_size=4)
        await pool.fetchval("SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(f"PostgreSQL {settings.db_host}:{settings.db_port} unreachable: {exc!r}")
    yield pool
    await pool.close()


async def pending_payment(pool: asyncpg.Pool, merchant_id: str = MERCHANT) -> str:
    """A PENDING payment in PostgreSQL only (sequence 1); nothing is queued for it."""
    now = datetime.now(UTC)
    payment_id = new_payment_id()
    request = PaymentRequested(
        payment_id=payment_id,
        merchant_id=merchant_id,
        user_id="u_live",
        amount_paisa=10_000,
        fees_paisa=0,
        currency="INR",
        payment_method="UPI",
        payment_details={"vpa": "success@upi"},
        description="live status test",
        callback_url=None,
        metadata={},
        created_at=now,
        expires_at=now + timedelta(minutes=15),
        request_id="req_live_status_test",
    )
    async with pool.acquire() as conn:
        await payments.create_pending(conn, request, now)
    return payment_id


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


async def requires_action(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: Settings, payment_id: str
) -> None:
    """PENDING -> REQUIRES_ACTION (sequence 2), written and published as the route agent does."""
    async with pool.acquire() as conn:
        result = await payments.transition(
            conn,
            payment_id,
            Operation.PROVIDER_RESULT,
            Outcome.ACTION_REQUIRED,
            now=datetime.now(UTC),
        )
    assert result.outbox is not None
    topic = build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks)
    await producer.send_and_wait(
        topic.payment_events.name,
        result.outbox.body,
        key=payment_id.encode(),
        headers=result.outbox.headers,
    )
    async with pool.acquire() as conn:
        await payments.mark_published(conn, [result.outbox])


async def next_event(events: AsyncIterator[SseEvent], timeout_s: float = 20) -> SseEvent:
    return await asyncio.wait_for(anext(events), timeout_s)


async def cancel(client: TestClient, settings: Settings, payment_id: str) -> None:
    response = await client.post(
        f"/api/v1/payments/{payment_id}/cancel", json={}, headers=auth(settings)
    )
    assert response.status == 200, await response.text()


async def test_sse_sends_current_status_then_changes_and_ends_when_terminal(
    client: TestClient, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
):
    payment_id = await pending_payment(pool)
    response = await client.get(events_url(payment_id), headers=auth(settings))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Request-Id"]
    stream = SseStream(response.content)
    events = stream.events()
    first = await next_event(events)
    assert (first.event, first.id) == ("payment.pending", "1")
    assert stream.retry_ms == 3000
    view = first.json()
    get = await client.get(f"/api/v1/payments/{payment_id}", headers=auth(settings))
    assert view == await get.json()  # the data is the payment exactly as GET renders it

    # a second subscriber to the same payment, while the first is open
    second = await client.get(events_url(payment_id), headers=auth(settings))
    second_events = SseStream(second.content).events()
    assert (await next_event(second_events)).id == "1"

    await requires_action(pool, producer, settings, payment_id)
    for source in (events, second_events):
        changed = await next_event(source)
        assert (changed.event, changed.id) == ("payment.requires_action", "2")
        assert changed.json()["status"] == "REQUIRES_ACTION"
    await cancel(client, settings, payment_id)
    for source in (events, second_events):
        cancelled = await next_event(source)
        assert (cancelled.event, cancelled.id) == ("payment.cancelled", "3")
        assert cancelled.json()["status"] == "CANCELLED"
        assert cancelled.json()["payment_id"] == payment_id
        with pytest.raises(StopAsyncIteration):
            await next_event(source)  # terminal: the server ended the stream


async def test_last_event_id(
    client: TestClient, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
):
    payment_id = await pending_payment(pool)
    await requires_action(pool, producer, settings, payment_id)
    await cancel(client, settings, payment_id)  # CANCELLED, sequence 3: terminal
    seen = await client.get(
        events_url(payment_id), headers={**auth(settings), "Last-Event-ID": "3"}
    )
    assert seen.status == 204  # nothing new will ever come: EventSource stops reconnecting
    behind = await client.get(
        events_url(payment_id), headers={**auth(settings), "Last-Event-ID": "2"}
    )
    got = [event async for event in SseStream(behind.content).events()]
    assert [(e.event, e.id) for e in got] == [("payment.cancelled", "3")]
    by_query = await client.get(events_url(payment_id) + "?last_event_id=3", headers=auth(settings))
    assert by_query.status == 204

    live = await pending_payment(pool)
    resumed = await client.get(events_url(live), headers={**auth(settings), "Last-Event-ID": "1"})
    assert resumed.status == 200
    resumed_events = SseStream(resumed.content).events()
    await requires_action(pool, producer, settings, live)
    event = await next_event(resumed_events)  # the current (already seen) one is skipped
    assert (event.event, event.id) == ("payment.requires_action", "2")
    resumed.close()


async def test_scoping_and_bad_requests(client: TestClient, settings: Settings, pool: asyncpg.Pool):
    payment_id = await pending_payment(pool)
    cases: list[tuple[str, dict[str, str], int, str]] = [
        (events_url(payment_id), auth(settings, OTHER), 404, "resource_missing"),
        (events_url(new_payment_id()), auth(settings), 404, "resource_missing"),
        (events_url("PAY_nope"), auth(settings), 404, "resource_missing"),
        (events_url(payment_id) + "?transport=carrier-pigeon", auth(settings), 400, ""),
        (events_url(payment_id) + "?transport=websocket", auth(settings), 400, ""),
        (events_url(payment_id) + "?since=1", auth(settings), 400, "parameter_unknown"),
        (events_url(payment_id), {**auth(settings), "Last-Event-ID": "abc"}, 400, ""),
        (events_url(payment_id), {}, 401, "missing_token"),
    ]
    for url, headers, status, code in cases:
        response = await client.get(url, headers=headers)
        body = await response.json()
        assert response.status == status, (url, body)
        assert response.content_type == "application/json"
        if code:
            assert body["error"]["code"] == code, body


async def test_websocket_transport(
    client: TestClient, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
):
    payment_id = await pending_payment(pool)
    async with client.ws_connect(
        events_url(payment_id) + "?transport=websocket", headers=auth(settings)
    ) as ws:
        first = await ws.receive_json(timeout=20)
        assert (first["event"], first["id"]) == ("payment.pending", 1)
        assert first["data"]["payment_id"] == payment_id
        await requires_action(pool, producer, settings, payment_id)
        second = await ws.receive_json(timeout=20)
        assert (second["event"], second["id"]) == ("payment.requires_action", 2)
        await cancel(client, settings, payment_id)
        third = await ws.receive_json(timeout=20)
        assert (third["event"], third["id"]) == ("payment.cancelled", 3)
        closing = await ws.receive(timeout=20)
        assert closing.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}


async def test_heartbeat_and_client_disconnect(
    client: TestClient, settings: Settings, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(live_status, "HEARTBEAT_S", 0.3)
    monkeypatch.setattr(live_status, "LIVENESS_CHECK_S", 0.1)
    hub = client.app[LIVE_STATUS]
    payment_id = await pending_payment(pool)
    response = await client.get(events_url(payment_id), headers=auth(settings))
    await next_event(SseStream(response.content).events())
    line = b""
    while line != b": keep-alive\n":  # within a few heartbeats
        line = await asyncio.wait_for(response.content.readline(), 5)
    assert hub.subscriber_count >= 1
    response.close()  # the client goes away
    deadline = time.monotonic() + 5
    while payment_id in hub._subscribers:
        assert time.monotonic() < deadline, "the stream outlived its client"
        await asyncio.sleep(0.05)


async def test_app_shutdown_ends_open_streams_at_once(settings: Settings, pool: asyncpg.Pool):
    payment_id = await pending_payment(pool)
    test_client = TestClient(TestServer(create_app(settings)))
    await test_client.start_server()
    response = await test_client.get(events_url(payment_id), headers=auth(settings))
    events = SseStream(response.content).events()
    await next_event(events)
    started = time.monotonic()
    await test_client.close()
    assert time.monotonic() - started < 5
