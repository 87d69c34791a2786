"""Webhook endpoint registration against the test stack's PostgreSQL, Redis and Kafka.

The app is the real one (``create_app``); only DNS is answered by a fake resolver for
the ``*.example`` names below (the test machine has no public DNS). ``localhost`` goes
through the real resolver.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from domain.webhooks import is_webhook_id
from ingress.app import create_app
from ingress.auth import mint_token
from ingress.webhooks import RESOLVER, HostResolver, ResolveError
from settings import Settings
from sinks.vault import keyring_from_settings
from sinks.webhook_endpoints import secret_aad

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RUN = secrets.token_hex(4)
MERCHANT = f"m_wh_{RUN}"
OTHER = f"m_wh_other_{RUN}"
WEBHOOKS = "/api/v1/webhooks"
ERROR_KEYS = {"type", "code", "message", "param", "request_id"}
VIEW_KEYS = {"webhook_id", "url", "events", "status", "description", "created_at"}
PUBLIC_URL = "https://hooks.merchant.example/paystream"
DNS = {
    "hooks.merchant.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "internal.merchant.example": ["10.20.30.40"],
    "metadata.merchant.example": ["169.254.169.254"],
    "mixed.merchant.example": ["93.184.216.34", "192.168.1.20"],
    "v6local.merchant.example": ["fd00::5"],
    "gone.merchant.example": [],
}


class FakeResolver(HostResolver):
    """DNS for the test names; the real resolver for anything else (``localhost``)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        if host == "flaky.merchant.example":
            raise ResolveError("temporary failure")
        if host in DNS:
            return DNS[host]
        return await super().resolve(host, port)


def auth(settings: Settings, merchant_id: str = MERCHANT) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, merchant_id)}"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    del pool  # the stack is checked and migrated first
    app = create_app(settings)
    app[RESOLVER] = FakeResolver()
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def create(
    client: TestClient, settings: Settings, body: dict[str, Any], **kw: Any
) -> tuple[int, Any]:
    headers = {**auth(settings, kw.pop("merchant", MERCHANT)), **kw.pop("headers", {})}
    response = await client.post(WEBHOOKS, json=body, headers=headers)
    return response.status, await response.json()


async def assert_error(response: Any, status: int, code: str, param: str | None) -> dict[str, Any]:
    text = await response.text()
    assert response.status == status, text
    error = json.loads(text)["error"]
    assert set(error) == ERROR_KEYS
    assert (error["code"], error["param"]) == (code, param), error
    return error


async def test_create_get_list_delete(client: TestClient, settings: Settings, pool: asyncpg.Pool):
    body = {
        "url": PUBLIC_URL,
        "events": ["payment.success", "payment.failed", "refund.processed"],
        "description": "orders service",
    }
    status, created = await create(client, settings, body)
    assert status == 201, created
    assert set(created) == VIEW_KEYS | {"secret"}
    assert is_webhook_id(created["webhook_id"])
    assert (created["url"], created["events"], created["status"]) == (
        PUBLIC_URL,
        body["events"],
        "enabled",
    )
    assert created["description"] == "orders service"
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    webhook_id = created["webhook_id"]
    headers = auth(settings)

    one = await client.get(f"{WEBHOOKS}/{webhook_id}", headers=headers)
    shown = await one.json()
    assert one.status == 200, shown
    assert shown == {k: v for k, v in created.items() if k != "secret"}

    listing = await client.get(WEBHOOKS, headers=headers)
    listed = await listing.json()
    assert listing.status == 200, listed
    assert listed["has_more"] is False
    assert webhook_id in [item["webhook_id"] for item in listed["data"]]
    assert all(set(item) == VIEW_KEYS for item in listed["data"])
    assert secret not in json.dumps(listed) + json.dumps(shown)

    # stored sealed: not in the clear anywhere in the row, opens only with its own id
    row = await pool.fetchrow("SELECT * FROM webhook_endpoints WHERE webhook_id = $1", webhook_id)
    assert secret not in json.dumps({k: str(v) for k, v in dict(row).items()})
    keyring = keyring_from_settings(settings)
    assert row["key_id"] == keyring.active_id
    assert keyring.decrypt(row["secret_ciphertext"], secret_aad(webhook_id)).decode() == secret
    with pytest.raises(Exception, match="authentication"):
        keyring.decrypt(row["secret_ciphertext"], secret_aad("we_" + "0" * 26))

    deleted = await client.delete(f"{WEBHOOKS}/{webhook_id}", headers=headers)
    assert (deleted.status, await deleted.json()) == (
        200,
        {"webhook_id": webhook_id, "deleted": True},
    )
    row = await pool.fetchrow("SELECT * FROM webhook_endpoints WHERE webhook_id = $1", webhook_id)
    assert row["deleted_at"] is not None and row["secret_ciphertext"] is None
    for method in ("GET", "DELETE"):
        again = await client.request(method, f"{WEBHOOKS}/{webhook_id}", headers=headers)
        await assert_error(again, 404, "resource_missing", "webhook_id")
    listing = await client.get(WEBHOOKS, headers=headers)
    assert webhook_id not in [item["webhook_id"] for item in (await listing.json())["data"]]


