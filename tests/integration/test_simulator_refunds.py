"""UPI Core refunds against the sandbox over a real loopback socket, via UpiCoreProvider.

The simulator's ledger is the oracle: a refund key refunds at most once, the processed
refunds of a payment never exceed what was charged, and an UNKNOWN refund is resolved
by refund status inquiry.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from domain.ids import new_id
from domain.ports import (
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    ProviderOutcome,
    RefundOutcome,
    RefundRequest,
    RefundResult,
)
from providers import build_providers
from providers.simulator import REFUND_FAIL_REASON
from providers.upi_core import UpiCoreProvider
from settings import load_settings
from tests.support import simulator
from tests.support.ports import fields_of
from tests.support.simulator import (
    TIMEOUT_S,
    assert_stops_on_sigterm,
    charge_request,
    configure,
    free_port,
    ledger,
    simulator_process,
)

pytestmark = pytest.mark.integration

# the sandbox fixtures (pytest finds them by these names)
_needs_stack = simulator._needs_stack
_fresh_simulator = simulator._fresh_simulator
sim_url = simulator.simulator_url(seed=7)
session = simulator.session
upi = simulator.upi


async def charged(
    upi: PaymentProvider, vpa: str = "success@upi", amount: int = 10_000
) -> tuple[ChargeRequest, ChargeResult]:
    """Charge a fresh payment; returns (request, result)."""
    request = charge_request(vpa, amount=amount, description="refund test")
    return request, await upi.authorize(request)


def refund_of(
    charge: ChargeRequest, result: ChargeResult, amount: int, *, reason: str = "returned"
) -> RefundRequest:
    refund_id = new_id("RFD")
    return RefundRequest(
        refund_id=refund_id,
        payment_id=charge.payment_id,
        idempotency_key=f"{refund_id}-r1",
        amount_paisa=amount,
        currency="INR",
        payment_method="UPI",
        provider_txn_id=result.external_txn_id or "UPC_NONE",
        reason=reason,
    )


def outcomes(results: list[RefundResult]) -> list[RefundOutcome]:
    return [r.outcome for r in results]


# --------------------------------------------------------------------- full and partial


async def test_full_refund_is_processed_and_recorded(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=12_345)
    request = refund_of(charge, result, 12_345)
    refund = await upi.refund(request)

    assert refund.outcome is RefundOutcome.PROCESSED
    assert refund.provider == "upi_core"
    assert refund.external_refund_id and refund.external_refund_id.startswith("UPR")
    assert refund.failure_code is None
    book = await ledger(session, sim_url)
    assert book["refunded_per_merchant_ref"] == {charge.payment_id: 12_345}
    (entry,) = book["refunds"]
    assert entry["merchant_ref"] == request.refund_id
    assert entry["payment_ref"] == charge.payment_id
    assert entry["original_txn_id"] == result.external_txn_id
    assert entry["refund_txn_id"] == refund.external_refund_id
    assert (entry["status"], entry["amount_paisa"]) == ("SUCCESS", 12_345)
    assert entry["refunded_at"] is not None
    assert book["charges_per_merchant_ref"] == {charge.payment_id: 1}


async def test_two_partial_refunds_then_nothing_is_left(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    first = await upi.refund(refund_of(charge, result, 3_000))
    second = await upi.refund(refund_of(charge, result, 7_000))
    third = await upi.refund(refund_of(charge, result, 1))

    assert outcomes([first, second]) == [RefundOutcome.PROCESSED] * 2
    assert first.external_refund_id != second.external_refund_id
    assert third.outcome is RefundOutcome.FAILED
    assert third.failure_code == "refund_exceeds_captured"
    assert third.extra["provider_error_code"] == "REFUND_EXCEEDS"
    book = await ledger(session, sim_url)
    assert book["refunded_per_merchant_ref"] == {charge.payment_id: 10_000}
    assert [r["status"] for r in book["refunds"]] == ["SUCCESS", "SUCCESS", "FAILED"]


# --------------------------------------------------------------------- the oracle refuses


async def test_over_refund_is_refused_by_the_oracle(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    too_much = await upi.refund(refund_of(charge, result, 10_001))
    assert (too_much.outcome, too_much.failure_code) == (
        RefundOutcome.FAILED,
        "refund_exceeds_captured",
    )
    assert (await upi.refund(refund_of(charge, result, 6_000))).outcome is RefundOutcome.PROCESSED
    over = await upi.refund(refund_of(charge, result, 5_000))
    assert (over.outcome, over.failure_code) == (RefundOutcome.FAILED, "refund_exceeds_captured")
    book = await ledger(session, sim_url)
    assert book["refunded_per_merchant_ref"] == {charge.payment_id: 6_000}


async def test_concurrent_refunds_cannot_over_refund(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    await configure(session, sim_url, latency_ms=100)
    results = await asyncio.gather(
        *(upi.refund(refund_of(charge, result, 4_000)) for _ in range(4))
    )
    assert sorted(outcomes(results)) == sorted(
        [RefundOutcome.PROCESSED] * 2 + [RefundOutcome.FAILED] * 2
    )
    book = await ledger(session, sim_url)
    assert book["refunded_per_merchant_ref"] == {charge.payment_id: 8_000}


@pytest.mark.parametrize(
    ("vpa", "failure_code"),
    [("failure@upi", "original_not_successful"), ("pending@upi", "original_not_successful")],
)
async def test_refund_of_a_charge_that_did_not_succeed_is_refused(
    upi: UpiCoreProvider, vpa: str, failure_code: str
) -> None:
    charge, result = await charged(upi, vpa=vpa)
    assert result.outcome is not ProviderOutcome.APPROVED
    refund = await upi.refund(refund_of(charge, result, 100))
    assert (refund.outcome, refund.failure_code) == (RefundOutcome.FAILED, failure_code)


async def test_refund_of_an_unknown_original_is_refused(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi)
    for request in (
        RefundRequest(**{**fields_of(refund_of(charge, result, 100)), "provider_txn_id": "UPC0"}),
        RefundRequest(**{**fields_of(refund_of(charge, result, 100)), "payment_id": "PAY_OTHER"}),
    ):
        refund = await upi.refund(request)
        assert (refund.outcome, refund.failure_code) == (
            RefundOutcome.FAILED,
            "original_not_found",
        )
    assert (await ledger(session, sim_url))["refunded_per_merchant_ref"] == {}


# --------------------------------------------------------------------- idempotency


async def test_idempotent_retry_refunds_once(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    request = refund_of(charge, result, 10_000)
    first = await upi.refund(request)
    second = await upi.refund(request)

    assert first.outcome is second.outcome is RefundOutcome.PROCESSED
    assert first.external_refund_id == second.external_refund_id
    book = await ledger(session, sim_url)
    assert book["refunded_per_merchant_ref"] == {charge.payment_id: 10_000}
    assert len(book["refunds"]) == 1


async def test_concurrent_duplicates_refund_once(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    await configure(session, sim_url, latency_ms=100)
    request = refund_of(charge, result, 2_500)
    results = await asyncio.gather(*(upi.refund(request) for _ in range(5)))
    assert set(outcomes(results)) == {RefundOutcome.PROCESSED}
    assert len({r.external_refund_id for r in results}) == 1
    book = await ledger(session, sim_url)
    assert book["refunded_per_merchant_ref"] == {charge.payment_id: 2_500}


async def test_same_key_with_another_body_is_422_and_unknown(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    request = refund_of(charge, result, 1_000)
    assert (await upi.refund(request)).outcome is RefundOutcome.PROCESSED
    for change in ({"amount_paisa": 2_000}, {"reason": "other"}, {"refund_id": "RFD_OTHER"}):
        altered = RefundRequest(**{**fields_of(request), **change})
        outcome = await upi.refund(altered)
        assert outcome.outcome is RefundOutcome.UNKNOWN, change
        assert outcome.extra["http_status"] == "422"
    book = await ledger(session, sim_url)
    assert [r["amount_paisa"] for r in book["refunds"]] == [1_000]


async def test_invalid_refund_body_is_a_400_and_nothing_is_refunded(
    session: aiohttp.ClientSession, sim_url: str
) -> None:
    good = {
        "merchant_ref": "RFD_X",
        "payment_ref": "PAY_X",
        "original_txn_id": "UPC1",
        "idempotency_key": "RFD_X-r1",
        "amount_paisa": 100,
        "currency": "INR",
        "reason": "",
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount_paisa": 1.5}, "amount_paisa"),
        ({"amount_paisa": 0}, "amount_paisa"),
        ({"currency": "USD"}, "currency"),
        ({"original_txn_id": ""}, "original_txn_id"),
        ({"payment_ref": None}, "payment_ref"),
        ({"reason": "r" * 101}, "reason"),
        ({"idempotency_key": "bad key"}, "idempotency_key"),
    ]
    for change, field in cases:
        async with session.post(f"{sim_url}/upi/v1/refunds", json={**good, **change}) as response:
            assert response.status == 400, change
            error = (await response.json())["error"]
            assert (error["code"], error["field"]) == ("INVALID_REQUEST", field)
    assert (await ledger(session, sim_url))["refunds"] == []


# --------------------------------------------------------------------- UNKNOWN, FAILED, NOT_SENT


async def test_dropped_refund_is_unknown_then_resolved_by_inquiry(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    await configure(session, sim_url, drop_after_charge_rate=1)
    request = refund_of(charge, result, 10_000)
    refund = await upi.refund(request)

    assert refund.outcome is RefundOutcome.UNKNOWN
    assert refund.extra["error"] == "ProviderDisconnected"
    assert refund.retriable is False
    book = await ledger(session, sim_url)
    assert book["refunded_per_merchant_ref"] == {charge.payment_id: 10_000}
    status = await upi.refund_status(request.refund_id, request.idempotency_key)
    assert status.outcome is RefundOutcome.PROCESSED
    assert status.external_refund_id == book["refunds"][0]["refund_txn_id"]
    await configure(session, sim_url, drop_after_charge_rate=0)
    again = await upi.refund(request)  # the same key replays, never a second refund
    assert again.external_refund_id == status.external_refund_id
    assert len((await ledger(session, sim_url))["refunds"]) == 1


async def test_timed_out_refund_is_unknown_pending_then_processed(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    await configure(session, sim_url, timeout_rate=1)
    impatient = UpiCoreProvider(session, sim_url, 0.2)  # the sandbox sleeps 600 ms
    request = refund_of(charge, result, 10_000)
    refund = await impatient.refund(request)
    assert (refund.outcome, refund.extra["error"]) == (RefundOutcome.UNKNOWN, "ProviderTimeout")

    in_flight = await impatient.refund_status(request.refund_id, request.idempotency_key)
    assert in_flight.outcome is RefundOutcome.PENDING
    assert (await ledger(session, sim_url))["refunds_in_flight"] == [request.idempotency_key]
    for _ in range(40):
        await asyncio.sleep(0.05)
        final = await impatient.refund_status(request.refund_id, request.idempotency_key)
        if final.outcome is not RefundOutcome.PENDING:
            break
    assert final.outcome is RefundOutcome.PROCESSED
    assert (await ledger(session, sim_url))["refunded_per_merchant_ref"] == {
        charge.payment_id: 10_000
    }


async def test_sandbox_fail_reason_is_declined_and_moves_no_money(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    declined = await upi.refund(refund_of(charge, result, 10_000, reason=REFUND_FAIL_REASON))

    assert declined.outcome is RefundOutcome.FAILED
    assert declined.failure_code == "refund_declined"
    assert declined.extra["provider_error_code"] == "REFUND_DECLINED"
    assert declined.retriable is False
    book = await ledger(session, sim_url)
    assert book["refunded_per_merchant_ref"] == {}
    assert [(r["status"], r["error_code"]) for r in book["refunds"]] == [
        ("FAILED", "REFUND_DECLINED")
    ]
    # a failed refund holds nothing back: the whole amount can still be refunded
    retry = await upi.refund(refund_of(charge, result, 10_000))
    assert retry.outcome is RefundOutcome.PROCESSED


async def test_failure_rate_declines_refunds(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi, amount=10_000)
    await configure(session, sim_url, failure_rate=1)
    refund = await upi.refund(refund_of(charge, result, 100))
    assert (refund.outcome, refund.failure_code) == (RefundOutcome.FAILED, "refund_declined")


async def test_closed_port_is_not_sent(session: aiohttp.ClientSession) -> None:
    nowhere = UpiCoreProvider(session, f"http://127.0.0.1:{free_port()}", TIMEOUT_S)
    request = RefundRequest(
        refund_id="RFD_X",
        payment_id="PAY_X",
        idempotency_key="RFD_X-r1",
        amount_paisa=100,
        currency="INR",
        payment_method="UPI",
        provider_txn_id="UPC1",
    )
    refund = await nowhere.refund(request)
    assert (refund.outcome, refund.retriable) == (RefundOutcome.NOT_SENT, True)
    assert refund.extra["error"] == "ProviderUnavailable"
    status = await nowhere.refund_status(request.refund_id, request.idempotency_key)
    assert status.outcome is RefundOutcome.NOT_SENT


async def test_refund_status_of_a_key_never_sent_is_not_sent(upi: UpiCoreProvider) -> None:
    result = await upi.refund_status("RFD_NEVER", "RFD_NEVER-r1")
    assert (result.outcome, result.raw_status) == (RefundOutcome.NOT_SENT, "NOT_FOUND")


async def test_refund_keys_are_their_own_namespace(upi: UpiCoreProvider) -> None:
    charge, _ = await charged(upi)
    result = await upi.refund_status(charge.payment_id, charge.idempotency_key)
    assert result.outcome is RefundOutcome.NOT_SENT


async def test_reset_forgets_refunds(
    upi: UpiCoreProvider, session: aiohttp.ClientSession, sim_url: str
) -> None:
    charge, result = await charged(upi)
    await upi.refund(refund_of(charge, result, 100))
    await session.post(f"{sim_url}/sim/reset")
    book = await ledger(session, sim_url)
    assert (book["refunds"], book["refunded_per_merchant_ref"]) == ([], {})


async def test_registry_adapter_refunds(session: aiohttp.ClientSession, sim_url: str) -> None:
    settings = load_settings({"UPI_CORE_ENDPOINT": sim_url, "PAYSTREAM_PROVIDER_TIMEOUT": "2s"})
    provider = build_providers(settings, session)["UPI"]
    charge, result = await charged(provider)
    refund = await provider.refund(refund_of(charge, result, 10_000))
    assert refund.outcome is RefundOutcome.PROCESSED


# --------------------------------------------------------------------- the process


async def test_the_simulator_process_refunds_and_keeps_the_oracle(
    session: aiohttp.ClientSession,
) -> None:
    async with simulator_process() as (process, url):
        upi = UpiCoreProvider(session, url, TIMEOUT_S)
        charge, result = await charged(upi, amount=5_000)
        first = await upi.refund(refund_of(charge, result, 2_000))
        over = await upi.refund(refund_of(charge, result, 3_001))
        assert (first.outcome, over.outcome) == (RefundOutcome.PROCESSED, RefundOutcome.FAILED)
        assert (await ledger(session, url))["refunded_per_merchant_ref"] == {
            charge.payment_id: 2_000
        }
        await assert_stops_on_sigterm(process)
