"""Live payment status on the running service: simulator, worker and ingress processes.

The SSE stream is opened right after ``POST /api/v1/payments``: it must start with the
payment's current status (PENDING, or later if the worker was faster), carry every
change with increasing ids, and end after a terminal status. SUCCESS is not terminal
(refunds follow), so the success test refunds the payment in full and expects
``payment.refunded`` and the end of the stream.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from ingress.auth import mint_token
from settings import Settings
from tests.support.pipeline import Service, create_payment
from tests.support.sse import SseEvent, SseStream

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FIRST_OUTCOME_S = 150.0
"""A fresh worker may take a minute to join its consumer group before the first outcome."""

ORDER = [
    "payment.created",
    "payment.pending",
    "payment.requires_action",
    "payment.authorized",
    "payment.unknown",
    "payment.success",
    "payment.partially_refunded",
    "payment.refunded",
]


HTTP_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
"""A stream stays open while the payment moves: no total limit, only per-read ones."""


def token(settings: Settings) -> str:
    return mint_token(settings, f"merchant-live-{uuid.uuid4()}")


async def read_until(
    events: AsyncIterator[SseEvent], last: str, timeout_s: float = 60
) -> list[SseEvent]:
    """Events until (and including) the first of type ``last``."""
    got: list[SseEvent] = []
    deadline = time.monotonic() + timeout_s
    while not got or got[-1].event != last:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {last} within {timeout_s}s: {[e.event for e in got]}"
        got.append(await asyncio.wait_for(anext(events), remaining))
    return got


def assert_increasing(events: list[SseEvent], payment_id: str) -> None:
    ids = [int(event.id or "0") for event in events]
    assert ids == sorted(set(ids)) and ids[0] >= 1, ids
    for event in events:
        data = event.json()
        assert data["payment_id"] == payment_id
        assert event.event == "payment." + data["status"].lower()


async def test_success_then_refund_streams_every_change_and_ends(
    service: Service, http: aiohttp.ClientSession, settings: Settings
) -> None:
    bearer = token(settings)
    headers = {"Authorization": f"Bearer {bearer}"}
    created = await create_payment(http, service.api, bearer, "success@upi")
    payment_id = created["payment_id"]
    url = f"{service.api}/api/v1/payments/{payment_id}/events"
    async with http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        stream = SseStream(response.content)
        events = stream.events()
        first = await asyncio.wait_for(anext(events), 30)
        assert first.event in ORDER, first  # PENDING, or later if the worker was faster
        paid = [first]
        if first.event != "payment.success":
            paid += await read_until(events, "payment.success", FIRST_OUTCOME_S)
        assert_increasing(paid, payment_id)
        assert paid[-1].json()["status"] == "SUCCESS"

        refund = await http.post(
            f"{service.api}/api/v1/payments/{payment_id}/refund",
            json={},
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert refund.status == 201, await refund.text()
        rest = await read_until(events, "payment.refunded")
        assert_increasing(paid + rest, payment_id)
        assert rest[-1].json()["refunded_paisa"] == created["amount_paisa"]
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(events), 10)  # terminal: the server ended it
        last_id = rest[-1].id

    # a reconnecting EventSource that has seen the end is told to stop (204)
    async with http.get(url, headers={**headers, "Last-Event-ID": str(last_id)}) as again:
        assert again.status == 204


async def test_failure_ends_the_stream(
    service: Service, http: aiohttp.ClientSession, settings: Settings
) -> None:
    bearer = token(settings)
    created = await create_payment(http, service.api, bearer, "failure@upi")
    url = f"{service.api}/api/v1/payments/{created['payment_id']}/events"
    async with http.get(url, headers={"Authorization": f"Bearer {bearer}"}) as response:
        assert response.status == 200
        got = [event async for event in SseStream(response.content).events()]
    assert got and got[-1].event == "payment.failed", [e.event for e in got]
    assert got[-1].json()["failure"]["code"]
    assert_increasing(got, created["payment_id"])


async def test_websocket_transport(
    service: Service, http: aiohttp.ClientSession, settings: Settings
) -> None:
    bearer = token(settings)
    created = await create_payment(http, service.api, bearer, "failure@upi")
    url = f"{service.api}/api/v1/payments/{created['payment_id']}/events?transport=websocket"
    messages = []
    async with http.ws_connect(url, headers={"Authorization": f"Bearer {bearer}"}) as ws:
        async for message in ws:
            assert message.type == aiohttp.WSMsgType.TEXT
            messages.append(message.json())
    assert messages[-1]["event"] == "payment.failed"
    assert [m["id"] for m in messages] == sorted({m["id"] for m in messages})


async def test_another_merchants_payment_is_404(
    service: Service, http: aiohttp.ClientSession, settings: Settings
) -> None:
    created = await create_payment(http, service.api, token(settings), "success@upi")
    url = f"{service.api}/api/v1/payments/{created['payment_id']}/events"
    async with http.get(url, headers={"Authorization": f"Bearer {token(settings)}"}) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "resource_missing"
