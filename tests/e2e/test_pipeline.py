"""One payment through the whole pipeline, on the real broker, database and cache.

ingress (HTTP) -> payments.requests -> fraud -> route -> UPI simulator (HTTP)
-> payments.events -> sink -> PostgreSQL + webhooks.delivery
"""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import asyncpg

from schemas.topics import build_topics
from settings import Settings
from tests.support.pipeline import (
    Service,
    consumer_lag,
    create_payment,
    payload_json,
    read_topic_since,
    simulator_charges,
    wait_terminal,
)

SERVICE_ENV = {"PAYSTREAM_SIMULATOR_LATENCY_MS": "60"}
"""The simulator answers slowly enough for a worker to be killed mid-stream."""


async def test_upi_success_and_failure_reach_postgres_and_the_webhook_topic(
    service: Service,
    settings: Settings,
    http: aiohttp.ClientSession,
    pool: asyncpg.Pool,
    token: str,
) -> None:
    since_ms = int(time.time() * 1000) - 1000
    ok = await create_payment(http, service.api, token, "success@upi")
    declined = await create_payment(http, service.api, token, "failure@upi")
    assert ok["status"] == "PENDING"
    assert ok["payment_url"].startswith("upi://pay?")
    assert ok["qr_code"].startswith("data:image/png;base64,")

    rows = await wait_terminal(
        pool, [ok["payment_id"], declined["payment_id"]], timeout_s=90, service=service
    )
    assert rows[ok["payment_id"]]["status"] == "SUCCESS"
    assert rows[ok["payment_id"]]["amount_paisa"] == 10_000
    assert rows[ok["payment_id"]]["rrn"]
    assert rows[declined["payment_id"]]["status"] == "FAILED"
    assert rows[declined["payment_id"]]["failure_code"]

    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{service.api}/api/v1/payments/{ok['payment_id']}", headers=headers) as r:
        view = await r.json()
    assert r.status == 200
    assert view["status"] == "SUCCESS"
    assert view["external_txn_id"]
    assert view["gateway_response"]["rrn"] == rows[ok["payment_id"]]["rrn"]
    assert view["processed_at"]

    history = await pool.fetch(
        "SELECT payment_id, status FROM payment_status_history WHERE payment_id = ANY($1)"
        " ORDER BY payment_id, sequence",
        [ok["payment_id"], declined["payment_id"]],
    )
    assert [h["status"] for h in history if h["payment_id"] == ok["payment_id"]] == [
        "PENDING",
        "SUCCESS",
    ]

    webhooks = build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks).webhooks
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        for _headers, event in await read_topic_since(settings, webhooks.name, since_ms, 10_000, 5):
            ours = event.object_id in (ok["payment_id"], declined["payment_id"])
            if ours and event.event_type in ("payment.success", "payment.failed"):
                seen[event.object_id] = event.event_type
                assert payload_json(event)["payment_id"] == event.object_id
    assert seen == {ok["payment_id"]: "payment.success", declined["payment_id"]: "payment.failed"}


async def _post_many(
    service: Service, http: aiohttp.ClientSession, token: str, count: int
) -> list[str]:
    created = await asyncio.gather(
        *(create_payment(http, service.api, token, f"buyer{i}@okbank") for i in range(count))
    )
    return [payment["payment_id"] for payment in created]


async def test_killing_the_worker_mid_stream_loses_no_payment_and_charges_none_twice(
    service: Service, http: aiohttp.ClientSession, pool: asyncpg.Pool, token: str
) -> None:
    ids = await _post_many(service, http, token, 60)
    await asyncio.sleep(0.5)
    service.worker.kill()  # SIGKILL: a crash, nothing is flushed or committed
    service.start_worker()
    rows = await wait_terminal(pool, ids, timeout_s=120, service=service)
    assert {row["status"] for row in rows.values()} == {"SUCCESS"}
    charges = await simulator_charges(http, service.simulator_url)
    assert {pid: charges.get(pid, 0) for pid in ids} == dict.fromkeys(ids, 1)
    terminal_rows = await pool.fetchval(
        "SELECT count(*) FROM payment_status_history WHERE payment_id = ANY($1)"
        " AND status = 'SUCCESS'",
        ids,
    )
    assert terminal_rows == len(ids)


async def test_sigterm_stops_the_worker_within_30_s_with_its_work_committed(
    service: Service,
    settings: Settings,
    http: aiohttp.ClientSession,
    pool: asyncpg.Pool,
    token: str,
) -> None:
    ids = await _post_many(service, http, token, 40)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    service.worker.signal(signal.SIGTERM)
    code = await asyncio.to_thread(service.worker.wait, 35)
    took = time.monotonic() - started
    assert code is not None, "worker still running 35 s after SIGTERM"
    assert took < 30, f"worker took {took:.1f} s to stop"
    service.start_worker()
    await wait_terminal(pool, ids, timeout_s=120, service=service)
    charges = await simulator_charges(http, service.simulator_url)
    assert {pid: charges.get(pid, 0) for pid in ids} == dict.fromkeys(ids, 1)

    # all work done: a clean stop now must leave nothing uncommitted on any input topic
    await asyncio.sleep(2)
    code = await asyncio.to_thread(service.worker.stop, 30)
    registry = build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks)
    lag = await consumer_lag(
        settings,
        settings.kafka_group_id,
        [
            registry.payment_requests.name,
            registry.payments_screened.name,
            registry.payment_events.name,
        ],
    )
    assert lag == 0
    service.start_worker()