async def test_supplied_secret_is_kept_and_weak_ones_refused(
    client: TestClient, settings: Settings
):
    strong = "whsec_" + secrets.token_hex(24)
    status, created = await create(
        client, settings, {"url": PUBLIC_URL, "events": ["*"], "secret": strong}
    )
    assert (status, created["secret"], created["events"]) == (201, strong, ["*"])
    for weak in ("webhook_secret_key", "whsec_tooshort", "whsec_" + "00" * 32):
        response = await client.post(
            WEBHOOKS,
            json={"url": PUBLIC_URL, "events": ["*"], "secret": weak},
            headers=auth(settings),
        )
        error = await assert_error(response, 400, "secret_too_weak", "secret")
        assert weak not in error["message"]


async def test_events_are_validated(client: TestClient, settings: Settings):
    for events, param in (
        (["payment.success", "payment.teleported"], "events[1]"),
        (["refund.created"], "events[0]"),
        ([], "events"),
        ("payment.success", "events"),
    ):
        response = await client.post(
            WEBHOOKS, json={"url": PUBLIC_URL, "events": events}, headers=auth(settings)
        )
        assert response.status == 400
        assert (await response.json())["error"]["param"] == param


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://127.0.0.1/hook", "url_not_allowed"),
        ("http://localhost:8080/hook", "url_not_allowed"),
        ("https://10.0.0.8/hook", "url_not_allowed"),
        ("https://169.254.169.254/latest/meta-data/", "url_not_allowed"),
        ("https://[::1]/hook", "url_not_allowed"),
        ("https://[::ffff:127.0.0.1]/hook", "url_not_allowed"),
        ("https://2130706433/hook", "url_not_allowed"),
        ("https://0x7f000001/hook", "url_not_allowed"),
        ("https://0177.0.0.1/hook", "url_not_allowed"),
        ("https://internal.merchant.example/hook", "url_not_allowed"),
        ("https://metadata.merchant.example/hook", "url_not_allowed"),
        ("https://mixed.merchant.example/hook", "url_not_allowed"),
        ("https://v6local.merchant.example/hook", "url_not_allowed"),
        ("https://gone.merchant.example/hook", "url_not_allowed"),
        ("ftp://hooks.merchant.example/hook", "url_invalid"),
        ("hooks.merchant.example/hook", "url_invalid"),
        ("https://user:pw@hooks.merchant.example/hook", "url_invalid"),
    ],
)
async def test_urls_that_do_not_reach_the_public_internet_are_refused(
    client: TestClient, settings: Settings, url: str, code: str
):
    response = await client.post(
        WEBHOOKS, json={"url": url, "events": ["*"]}, headers=auth(settings)
    )
    await assert_error(response, 400, code, "url")


