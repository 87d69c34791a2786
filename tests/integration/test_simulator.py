"""The sandbox simulator over a real loopback socket, driven through UpiCoreProvider.

The simulator's ledger is the oracle: whatever the network does, one idempotency key
is charged at most once, and an UNKNOWN is resolved by status inquiry.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from domain.ports import ChargeRequest, ProviderOutcome
from providers import build_providers
from providers.errors import (
    ProviderDisconnected,
    ProviderProtocolError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)
from providers.http import MAX_RESPONSE_BYTES, execute
from providers.simulator import UPI_DECLINES
from providers.upi_core import DECLINE_CODES, UpiCoreProvider
from settings import load_settings
from tests.support import simulator
from tests.support.ports import fields_of
from tests.support.simulator import (
    TIMEOUT_S,
    assert_stops_on_sigterm,
    configure,
    free_port,
    ledger,
    serve,
    simulator_process,
)
from tests.support.simulator import charge_request as charge

pytestmark = pytest.mark.integration

# the sandbox fixtures (pytest finds them by these names)
_needs_stack = simulator._needs_stack
_fresh_simulator = simulator._fresh_simulator
sim_url = simulator.simulator_url(seed=1)
session = simulator.session
upi = simulator.upi


# --------------------------------------------------------------------- outcomes


async def test_success_vpa_is_approved_and_charged_once(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    request = charge("success@upi", amount=12_345)
    result = await upi.authorize(request)

    assert result.outcome is ProviderOutcome.APPROVED
    assert result.provider == "upi_core"
    assert result.external_txn_id
    assert result.rrn is not None and len(result.rrn) == 12 and result.rrn.isdigit()
    assert result.approval_code is not None and len(result.approval_code) == 6
    book = await ledger(session, sim_url)
    assert book["charges_per_merchant_ref"] == {request.payment_id: 1}
    (entry,) = book["entries"]
    assert entry["idempotency_key"] == request.idempotency_key
    assert entry["amount_paisa"] == 12_345
    assert entry["txn_id"] == result.external_txn_id
    assert entry["charged_at"] is not None


async def test_failure_vpa_is_declined_and_not_charged(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    result = await upi.authorize(charge("failure@upi"))

    assert result.outcome is ProviderOutcome.DECLINED
    assert result.decline_code == "debit_failed"
    assert result.extra["provider_decline_code"] == "U30"
    assert result.retriable is True
    book = await ledger(session, sim_url)
    assert book["charge_count"] == 0
    assert [e["status"] for e in book["entries"]] == ["FAILED"]


@pytest.mark.parametrize("code", sorted(UPI_DECLINES))
async def test_every_sandbox_decline_code_maps_through_the_adapter(
    upi: UpiCoreProvider, code: str
) -> None:
    result = await upi.authorize(charge(f"failure.{code.lower()}@upi"))
    assert result.outcome is ProviderOutcome.DECLINED
    assert result.decline_code == DECLINE_CODES[code].code


async def test_pending_vpa_stays_pending(upi: UpiCoreProvider) -> None:
    request = charge("pending@upi")
    assert (await upi.authorize(request)).outcome is ProviderOutcome.PENDING
    status = await upi.status(request.payment_id, request.idempotency_key)
    assert status.outcome is ProviderOutcome.PENDING


async def test_ordinary_vpa_succeeds_after_the_configured_latency(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    await configure(session, sim_url, latency_ms=150)
    started = time.monotonic()
    result = await upi.authorize(charge("someone@okaxis"))
    assert result.outcome is ProviderOutcome.APPROVED
    assert time.monotonic() - started >= 0.15


async def test_invalid_body_is_a_400_json_error(
    session: aiohttp.ClientSession, sim_url: str
) -> None:
    good = {
        "merchant_ref": "PAY_X",
        "idempotency_key": "PAY_X-a1",
        "amount_paisa": 10_000,
        "currency": "INR",
        "payer_vpa": "success@upi",
        "note": "",
    }
    cases: list[tuple[bytes, str]] = [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({**good, "amount_paisa": 100.0}).encode(), "amount_paisa"),
        (json.dumps({**good, "amount_paisa": "10000"}).encode(), "amount_paisa"),
        (json.dumps({**good, "amount_paisa": 0}).encode(), "amount_paisa"),
        (json.dumps({**good, "currency": "USD"}).encode(), "currency"),
        (json.dumps({**good, "payer_vpa": "not-a-vpa"}).encode(), "payer_vpa"),
        (json.dumps({**good, "idempotency_key": ""}).encode(), "idempotency_key"),
        (
            json.dumps({k: v for k, v in good.items() if k != "merchant_ref"}).encode(),
            "merchant_ref",
        ),
    ]
    for raw, field in cases:
        async with session.post(f"{sim_url}/upi/v1/collect", data=raw) as response:
            assert response.status == 400, raw
            error = (await response.json())["error"]
            assert (error["code"], error["field"]) == ("INVALID_REQUEST", field), raw
    assert (await ledger(session, sim_url))["entries"] == []


# --------------------------------------------------------------------- idempotency


async def test_same_key_twice_charges_once_and_replays_the_answer(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    request = charge("someone@okhdfc")
    first = await upi.authorize(request)
    second = await upi.authorize(request)

    assert first.outcome is second.outcome is ProviderOutcome.APPROVED
    assert first.external_txn_id == second.external_txn_id
    book = await ledger(session, sim_url)
    assert book["charges_per_merchant_ref"] == {request.payment_id: 1}
    assert len(book["entries"]) == 1


async def test_concurrent_duplicates_charge_once(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    await configure(session, sim_url, latency_ms=100)
    request = charge("someone@okicici")
    results = await asyncio.gather(*(upi.authorize(request) for _ in range(5)))

    assert {r.outcome for r in results} == {ProviderOutcome.APPROVED}
    assert len({r.external_txn_id for r in results}) == 1
    assert (await ledger(session, sim_url))["charges_per_merchant_ref"] == {request.payment_id: 1}


async def test_same_key_with_another_amount_is_refused_and_not_charged(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    request = charge("someone@oksbi", amount=10_000)
    assert (await upi.authorize(request)).outcome is ProviderOutcome.APPROVED
    payload = {
        "merchant_ref": request.payment_id,
        "idempotency_key": request.idempotency_key,
        "amount_paisa": 20_000,
        "currency": "INR",
        "payer_vpa": "someone@oksbi",
        "note": "",
    }
    async with session.post(f"{sim_url}/upi/v1/collect", json=payload) as response:
        assert response.status == 422
    altered = ChargeRequest(**{**fields_of(request), "amount_paisa": 20_000})
    assert (await upi.authorize(altered)).outcome is ProviderOutcome.UNKNOWN
    book = await ledger(session, sim_url)
    assert [e["amount_paisa"] for e in book["entries"]] == [10_000]


# --------------------------------------------------------------------- UNKNOWN and NOT_SENT


async def test_dropped_answer_is_unknown_then_resolved_by_status_inquiry(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    await configure(session, sim_url, drop_after_charge_rate=1)
    request = charge("someone@okaxis")
    result = await upi.authorize(request)

    assert result.outcome is ProviderOutcome.UNKNOWN
    assert result.extra["error"] == "ProviderDisconnected"
    assert result.retriable is False
    book = await ledger(session, sim_url)
    assert book["charges_per_merchant_ref"] == {request.payment_id: 1}
    status = await upi.status(request.payment_id, request.idempotency_key)
    assert status.outcome is ProviderOutcome.APPROVED
    assert status.external_txn_id == book["entries"][0]["txn_id"]


async def test_timeout_is_unknown_pending_then_approved_never_charged_twice(
    session: aiohttp.ClientSession, sim_url: str
) -> None:
    impatient = UpiCoreProvider(session, sim_url, 0.2)  # the sandbox sleeps 600 ms
    request = charge("timeout@upi")
    result = await impatient.authorize(request)
    assert result.outcome is ProviderOutcome.UNKNOWN
    assert result.extra["error"] == "ProviderTimeout"

    in_flight = await impatient.status(request.payment_id, request.idempotency_key)
    assert in_flight.outcome is ProviderOutcome.PENDING
    for _ in range(40):
        await asyncio.sleep(0.05)
        final = await impatient.status(request.payment_id, request.idempotency_key)
        if final.outcome is not ProviderOutcome.PENDING:
            break
    assert final.outcome is ProviderOutcome.APPROVED
    assert (await ledger(session, sim_url))["charges_per_merchant_ref"] == {request.payment_id: 1}


async def test_timeout_rate_applies_to_ordinary_vpas(
    session: aiohttp.ClientSession, sim_url: str
) -> None:
    await configure(session, sim_url, timeout_rate=1)
    impatient = UpiCoreProvider(session, sim_url, 0.2)
    assert (await impatient.authorize(charge("someone@okaxis"))).outcome is ProviderOutcome.UNKNOWN


async def test_closed_port_is_not_sent(session: aiohttp.ClientSession) -> None:
    nowhere = UpiCoreProvider(session, f"http://127.0.0.1:{free_port()}", TIMEOUT_S)
    request = charge("success@upi")

    result = await nowhere.authorize(request)
    assert result.outcome is ProviderOutcome.NOT_SENT
    assert result.retriable is True
    assert result.extra["error"] == "ProviderUnavailable"
    status = await nowhere.status(request.payment_id, request.idempotency_key)
    assert status.outcome is ProviderOutcome.NOT_SENT
    assert await nowhere.health() is False


async def test_status_of_a_key_never_sent_is_not_sent(upi: UpiCoreProvider) -> None:
    request = charge("success@upi")
    result = await upi.status(request.payment_id, request.idempotency_key)
    assert result.outcome is ProviderOutcome.NOT_SENT


async def test_a_404_from_the_wrong_service_is_not_proof_of_not_sent(
    session: aiohttp.ClientSession, sim_url: str
) -> None:
    misconfigured = UpiCoreProvider(session, f"{sim_url}/elsewhere", TIMEOUT_S)
    request = charge("success@upi")
    result = await misconfigured.status(request.payment_id, request.idempotency_key)
    assert result.outcome is ProviderOutcome.UNKNOWN
    assert result.extra["error"] == "ProviderProtocolError"


async def test_health(upi: UpiCoreProvider) -> None:
    assert await upi.health() is True


async def test_registry_builds_the_upi_adapter(
    session: aiohttp.ClientSession, sim_url: str
) -> None:
    settings = load_settings({"UPI_CORE_ENDPOINT": sim_url, "PAYSTREAM_PROVIDER_TIMEOUT": "2s"})
    providers = build_providers(settings, session)
    assert set(providers) == {"UPI"}
    assert providers["UPI"].name == "upi_core"
    assert await providers["UPI"].health() is True
    result = await providers["UPI"].authorize(charge("success@upi"))
    assert result.outcome is ProviderOutcome.APPROVED


# --------------------------------------------------------------------- knobs


async def test_failure_rate_declines_with_documented_codes(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    await configure(session, sim_url, failure_rate=1)
    results = [await upi.authorize(charge("someone@okaxis")) for _ in range(5)]
    assert {r.outcome for r in results} == {ProviderOutcome.DECLINED}
    assert {r.extra["provider_decline_code"] for r in results} <= set(UPI_DECLINES)
    success = await upi.authorize(charge("success@upi"))  # test VPAs stay deterministic
    assert success.outcome is ProviderOutcome.APPROVED


async def test_a_seed_reproduces_a_run(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    async def run() -> list[tuple[str, str | None]]:
        await session.post(f"{sim_url}/sim/reset")
        await configure(session, sim_url, seed=42, failure_rate=0.5)
        results = [await upi.authorize(charge("someone@okaxis")) for _ in range(8)]
        return [(r.outcome.value, r.external_txn_id) for r in results]

    first = await run()
    assert first == await run()
    assert len({outcome for outcome, _ in first}) == 2, "0.5 over 8 draws gave one outcome"


async def test_config_is_validated(session: aiohttp.ClientSession, sim_url: str) -> None:
    for bad in (
        {"failure_rate": 1.5},
        {"failure_rate": "0.1"},
        {"latency_ms": -1},
        {"latency_ms": 1.5},
        {"seed": "x"},
        {"no_such_knob": 1},
    ):
        async with session.post(f"{sim_url}/sim/config", json=bad) as response:
            assert response.status == 400, bad
            assert (await response.json())["error"]["code"] == "INVALID_CONFIG"
    async with session.get(f"{sim_url}/sim/config") as response:
        assert (await response.json())["failure_rate"] == 0


# --------------------------------------------------------------------- the shared executor


async def _misbehaving(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    if kind == "redirect":
        raise web.HTTPFound("/ok")
    if kind == "text":
        return web.Response(text="<html>hello</html>")
    if kind == "array":
        return web.json_response([1, 2, 3])
    if kind == "error500":
        return web.json_response({"status": "SUCCESS"}, status=503)
    if kind == "huge":
        return web.Response(body=b'{"pad": "' + b"x" * MAX_RESPONSE_BYTES + b'"}')
    if kind == "slow":
        await asyncio.sleep(0.6)
    if kind == "reset" and request.transport is not None:
        request.transport.abort()
    return web.json_response({"status": "ok"})


@pytest.fixture(scope="module")
async def odd_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{kind}", _misbehaving)
    runner, url = await serve(app)
    yield url
    await runner.cleanup()


@pytest.mark.parametrize(
    ("kind", "error_class", "outcome"),
    [
        ("redirect", ProviderProtocolError, ProviderOutcome.UNKNOWN),
        ("text", ProviderProtocolError, ProviderOutcome.UNKNOWN),
        ("array", ProviderProtocolError, ProviderOutcome.UNKNOWN),
        ("error500", ProviderServerError, ProviderOutcome.UNKNOWN),
        ("huge", ProviderProtocolError, ProviderOutcome.UNKNOWN),
        ("slow", ProviderTimeout, ProviderOutcome.UNKNOWN),
        ("reset", ProviderDisconnected, ProviderOutcome.UNKNOWN),
    ],
)
async def test_executor_classifies_a_misbehaving_provider(
    session: aiohttp.ClientSession,
    odd_url: str,
    kind: str,
    error_class: type[Exception],
    outcome: ProviderOutcome,
) -> None:
    with pytest.raises(error_class) as excinfo:
        await execute(
            session,
            "POST",
            f"{odd_url}/{kind}",
            json={"a": 1},
            timeout_s=0.3,
            provider="test_odd",
            operation=kind,
        )
    assert excinfo.value.outcome is outcome  # type: ignore[attr-defined]


async def test_executor_passes_through_a_5xx_the_contract_defines(
    session: aiohttp.ClientSession, odd_url: str
) -> None:
    status, body = await execute(
        session,
        "GET",
        f"{odd_url}/error500",
        timeout_s=1,
        provider="test_odd",
        operation="passthrough",
        passthrough_statuses={503},
    )
    assert (status, body) == (503, {"status": "SUCCESS"})


async def test_executor_connect_refused_is_not_sent_and_recorded(
    session: aiohttp.ClientSession,
) -> None:
    labels = {"provider": "test_refused", "operation": "authorize", "outcome": "NOT_SENT"}
    before = REGISTRY.get_sample_value("provider_request_duration_seconds_count", labels) or 0
    with pytest.raises(ProviderUnavailable) as excinfo:
        await execute(
            session,
            "POST",
            f"http://127.0.0.1:{free_port()}/x",
            json={},
            timeout_s=1,
            provider="test_refused",
            operation="authorize",
        )
    assert excinfo.value.outcome is ProviderOutcome.NOT_SENT
    after = REGISTRY.get_sample_value("provider_request_duration_seconds_count", labels)
    assert after == before + 1


async def test_executor_records_answered_calls(
    upi: UpiCoreProvider,
) -> None:
    labels = {"provider": "upi_core", "operation": "authorize", "outcome": "2xx"}
    before = REGISTRY.get_sample_value("provider_request_duration_seconds_count", labels) or 0
    await upi.authorize(charge("success@upi"))
    assert REGISTRY.get_sample_value("provider_request_duration_seconds_count", labels) == (
        before + 1
    )


# --------------------------------------------------------------------- the process


async def test_python_m_providers_simulator_serves_and_stops_on_sigterm(
    session: aiohttp.ClientSession,
) -> None:
    async with simulator_process() as (process, url):
        async with session.get(f"{url}/health") as response:
            assert response.status == 200
        upi = UpiCoreProvider(session, url, TIMEOUT_S)
        assert (await upi.authorize(charge("success@upi"))).outcome is ProviderOutcome.APPROVED

        await assert_stops_on_sigterm(process)
