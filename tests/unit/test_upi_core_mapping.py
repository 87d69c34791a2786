"""UPI Core adapter, pure parts: the closed response mapping and request building."""

from __future__ import annotations

from typing import Any

import pytest

from domain.ports import ChargeRequest, ProviderOutcome
from providers.errors import (
    ProviderDisconnected,
    ProviderError,
    ProviderProtocolError,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)
from providers.http import MAX_CONNECT_TIMEOUT_S, connect_timeout_for
from providers.simulator import UPI_DECLINES
from providers.upi_core import (
    DECLINE_CODES,
    GENERIC_DECLINE,
    PROVIDER_NAME,
    REJECTED_REQUEST,
    UpiStatus,
    build_collect_request,
    map_response,
    map_status_response,
    result_from_error,
)

KEY = "PAY_01JD3Q0000ABCDEFGHJKMNPQRS-a1"
REF = "PAY_01JD3Q0000ABCDEFGHJKMNPQRS"


def answer(status: object, **fields: Any) -> dict[str, Any]:
    return {"status": status, "merchant_ref": REF, "idempotency_key": KEY, **fields}


SUCCESS = answer("SUCCESS", txn_id="UPC0001", rrn="123456789012", approval_code="654321")

# ----------------------------------------------------------------- statuses


@pytest.mark.parametrize(
    ("http_status", "body", "outcome"),
    [
        (200, SUCCESS, ProviderOutcome.APPROVED),
        (200, answer("FAILED", txn_id="UPC2", error_code="U30"), ProviderOutcome.DECLINED),
        (200, answer("PENDING", txn_id="UPC3"), ProviderOutcome.PENDING),
        (200, answer("PENDING"), ProviderOutcome.PENDING),
        (400, {"error": {"code": "INVALID_REQUEST"}}, ProviderOutcome.DECLINED),
        (422, {"error": {"code": "IDEMPOTENCY_KEY_REUSED"}}, ProviderOutcome.UNKNOWN),
        (409, answer("SUCCESS", txn_id="UPC1"), ProviderOutcome.UNKNOWN),
        (201, SUCCESS, ProviderOutcome.UNKNOWN),
        (404, {"status": "NOT_FOUND"}, ProviderOutcome.UNKNOWN),  # not a status inquiry
        (200, answer("NOT_FOUND"), ProviderOutcome.UNKNOWN),
    ],
)
def test_http_status_and_provider_status_map_closed(
    http_status: int, body: dict[str, Any], outcome: ProviderOutcome
) -> None:
    result = map_response(http_status, body, idempotency_key=KEY, merchant_ref=REF)
    assert result.outcome is outcome
    assert result.provider == PROVIDER_NAME
    assert result.extra["http_status"] == str(http_status)


@pytest.mark.parametrize(
    "garbage",
    [
        "success",  # case matters: a closed mapping matches exactly
        "Success",
        "APPROVED",
        "REFUNDED",
        "DEEMED",
        "",
        None,
        42,
        ["SUCCESS"],
        {"SUCCESS": True},
        "S" * 500,
    ],
)
def test_unrecognised_status_is_unknown(garbage: object) -> None:
    result = map_response(200, answer(garbage, txn_id="UPC1"), idempotency_key=KEY)
    assert result.outcome is ProviderOutcome.UNKNOWN
    assert result.extra["reason"] == "unrecognised_status"
    assert result.retriable is False
    assert result.raw_status is None or len(result.raw_status) <= 64


def test_body_without_status_is_unknown() -> None:
    assert map_response(200, {}).outcome is ProviderOutcome.UNKNOWN


def test_success_maps_ids() -> None:
    result = map_response(200, SUCCESS, idempotency_key=KEY, merchant_ref=REF)
    assert result.outcome is ProviderOutcome.APPROVED
    assert (result.external_txn_id, result.rrn, result.approval_code) == (
        "UPC0001",
        "123456789012",
        "654321",
    )
    assert result.raw_status == "SUCCESS"
    assert result.decline_code is None


@pytest.mark.parametrize(
    "bad", [{"txn_id": None}, {"txn_id": ""}, {"txn_id": 123}, {"txn_id": ["UPC1"]}]
)
def test_success_without_txn_id_is_garbled(bad: dict[str, Any]) -> None:
    result = map_response(200, {**SUCCESS, **bad})
    assert result.outcome is ProviderOutcome.UNKNOWN
    assert result.extra["reason"] == "success_without_txn_id"