async def test_http_public_url_is_accepted_and_dns_failure_is_503(
    client: TestClient, settings: Settings
):
    merchant = f"m_wh_http_{RUN}"
    status, created = await create(
        client,
        settings,
        {"url": "http://hooks.merchant.example:8080/x", "events": ["payment.success"]},
        merchant=merchant,
    )
    assert status == 201, created
    response = await client.post(
        WEBHOOKS,
        json={"url": "https://flaky.merchant.example/x", "events": ["*"]},
        headers=auth(settings, merchant),
    )
    await assert_error(response, 503, "service_unavailable", None)


async def test_endpoints_are_merchant_scoped(client: TestClient, settings: Settings):
    status, created = await create(client, settings, {"url": PUBLIC_URL, "events": ["*"]})
    assert status == 201
    webhook_id = created["webhook_id"]
    other = auth(settings, OTHER)
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"{WEBHOOKS}/{webhook_id}", headers=other)
        await assert_error(response, 404, "resource_missing", "webhook_id")
    listing = await client.get(WEBHOOKS, headers=other)
    assert webhook_id not in [item["webhook_id"] for item in (await listing.json())["data"]]
    still = await client.get(f"{WEBHOOKS}/{webhook_id}", headers=auth(settings))
    assert still.status == 200
    for bad_id in ("we_nope", "PAY_" + webhook_id[3:], webhook_id.lower()):
        response = await client.get(f"{WEBHOOKS}/{bad_id}", headers=auth(settings))
        await assert_error(response, 404, "resource_missing", "webhook_id")
    response = await client.get(WEBHOOKS)
    assert response.status == 401


async def test_at_most_20_endpoints_even_when_created_concurrently(
    client: TestClient, settings: Settings, pool: asyncpg.Pool
):
    merchant = f"m_wh_limit_{RUN}"
    results = await asyncio.gather(
        *(
            create(client, settings, {"url": PUBLIC_URL, "events": ["*"]}, merchant=merchant)
            for _ in range(25)
        )
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] * 20 + [422] * 5, results
    refused = next(body for status, body in results if status == 422)
    assert refused["error"]["code"] == "too_many_webhooks"
    live = await pool.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1 AND deleted_at IS NULL",
        merchant,
    )
    assert live == 20
    listing = await client.get(WEBHOOKS, headers=auth(settings, merchant))
    assert len((await listing.json())["data"]) == 20
    # deleting one makes room for one
    first = next(body for status, body in results if status == 201)
    await client.delete(f"{WEBHOOKS}/{first['webhook_id']}", headers=auth(settings, merchant))
    status, _ = await create(
        client, settings, {"url": PUBLIC_URL, "events": ["*"]}, merchant=merchant
    )
    assert status == 201


async def test_idempotency_key_replays_the_create(
    client: TestClient, settings: Settings, pool: asyncpg.Pool
):
    merchant = f"m_wh_idem_{RUN}"
    headers = {**auth(settings, merchant), "Idempotency-Key": str(uuid.uuid4())}
    body = {"url": PUBLIC_URL, "events": ["payment.success"]}
    first = await client.post(WEBHOOKS, json=body, headers=headers)
    second = await client.post(WEBHOOKS, json=body, headers=headers)
    assert (first.status, second.status) == (201, 201)
    assert await first.read() == await second.read()
    assert second.headers.get("Idempotent-Replayed") == "true"
    count = await pool.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1", merchant
    )
    assert count == 1
    no_key = await client.post(WEBHOOKS, json=body, headers=auth(settings, merchant))
    assert no_key.status == 201  # the key is optional here


async def test_unknown_fields_and_bad_json_are_refused(client: TestClient, settings: Settings):
    response = await client.post(
        WEBHOOKS,
        json={"url": PUBLIC_URL, "events": ["*"], "status": "disabled"},
        headers=auth(settings),
    )
    await assert_error(response, 400, "parameter_unknown", "status")
    response = await client.post(
        WEBHOOKS,
        data=b"{not json",
        headers={**auth(settings), "Content-Type": "application/json"},
    )
    assert response.status == 400
