"""Pure domain rules: money, identifiers, UPI links, provider outcomes, the payment view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from domain.errors import RequestError
from domain.events import PaymentRequested, PaymentStatusChanged
from domain.ids import attempt_idempotency_key, event_id, is_payment_id, new_payment_id
from domain.lifecycle import Outcome
from domain.money import MAX_AMOUNT_PAISA, format_major, parse_amount_paisa, parse_currency
from domain.ports import ChargeResult, ProviderOutcome
from domain.processing import PROVIDER_UNAVAILABLE, charge_outcome, charge_request
from domain.status import PaymentStatus
from domain.upi import intent_link, parse_vpa
from domain.views import payment_view

NOW = datetime(2026, 1, 15, 10, 15, 30, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (100.0, "amount_invalid"),
        (99.5, "amount_invalid"),
        ("10000", "amount_invalid"),
        (True, "amount_invalid"),
        (None, "amount_invalid"),
        (0, "amount_too_small"),
        (-100, "amount_too_small"),
        (99, "amount_too_small"),
        (MAX_AMOUNT_PAISA + 1, "amount_too_large"),
        (10**30, "amount_too_large"),
    ],
)
def test_bad_amounts_are_refused_with_a_precise_code(value: object, code: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_amount_paisa(value)
    assert info.value.code == code
    assert info.value.param == "amount_paisa"


def test_good_amounts_pass_unchanged() -> None:
    assert parse_amount_paisa(10_000) == 10_000
    assert parse_amount_paisa(MAX_AMOUNT_PAISA) == MAX_AMOUNT_PAISA


@pytest.mark.parametrize("currency", ["USD", "inr", "", 356, None])
def test_only_inr_is_accepted(currency: object) -> None:
    with pytest.raises(RequestError):
        parse_currency(currency)


@pytest.mark.parametrize(
    ("paisa", "text"), [(10_000, "100.00"), (10_050, "100.50"), (1, "0.01"), (-250, "-2.50")]
)
def test_format_major_uses_integer_arithmetic(paisa: int, text: str) -> None:
    assert format_major(paisa) == text


def test_payment_ids_are_prefixed_unique_and_time_sortable() -> None:
    earlier = new_payment_id(now_ms=1_700_000_000_000)
    later = new_payment_id(now_ms=1_700_000_000_001)
    assert earlier.startswith("PAY_") and len(earlier) == 30
    assert earlier < later
    assert len({new_payment_id() for _ in range(1000)}) == 1000
    assert is_payment_id(earlier)
    assert not is_payment_id("PAY_123456789")
    assert not is_payment_id("PAY_" + "!" * 26)


def test_event_ids_are_stable_per_object_and_sequence() -> None:
    assert event_id("PAY_X", 1) == event_id("PAY_X", 1)
    assert event_id("PAY_X", 1) != event_id("PAY_X", 2)
    assert attempt_idempotency_key("PAY_X", 2) == "PAY_X-a2"


@pytest.mark.parametrize("vpa", ["user@paytm", "success@upi", "a.b-c_d@okhdfcbank"])
def test_valid_vpas(vpa: str) -> None:
    assert parse_vpa(vpa) == vpa.lower()


@pytest.mark.parametrize("vpa", ["", "user", "@paytm", "user@", "us er@paytm", "u@1bank", 42, None])
def test_invalid_vpas(vpa: object) -> None:
    with pytest.raises(RequestError) as info:
        parse_vpa(vpa)
    assert info.value.code == "vpa_invalid"


def test_upi_intent_link_has_the_npci_parameters() -> None:
    link = intent_link(
        payee_vpa="merchant@bank",
        payee_name="Acme Stores",
        amount_paisa=10_050,
        note="Order #12345 & more",
        reference="PAY_X",
    )
    parsed = urlparse(link)
    assert (parsed.scheme, parsed.netloc) == ("upi", "pay")
    query = parse_qs(parsed.query)
    assert query == {
        "pa": ["merchant@bank"],
        "pn": ["Acme Stores"],
        "am": ["100.50"],
        "cu": ["INR"],
        "tn": ["Order #12345 & more"],
        "tr": ["PAY_X"],
    }


REQUEST = PaymentRequested(
    "PAY_X",
    "m1",
    "u1",
    10_000,
    0,
    "INR",
    "UPI",
    {"vpa": "a@upi"},
    "d",
    None,
    {},
    NOW,
    NOW + timedelta(minutes=15),
    "req_1",
)
PENDING = PaymentStatusChanged.first(REQUEST, PaymentStatus.PENDING, NOW)


def test_first_event_is_sequence_one_from_created() -> None:
    assert (PENDING.sequence, PENDING.status, PENDING.previous_status) == (1, "PENDING", "CREATED")
    assert charge_request(REQUEST, 1, "PAY_X-a1").amount_paisa == 10_000


def test_approved_is_captured_with_gateway_details() -> None:
    result = ChargeResult(
        ProviderOutcome.APPROVED, "upi_core", "TXN1", rrn="123456789012", approval_code="123456"
    )
    outcome, changes = charge_outcome(result, NOW)
    assert outcome is Outcome.CAPTURED
    assert changes == {
        "provider": "upi_core",
        "external_txn_id": "TXN1",
        "processed_at": NOW,
        "rrn": "123456789012",
        "approval_code": "123456",
    }


def test_declined_carries_the_decline_code() -> None:
    result = ChargeResult(ProviderOutcome.DECLINED, "upi_core", decline_code="U30")
    outcome, changes = charge_outcome(result, NOW)
    assert outcome is Outcome.DECLINED
    assert changes["failure_code"] == "U30"


def test_unknown_outcome_is_kept_apart() -> None:
    outcome, changes = charge_outcome(ChargeResult(ProviderOutcome.UNKNOWN, "upi_core"), NOW)
    assert outcome is Outcome.UNKNOWN
    assert "failure_code" not in changes


def test_not_sent_fails_as_provider_unavailable() -> None:
    outcome, changes = charge_outcome(ChargeResult(ProviderOutcome.NOT_SENT, "upi_core"), NOW)
    assert outcome is Outcome.DECLINED
    assert changes["failure_code"] == PROVIDER_UNAVAILABLE


def test_a_pending_upi_collect_waits_for_the_payer() -> None:
    pending = ChargeResult(ProviderOutcome.PENDING, "upi_core")
    assert charge_outcome(pending, NOW, "UPI")[0] is Outcome.ACTION_REQUIRED
    assert charge_outcome(pending, NOW, "CARD")[0] is Outcome.PENDING


def test_terminal_statuses() -> None:
    assert PaymentStatus.FAILED.is_terminal and PaymentStatus.REFUNDED.is_terminal
    assert not PaymentStatus.PENDING.is_terminal and not PaymentStatus.SUCCESS.is_terminal


def test_payment_view_has_the_spec_fields_and_utc_seconds() -> None:
    from dataclasses import asdict

    view = payment_view(asdict(PENDING))
    for key in (
        "payment_id",
        "status",
        "amount_paisa",
        "fees_paisa",
        "external_txn_id",
        "gateway_response",
        "processed_at",
        "created_at",
        "expires_at",
    ):
        assert key in view
    assert view["created_at"] == "2026-01-15T10:15:30Z"
    assert view["gateway_response"] is None