@pytest.mark.parametrize(
    ("rrn", "approval_code"),
    [
        ("12345678901", "65432"),
        ("12345678901a", "65432x"),
        (123456789012, 654321),
        ("\u0661" * 12, ""),
    ],
)
def test_malformed_reference_numbers_are_dropped_not_trusted(
    rrn: object, approval_code: object
) -> None:
    result = map_response(200, {**SUCCESS, "rrn": rrn, "approval_code": approval_code})
    assert result.outcome is ProviderOutcome.APPROVED
    assert result.rrn is None
    assert result.approval_code is None


@pytest.mark.parametrize(
    ("field", "value"), [("idempotency_key", "PAY_OTHER-a1"), ("merchant_ref", "PAY_OTHER")]
)
def test_answer_for_another_request_is_unknown(field: str, value: str) -> None:
    result = map_response(200, {**SUCCESS, field: value}, idempotency_key=KEY, merchant_ref=REF)
    assert result.outcome is ProviderOutcome.UNKNOWN
    assert result.extra["reason"] == "answer_for_another_request"


def test_expected_ids_are_only_checked_when_present_in_the_answer() -> None:
    body = {"status": "SUCCESS", "txn_id": "UPC1"}
    result = map_response(200, body, idempotency_key=KEY, merchant_ref=REF)
    assert result.outcome is ProviderOutcome.APPROVED


# ----------------------------------------------------------------- decline codes

EXPECTED_DECLINES = {
    "U30": ("debit_failed", True),
    "ZM": ("incorrect_pin", True),
    "Z9": ("insufficient_funds", True),
    "U69": ("collect_expired", True),
    "ZA": ("payer_declined", False),
    "Z6": ("pin_tries_exceeded", False),
    "Z8": ("amount_limit_exceeded", False),
    "U16": ("risk_declined", False),
    "ZH": ("invalid_vpa", False),
}


def test_the_decline_table_is_exactly_the_documented_set() -> None:
    assert set(DECLINE_CODES) == set(EXPECTED_DECLINES)
    assert set(UPI_DECLINES) == set(DECLINE_CODES), "the sandbox and the adapter must agree"


@pytest.mark.parametrize(("provider_code", "expected"), sorted(EXPECTED_DECLINES.items()))
def test_every_decline_code_is_normalised(provider_code: str, expected: tuple[str, bool]) -> None:
    body = answer("FAILED", txn_id="UPC9", error_code=provider_code, error_message="free text")
    result = map_response(200, body, idempotency_key=KEY, merchant_ref=REF)
    assert result.outcome is ProviderOutcome.DECLINED
    assert (result.decline_code, result.retriable) == expected
    assert result.decline_message == DECLINE_CODES[provider_code].message
    assert result.decline_message != "free text", "provider text never reaches merchants"
    assert result.extra["provider_decline_code"] == provider_code
    assert result.external_txn_id == "UPC9"


@pytest.mark.parametrize("code", ["ZZ", "u30", "", None, 30, "U30 ", "X" * 40])
def test_failed_with_unlisted_code_is_a_generic_final_decline(code: object) -> None:
    result = map_response(200, answer("FAILED", error_code=code))
    assert result.outcome is ProviderOutcome.DECLINED
    assert result.decline_code == GENERIC_DECLINE.code
    assert result.retriable is False
    assert len(result.extra.get("provider_decline_code", "")) <= 16


def test_bad_request_is_a_final_decline() -> None:
    body = {"error": {"code": "INVALID_REQUEST", "message": "payer_vpa", "field": "payer_vpa"}}
    result = map_response(400, body)
    assert result.outcome is ProviderOutcome.DECLINED
    assert result.decline_code == REJECTED_REQUEST.code
    assert result.retriable is False
    assert result.extra["provider_error_code"] == "INVALID_REQUEST"


# ----------------------------------------------------------------- status inquiry


