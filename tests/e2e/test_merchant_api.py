"""The merchant API on the running service: listing, cancel, expiry, refunds, scoping."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest

from ingress.auth import mint_token
from settings import Settings
from tests.support.pipeline import Service, create_payment, wait_terminal

pytestmark = pytest.mark.e2e


def _idem(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": str(uuid.uuid4())}


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str], **kwargs: Any
) -> tuple[int, Any]:
    async with http.request(method, url, headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def _wait_status(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], want: str, timeout_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, body = await _call(http, "GET", url, headers)
        if body.get("status") == want:
            return body
        await asyncio.sleep(0.25)
    raise AssertionError(f"{url} never reached {want}: {body}")


async def test_list_payments_pages_newest_first_with_filters(
    service: Service, http: aiohttp.ClientSession, pool: asyncpg.Pool, merchant: dict[str, str]
) -> None:
    token = merchant["Authorization"].removeprefix("Bearer ")
    made = [await create_payment(http, service.api, token, "success@upi") for _ in range(3)]
    failed = await create_payment(http, service.api, token, "failure@upi")
    ids = [p["payment_id"] for p in made] + [failed["payment_id"]]
    await wait_terminal(pool, ids, service=service)

    url = f"{service.api}/api/v1/payments"
    status, page1 = await _call(http, "GET", url, merchant, params={"limit": "2"})
    assert status == 200
    assert [p["payment_id"] for p in page1["data"]] == sorted(ids, reverse=True)[:2]
    assert page1["has_more"] is True
    cursor = page1["data"][-1]["payment_id"]
    _, page2 = await _call(
        http, "GET", url, merchant, params={"limit": "2", "starting_after": cursor}
    )
    assert [p["payment_id"] for p in page2["data"]] == sorted(ids, reverse=True)[2:]
    assert page2["has_more"] is False
    _, failures = await _call(http, "GET", url, merchant, params={"status": "FAILED"})
    assert [p["payment_id"] for p in failures["data"]] == [failed["payment_id"]]
    status, error = await _call(http, "GET", url, merchant, params={"limit": "0"})
    assert status == 400
    assert error["error"]["param"] == "limit"


async def test_cancel_a_payment_awaiting_the_payer_but_not_a_captured_one(
    service: Service, http: aiohttp.ClientSession, merchant: dict[str, str]
) -> None:
    token = merchant["Authorization"].removeprefix("Bearer ")
    waiting = await create_payment(http, service.api, token, "pending@upi")
    url = f"{service.api}/api/v1/payments/{waiting['payment_id']}"
    await _wait_status(http, url, merchant, "REQUIRES_ACTION")
    status, cancelled = await _call(
        http, "POST", url + "/cancel", merchant, json={"cancellation_reason": "abandoned"}
    )
    assert status == 200
    assert cancelled["status"] == "CANCELLED"

    paid = await create_payment(http, service.api, token, "success@upi")
    paid_url = f"{service.api}/api/v1/payments/{paid['payment_id']}"
    await _wait_status(http, paid_url, merchant, "SUCCESS")
    status, error = await _call(http, "POST", paid_url + "/cancel", merchant)
    assert status == 409
    assert error["error"]["code"] == "payment_invalid_state"


async def test_a_payment_the_payer_never_approves_expires_with_an_event(
    service: Service, http: aiohttp.ClientSession, pool: asyncpg.Pool, merchant: dict[str, str]
) -> None:
    token = merchant["Authorization"].removeprefix("Bearer ")
    waiting = await create_payment(http, service.api, token, "pending@upi")
    url = f"{service.api}/api/v1/payments/{waiting['payment_id']}"
    await _wait_status(http, url, merchant, "REQUIRES_ACTION")
    await pool.execute(
        "UPDATE payments SET expires_at = now() - interval '1 second' WHERE payment_id = $1",
        waiting["payment_id"],
    )
    await _wait_status(http, url, merchant, "EXPIRED", timeout_s=30)
    statuses = await pool.fetch(
        "SELECT status, published_at IS NOT NULL AS published FROM payment_status_history"
        " WHERE payment_id = $1 ORDER BY sequence",
        waiting["payment_id"],
    )
    assert [row["status"] for row in statuses] == ["PENDING", "REQUIRES_ACTION", "EXPIRED"]


async def test_refunds_partial_then_full_and_never_more_than_captured(
    service: Service, http: aiohttp.ClientSession, pool: asyncpg.Pool, merchant: dict[str, str]
) -> None:
    token = merchant["Authorization"].removeprefix("Bearer ")
    paid = await create_payment(http, service.api, token, "success@upi", amount_paisa=10_000)
    url = f"{service.api}/api/v1/payments/{paid['payment_id']}"
    await _wait_status(http, url, merchant, "SUCCESS")

    status, missing_key = await _call(
        http, "POST", url + "/refund", merchant, json={"amount_paisa": 1}
    )
    assert status == 400
    assert missing_key["error"]["code"] == "idempotency_key_missing"

    status, first = await _call(
        http,
        "POST",
        url + "/refund",
        _idem(merchant),
        json={"amount_paisa": 4_000, "reason": "damaged"},
    )
    assert status == 201, first
    assert (first["status"], first["amount_paisa"]) == ("PENDING", 4_000)
    status, too_much = await _call(
        http, "POST", url + "/refund", _idem(merchant), json={"amount_paisa": 6_001}
    )
    assert status == 422
    assert too_much["error"]["code"] == "refund_exceeds_captured"
    partially = await _wait_status(http, url, merchant, "PARTIALLY_REFUNDED")
    assert partially["refunded_paisa"] == 4_000

    status, rest = await _call(http, "POST", url + "/refund", _idem(merchant), json={})
    assert status == 201
    assert rest["amount_paisa"] == 6_000
    refunded = await _wait_status(http, url, merchant, "REFUNDED")
    assert refunded["refunded_paisa"] == 10_000

    status, listing = await _call(http, "GET", url + "/refunds", merchant)
    assert status == 200
    assert sorted(r["amount_paisa"] for r in listing["data"]) == [4_000, 6_000]
    assert {r["status"] for r in listing["data"]} == {"PROCESSED"}
    status, one = await _call(
        http, "GET", f"{service.api}/api/v1/refunds/{first['refund_id']}", merchant
    )
    assert (status, one["refund_id"]) == (200, first["refund_id"])


async def test_concurrent_refunds_cannot_over_refund(
    service: Service, http: aiohttp.ClientSession, merchant: dict[str, str]
) -> None:
    token = merchant["Authorization"].removeprefix("Bearer ")
    paid = await create_payment(http, service.api, token, "success@upi", amount_paisa=10_000)
    url = f"{service.api}/api/v1/payments/{paid['payment_id']}"
    await _wait_status(http, url, merchant, "SUCCESS")
    answers = await asyncio.gather(
        *(
            _call(http, "POST", url + "/refund", _idem(merchant), json={"amount_paisa": 3_000})
            for _ in range(12)
        )
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * 3 + [422] * 9
    await _wait_status(http, url, merchant, "PARTIALLY_REFUNDED")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with http.get(f"{service.simulator_url}/sim/ledger") as response:
            ledger = await response.json()
        if ledger.get("refunded_per_merchant_ref", {}).get(paid["payment_id"]) == 9_000:
            break
        await asyncio.sleep(0.25)
    assert ledger["refunded_per_merchant_ref"][paid["payment_id"]] == 9_000


async def test_another_merchant_sees_nothing(
    service: Service, settings: Settings, http: aiohttp.ClientSession, merchant: dict[str, str]
) -> None:
    token = merchant["Authorization"].removeprefix("Bearer ")
    paid = await create_payment(http, service.api, token, "success@upi")
    url = f"{service.api}/api/v1/payments/{paid['payment_id']}"
    await _wait_status(http, url, merchant, "SUCCESS")
    _, refund = await _call(
        http, "POST", url + "/refund", _idem(merchant), json={"amount_paisa": 100}
    )
    stranger = {"Authorization": f"Bearer {mint_token(settings, f'other-{uuid.uuid4()}')}"}
    for method, path in [
        ("GET", url),
        ("POST", url + "/cancel"),
        ("POST", url + "/refund"),
        ("GET", url + "/refunds"),
        ("GET", f"{service.api}/api/v1/refunds/{refund['refund_id']}"),
    ]:
        status, body = await _call(http, method, path, _idem(stranger), json={})
        assert status == 404, (method, path, body)
        assert body["error"]["code"] == "resource_missing"
    _, listing = await _call(http, "GET", f"{service.api}/api/v1/payments", stranger)
    assert listing["data"] == []
