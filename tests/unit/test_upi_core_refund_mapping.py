"""UPI Core refunds, pure parts: the closed refund mapping and refund request building."""

from __future__ import annotations

from typing import Any

import pytest

from domain.ports import ProviderOutcome, RefundOutcome, RefundRequest
from providers.errors import (
    ProviderDisconnected,
    ProviderError,
    ProviderProtocolError,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)
from providers.simulator import UPI_REFUND_ERRORS
from providers.upi_core import (
    GENERIC_REFUND_FAILURE,
    PROVIDER_NAME,
    REFUND_FAILURE_CODES,
    REJECTED_REFUND,
    UpiStatus,
    build_refund_request,
    map_refund_response,
    map_refund_status_response,
    refund_result_from_error,
)
from tests.support.ports import fields_of

REF = "PAY_01JD3Q0000ABCDEFGHJKMNPQRS"
RFD = "RFD_01JD3Q0000ABCDEFGHJKMNPQRS"
KEY = f"{RFD}-r1"
AMOUNT = 4_000


def answer(status: object, **fields: Any) -> dict[str, Any]:
    return {
        "status": status,
        "merchant_ref": RFD,
        "payment_ref": REF,
        "idempotency_key": KEY,
        "amount_paisa": AMOUNT,
        **fields,
    }


PROCESSED = answer("SUCCESS", refund_txn_id="UPR0001")
F = RefundOutcome.FAILED


def failed(code: str) -> dict[str, Any]:
    return answer("FAILED", error_code=code)


def mapped(http_status: int, body: dict[str, Any]) -> Any:
    return map_refund_response(
        http_status, body, idempotency_key=KEY, refund_id=RFD, payment_id=REF, amount_paisa=AMOUNT
    )


# ----------------------------------------------------------------- the table


@pytest.mark.parametrize(
    ("http_status", "body", "outcome", "failure_code"),
    [
        (200, PROCESSED, RefundOutcome.PROCESSED, None),
        (200, failed("REFUND_EXCEEDS"), F, "refund_exceeds_captured"),
        (200, failed("ORIGINAL_NOT_FOUND"), F, "original_not_found"),
        (200, failed("ORIGINAL_NOT_SUCCESS"), F, "original_not_successful"),
        (200, failed("REFUND_DECLINED"), F, "refund_declined"),
        (200, failed("ZZ"), F, "provider_refund_failed"),
        (200, answer("FAILED"), F, "provider_refund_failed"),
        (200, answer("PENDING"), RefundOutcome.PENDING, None),
        (200, answer("PENDING", refund_txn_id="UPR2"), RefundOutcome.PENDING, None),
        (400, {"error": {"code": "INVALID_REQUEST"}}, F, "provider_rejected_request"),
        (422, {"error": {"code": "IDEMPOTENCY_KEY_REUSED"}}, RefundOutcome.UNKNOWN, None),
        (404, {"status": "NOT_FOUND"}, RefundOutcome.UNKNOWN, None),  # not an inquiry
        (409, PROCESSED, RefundOutcome.UNKNOWN, None),
        (201, PROCESSED, RefundOutcome.UNKNOWN, None),
        (200, answer("NOT_FOUND"), RefundOutcome.UNKNOWN, None),
        (200, answer("REFUNDED", refund_txn_id="UPR1"), RefundOutcome.UNKNOWN, None),
        (200, answer("PROCESSED", refund_txn_id="UPR1"), RefundOutcome.UNKNOWN, None),
        (200, answer("success", refund_txn_id="UPR1"), RefundOutcome.UNKNOWN, None),
        (200, answer(None), RefundOutcome.UNKNOWN, None),
        (200, answer(["SUCCESS"]), RefundOutcome.UNKNOWN, None),
        (200, {}, RefundOutcome.UNKNOWN, None),
    ],
)
def test_refund_answers_map_closed(
    http_status: int, body: dict[str, Any], outcome: RefundOutcome, failure_code: str | None
) -> None:
    result = mapped(http_status, body)
    assert result.outcome is outcome
    assert result.provider == PROVIDER_NAME
    assert result.failure_code == failure_code
    assert result.extra["http_status"] == str(http_status)
    assert result.retriable is False
    if outcome is RefundOutcome.UNKNOWN:
        assert result.external_refund_id is None