def test_status_not_found_means_never_reached_the_provider() -> None:
    result = map_status_response(
        404, {"status": "NOT_FOUND", "idempotency_key": KEY}, idempotency_key=KEY
    )
    assert result.outcome is ProviderOutcome.NOT_SENT
    assert result.retriable is True
    assert result.raw_status == UpiStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("http_status", "body"),
    [
        (404, {}),  # a bare 404 (wrong base URL, a proxy) proves nothing
        (404, {"error": "not found"}),
        (404, {"status": "not_found"}),
        (404, {"status": "NOT_FOUND", "idempotency_key": "PAY_OTHER-a1"}),
        (200, {"status": "NOT_FOUND"}),
        (410, {"status": "NOT_FOUND"}),
    ],
)
def test_anything_else_that_looks_like_not_found_is_unknown(
    http_status: int, body: dict[str, Any]
) -> None:
    result = map_status_response(http_status, body, idempotency_key=KEY)
    assert result.outcome is ProviderOutcome.UNKNOWN


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (SUCCESS, ProviderOutcome.APPROVED),
        (answer("FAILED", error_code="ZA"), ProviderOutcome.DECLINED),
        (answer("PENDING"), ProviderOutcome.PENDING),
        (answer("WHATEVER"), ProviderOutcome.UNKNOWN),
    ],
)
def test_status_answers_map_like_collect_answers(
    body: dict[str, Any], outcome: ProviderOutcome
) -> None:
    assert map_status_response(200, body, idempotency_key=KEY).outcome is outcome


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error_class", "outcome", "error_retriable", "result_retriable"),
    [
        (ProviderUnavailable, ProviderOutcome.NOT_SENT, True, True),
        (ProviderRequestError, ProviderOutcome.NOT_SENT, False, False),
        (ProviderTimeout, ProviderOutcome.UNKNOWN, True, False),
        (ProviderDisconnected, ProviderOutcome.UNKNOWN, True, False),
        (ProviderProtocolError, ProviderOutcome.UNKNOWN, False, False),
    ],
)
def test_errors_are_classified_and_unknown_never_invites_a_new_attempt(
    error_class: type[ProviderError],
    outcome: ProviderOutcome,
    error_retriable: bool,
    result_retriable: bool,
) -> None:
    error = error_class("boom")
    assert (error.outcome, error.retriable) == (outcome, error_retriable)
    result = result_from_error(error)
    assert (result.outcome, result.retriable) == (outcome, result_retriable)
    assert result.extra["error"] == error_class.__name__


def test_server_error_is_unknown_and_keeps_its_status() -> None:
    error = ProviderServerError("503", status_code=503)
    assert (error.outcome, error.retriable, error.status_code) == (
        ProviderOutcome.UNKNOWN,
        True,
        503,
    )
    assert result_from_error(error).outcome is ProviderOutcome.UNKNOWN


@pytest.mark.parametrize("timeout_s", [0.05, 0.3, 1.0, 4.9, 5.0, 10.0, 30.0, 120.0])
def test_connect_phase_always_ends_before_the_overall_deadline(timeout_s: float) -> None:
    connect = connect_timeout_for(timeout_s)
    assert 0 < connect <= MAX_CONNECT_TIMEOUT_S
    # aiohttp rounds deadlines >= 5 s up to whole seconds: keep a full second apart.
    assert connect < timeout_s if timeout_s < 5 else connect <= timeout_s - 1


# ----------------------------------------------------------------- request building


def charge(**overrides: Any) -> ChargeRequest:
    fields: dict[str, Any] = {
        "payment_id": REF,
        "attempt_no": 1,
        "idempotency_key": KEY,
        "amount_paisa": 10_050,
        "currency": "INR",
        "payment_method": "UPI",
        "payment_details": {"vpa": "user@paytm"},
        "description": "Payment for order #12345",
    }
    return ChargeRequest(**{**fields, **overrides})


def test_collect_request_carries_our_ids_and_integer_paisa() -> None:
    body = build_collect_request(charge())
    assert body == {
        "merchant_ref": REF,
        "idempotency_key": KEY,
        "amount_paisa": 10_050,
        "currency": "INR",
        "payer_vpa": "user@paytm",
        "note": "Payment for order #12345",
    }
    assert type(body["amount_paisa"]) is int


@pytest.mark.parametrize("amount", [1, 100, 999_999_999, 10**12])
def test_amount_is_passed_through_unchanged(amount: int) -> None:
    body = build_collect_request(charge(amount_paisa=amount))
    assert body["amount_paisa"] == amount
    assert type(body["amount_paisa"]) is int


def test_note_is_cut_to_the_upi_limit_and_vpa_trimmed() -> None:
    body = build_collect_request(
        charge(description="x" * 80, payment_details={"vpa": "  user@paytm "})
    )
    assert body["note"] == "x" * 50
    assert body["payer_vpa"] == "user@paytm"


def test_empty_description_gives_empty_note() -> None:
    assert build_collect_request(charge(description=""))["note"] == ""


@pytest.mark.parametrize("amount", [100.0, 100.5, "10000", True, 0, -100, None])
def test_non_integer_or_non_positive_amounts_are_never_sent(amount: object) -> None:
    with pytest.raises(ProviderRequestError) as excinfo:
        build_collect_request(charge(amount_paisa=amount))
    assert excinfo.value.outcome is ProviderOutcome.NOT_SENT
    assert excinfo.value.retriable is False


@pytest.mark.parametrize("details", [{}, {"vpa": ""}, {"vpa": "   "}, {"card": "tok_1"}])
def test_missing_vpa_is_never_sent(details: dict[str, str]) -> None:
    with pytest.raises(ProviderRequestError):
        build_collect_request(charge(payment_details=details))