def test_processed_carries_the_provider_refund_id() -> None:
    result = mapped(200, PROCESSED)
    assert (result.external_refund_id, result.raw_status) == ("UPR0001", "SUCCESS")
    assert result.failure_message is None


@pytest.mark.parametrize("bad", [None, "", 7, ["UPR1"]])
def test_success_without_refund_txn_id_is_garbled(bad: object) -> None:
    result = mapped(200, {**PROCESSED, "refund_txn_id": bad})
    assert result.outcome is RefundOutcome.UNKNOWN
    assert result.extra["reason"] == "success_without_refund_txn_id"


def test_collect_txn_id_is_not_a_refund_id() -> None:
    result = mapped(200, answer("SUCCESS", txn_id="UPC1"))
    assert result.outcome is RefundOutcome.UNKNOWN


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("idempotency_key", "RFD_OTHER-r1"),
        ("merchant_ref", "RFD_OTHER"),
        ("payment_ref", "PAY_OTHER"),
        ("amount_paisa", AMOUNT + 1),
        ("amount_paisa", str(AMOUNT)),
        ("amount_paisa", float(AMOUNT)),
    ],
)
def test_answer_for_another_refund_is_unknown(field: str, value: object) -> None:
    result = mapped(200, {**PROCESSED, field: value})
    assert result.outcome is RefundOutcome.UNKNOWN
    assert result.extra["reason"] == "answer_for_another_request"


def test_expected_fields_are_only_checked_when_present() -> None:
    result = mapped(200, {"status": "SUCCESS", "refund_txn_id": "UPR1"})
    assert result.outcome is RefundOutcome.PROCESSED


def test_failure_table_is_the_documented_set_and_matches_the_sandbox() -> None:
    assert set(REFUND_FAILURE_CODES) == set(UPI_REFUND_ERRORS)


@pytest.mark.parametrize("code", sorted(REFUND_FAILURE_CODES))
def test_provider_text_never_reaches_merchants(code: str) -> None:
    result = mapped(200, answer("FAILED", error_code=code, error_message="free text"))
    assert result.failure_message == REFUND_FAILURE_CODES[code].message
    assert result.extra["provider_error_code"] == code


def test_unlisted_code_is_generic_and_truncated() -> None:
    result = mapped(200, answer("FAILED", error_code="X" * 40, refund_txn_id="UPR9"))
    assert result.failure_code == GENERIC_REFUND_FAILURE.code
    assert len(result.extra["provider_error_code"]) <= 32
    assert result.external_refund_id == "UPR9"


def test_bad_request_is_a_final_failure() -> None:
    result = mapped(400, {"error": {"code": "INVALID_REQUEST", "field": "original_txn_id"}})
    assert (result.outcome, result.failure_code) == (RefundOutcome.FAILED, REJECTED_REFUND.code)
    assert result.extra["provider_error_code"] == "INVALID_REQUEST"


# ----------------------------------------------------------------- status inquiry


def test_refund_status_not_found_is_not_sent() -> None:
    result = map_refund_status_response(
        404, {"status": "NOT_FOUND", "idempotency_key": KEY}, idempotency_key=KEY, refund_id=RFD
    )
    assert result.outcome is RefundOutcome.NOT_SENT
    assert result.retriable is True
    assert result.raw_status == UpiStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("http_status", "body"),
    [
        (404, {}),
        (404, {"status": "not_found"}),
        (404, {"status": "NOT_FOUND", "idempotency_key": "RFD_OTHER-r1"}),
        (200, {"status": "NOT_FOUND"}),
        (410, {"status": "NOT_FOUND"}),
    ],
)
def test_anything_else_like_not_found_is_unknown(http_status: int, body: dict[str, Any]) -> None:
    result = map_refund_status_response(http_status, body, idempotency_key=KEY, refund_id=RFD)
    assert result.outcome is RefundOutcome.UNKNOWN


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        (PROCESSED, RefundOutcome.PROCESSED),
        (failed("REFUND_DECLINED"), F),
        ({"status": "PENDING", "merchant_ref": RFD, "idempotency_key": KEY}, RefundOutcome.PENDING),
        (answer("WHATEVER"), RefundOutcome.UNKNOWN),
        ({**PROCESSED, "merchant_ref": "RFD_OTHER"}, RefundOutcome.UNKNOWN),
    ],
)
def test_refund_status_answers_map_like_refund_answers(
    body: dict[str, Any], outcome: RefundOutcome
) -> None:
    result = map_refund_status_response(200, body, idempotency_key=KEY, refund_id=RFD)
    assert result.outcome is outcome


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error", "outcome", "retriable"),
    [
        (ProviderUnavailable("refused"), RefundOutcome.NOT_SENT, True),
        (ProviderRequestError("bad"), RefundOutcome.NOT_SENT, False),
        (ProviderTimeout("slow"), RefundOutcome.UNKNOWN, False),
        (ProviderDisconnected("reset"), RefundOutcome.UNKNOWN, False),
        (ProviderProtocolError("garbled"), RefundOutcome.UNKNOWN, False),
        (ProviderServerError("503", status_code=503), RefundOutcome.UNKNOWN, False),
    ],
)
def test_transport_errors_map_and_unknown_is_never_retriable(
    error: ProviderError, outcome: RefundOutcome, retriable: bool
) -> None:
    result = refund_result_from_error(error)
    assert (result.outcome, result.retriable) == (outcome, retriable)
    assert result.extra["error"] == type(error).__name__


def test_every_transport_outcome_has_a_refund_outcome() -> None:
    for outcome in (ProviderOutcome.NOT_SENT, ProviderOutcome.UNKNOWN):
        assert RefundOutcome(outcome.value).value == outcome.value


# ----------------------------------------------------------------- request building


def refund(**overrides: Any) -> RefundRequest:
    fields: dict[str, Any] = {
        "refund_id": RFD,
        "payment_id": REF,
        "idempotency_key": KEY,
        "amount_paisa": AMOUNT,
        "currency": "INR",
        "payment_method": "UPI",
        "provider_txn_id": "UPC0001",
        "reason": "customer returned the order",
    }
    return RefundRequest(**{**fields, **overrides})


def test_refund_request_carries_our_ids_the_original_and_integer_paisa() -> None:
    body = build_refund_request(refund())
    assert body == {
        "merchant_ref": RFD,
        "payment_ref": REF,
        "original_txn_id": "UPC0001",
        "idempotency_key": KEY,
        "amount_paisa": AMOUNT,
        "currency": "INR",
        "reason": "customer returned the order",
    }
    assert type(body["amount_paisa"]) is int


def test_reason_defaults_to_empty_and_is_cut_to_the_limit() -> None:
    fields = fields_of(refund())
    del fields["reason"]
    assert build_refund_request(RefundRequest(**fields))["reason"] == ""
    assert build_refund_request(refund(reason="r" * 300))["reason"] == "r" * 100


@pytest.mark.parametrize("amount", [100.0, "4000", True, 0, -1, None])
def test_bad_amounts_are_never_sent(amount: object) -> None:
    with pytest.raises(ProviderRequestError) as excinfo:
        build_refund_request(refund(amount_paisa=amount))
    assert (excinfo.value.outcome, excinfo.value.retriable) == (ProviderOutcome.NOT_SENT, False)


@pytest.mark.parametrize("field", ["refund_id", "payment_id", "provider_txn_id", "idempotency_key"])
@pytest.mark.parametrize("value", ["", "  ", None])
def test_missing_ids_are_never_sent(field: str, value: object) -> None:
    with pytest.raises(ProviderRequestError):
        build_refund_request(refund(**{field: value}))
