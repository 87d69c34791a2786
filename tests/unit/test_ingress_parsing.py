"""Pure request parsing of the payments API: every bad input gives its status, code and param."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.errors import RequestError
from domain.status import PaymentMethod, PaymentStatus
from domain.views import payment_view
from ingress.parsing import (
    CreatePayment,
    accepted_payment,
    build_payment_requested,
    contains_card_number,
    decode_json_object,
    parse_create_payment,
    payment_note,
)
from schemas.records import decode, encode

MERCHANT = "123e4567-e89b-12d3-a456-426614174001"
VALID: dict[str, Any] = {
    "user_id": "123e4567-e89b-12d3-a456-426614174000",
    "merchant_id": MERCHANT,
    "amount_paisa": 10000,
    "currency": "INR",
    "payment_method": "UPI",
    "payment_details": {"vpa": "User@Paytm"},
    "description": "Payment for order #12345",
    "callback_url": "https://merchant.com/webhook",
    "metadata": {"order_id": "12345", "customer_email": "user@example.com"},
}
_MISSING = object()


def with_field(path: str, value: object) -> dict[str, Any]:
    """VALID with ``path`` (dotted) set to ``value``, or removed if ``value`` is _MISSING."""
    body = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    if value is _MISSING:
        del target[leaf]
    else:
        target[leaf] = value
    return body


BAD_BODIES = [
    # (case id, dotted field, value or _MISSING, expected code[, expected param if not the field])
    ("user_id missing", "user_id", _MISSING, "parameter_missing"),
    ("user_id null", "user_id", None, "parameter_missing"),
    ("user_id empty", "user_id", "", "parameter_invalid"),
    ("user_id number", "user_id", 42, "parameter_invalid"),
    ("user_id too long", "user_id", "u" * 65, "parameter_invalid"),
    ("user_id spaces", "user_id", "user 1", "parameter_invalid"),
    ("user_id leading dash", "user_id", "-u1", "parameter_invalid"),
    ("user_id email", "user_id", "a@b.com", "parameter_invalid"),
    ("user_id pan", "user_id", "4111111111111111", "card_data_not_allowed"),
    ("merchant mismatch", "merchant_id", "m_other", "merchant_mismatch"),
    ("merchant number", "merchant_id", 7, "parameter_invalid"),
    ("amount missing", "amount_paisa", _MISSING, "parameter_missing"),
    ("amount float", "amount_paisa", 100.0, "amount_invalid"),
    ("amount fraction", "amount_paisa", 100.5, "amount_invalid"),
    ("amount string", "amount_paisa", "10000", "amount_invalid"),
    ("amount bool", "amount_paisa", True, "amount_invalid"),
    ("amount list", "amount_paisa", [100], "amount_invalid"),
    ("amount zero", "amount_paisa", 0, "amount_too_small"),
    ("amount negative", "amount_paisa", -100, "amount_too_small"),
    ("amount under 1 rupee", "amount_paisa", 99, "amount_too_small"),
    ("amount huge", "amount_paisa", 10**12, "amount_too_large"),
    ("amount 2^63", "amount_paisa", 2**63, "amount_too_large"),
    ("currency missing", "currency", _MISSING, "parameter_missing"),
    ("currency USD", "currency", "USD", "currency_not_supported"),
    ("currency lower", "currency", "inr", "currency_not_supported"),
    ("currency number", "currency", 356, "currency_not_supported"),
    ("method missing", "payment_method", _MISSING, "parameter_missing"),
    ("method CARD", "payment_method", "CARD", "payment_method_unavailable"),
    ("method WALLET", "payment_method", "WALLET", "payment_method_unavailable"),
    ("method NETBANKING", "payment_method", "NETBANKING", "payment_method_unavailable"),
    ("method unknown", "payment_method", "BITCOIN", "payment_method_invalid"),
    ("method lower", "payment_method", "upi", "payment_method_invalid"),
    ("method number", "payment_method", 1, "payment_method_invalid"),
    ("details missing", "payment_details", _MISSING, "parameter_missing"),
    ("details string", "payment_details", "user@paytm", "parameter_invalid"),
    ("vpa missing", "payment_details", {}, "parameter_missing", "payment_details.vpa"),
    ("vpa null", "payment_details.vpa", None, "parameter_missing"),
    ("vpa malformed", "payment_details.vpa", "not-a-vpa", "vpa_invalid"),
    ("vpa number", "payment_details.vpa", 12345, "vpa_invalid"),
    ("details unknown key", "payment_details.pin", "1234", "parameter_unknown"),
    ("details card number", "payment_details.card_number", "4111111111111111", "parameter_unknown"),
    ("description number", "description", 5, "parameter_invalid"),
    ("description too long", "description", "d" * 256, "parameter_invalid"),
    ("description control", "description", "a\x00b", "parameter_invalid"),
    ("description surrogate", "description", "a\ud800b", "parameter_invalid"),
    ("description pan", "description", "card 4111 1111 1111 1111", "card_data_not_allowed"),
    ("callback ftp", "callback_url", "ftp://merchant.com/hook", "parameter_invalid"),
    ("callback relative", "callback_url", "/webhook", "parameter_invalid"),
    ("callback no host", "callback_url", "https://", "parameter_invalid"),
    ("callback space", "callback_url", "https://merchant.com/a b", "parameter_invalid"),
    ("callback credentials", "callback_url", "https://u:p@merchant.com/", "parameter_invalid"),
    ("callback bad port", "callback_url", "https://merchant.com:99999/", "parameter_invalid"),
    ("callback too long", "callback_url", "https://m.com/" + "a" * 2040, "parameter_invalid"),
    ("callback number", "callback_url", 1, "parameter_invalid"),
    ("metadata list", "metadata", ["a"], "parameter_invalid"),
    ("metadata 21 keys", "metadata", {f"k{i}": "v" for i in range(21)}, "parameter_invalid"),
    ("metadata long key", "metadata", {"k" * 41: "v"}, "parameter_invalid"),
    ("metadata empty key", "metadata", {"": "v"}, "parameter_invalid"),
    ("metadata long value", "metadata.note", "v" * 501, "parameter_invalid"),
    ("metadata number value", "metadata.count", 3, "parameter_invalid"),
    ("metadata null value", "metadata.gone", None, "parameter_invalid"),
    ("metadata nested", "metadata.obj", {"a": "b"}, "parameter_invalid"),
    ("metadata pan", "metadata.card", "5555555555554444", "card_data_not_allowed"),
    ("unknown field", "foo", "bar", "parameter_unknown"),
    ("server status", "status", "SUCCESS", "parameter_unknown"),
    ("server fees", "fees_paisa", 0, "parameter_unknown"),
    ("server payment_id", "payment_id", "PAY_X", "parameter_unknown"),
    ("server created_at", "created_at", "2024-01-01T00:00:00Z", "parameter_unknown"),
    ("server expires_at", "expires_at", "2099-01-01T00:00:00Z", "parameter_unknown"),
    ("card at top level", "card_number", "4111111111111111", "parameter_unknown"),
]


@pytest.mark.parametrize("case", BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
def test_bad_body_is_rejected_with_code_and_param(case: tuple[Any, ...]):
    _, path, value, code, *param = case
    with pytest.raises(RequestError) as caught:
        parse_create_payment(with_field(path, value), MERCHANT)
    error = caught.value
    assert (error.status, error.type, error.code, error.param) == (
        400,
        "invalid_request_error",
        code,
        param[0] if param else path,
    )
    assert error.message


@pytest.mark.parametrize(
    "secret",
    ["4111111111111111", "payer.name@okicici", "hunter2-super-secret"],
)
def test_error_messages_never_echo_submitted_values(secret: str):
    for field in ("description", "user_id", "payment_details.vpa", "amount_paisa"):
        with pytest.raises(RequestError) as caught:  # the NUL makes every one of them invalid
            parse_create_payment(with_field(field, secret + "\x00"), MERCHANT)
        assert secret not in caught.value.message


def test_happy_path_gives_a_normalised_command():
    command = parse_create_payment(VALID, MERCHANT)
    assert command == CreatePayment(
        user_id=VALID["user_id"],
        amount_paisa=10000,
        currency="INR",
        payment_method=PaymentMethod.UPI,
        payment_details={"vpa": "user@paytm"},
        description="Payment for order #12345",
        callback_url="https://merchant.com/webhook",
        metadata={"order_id": "12345", "customer_email": "user@example.com"},
    )


def test_minimal_body_takes_defaults_and_merchant_from_token():
    body = {
        key: VALID[key]
        for key in ("user_id", "amount_paisa", "currency", "payment_method", "payment_details")
    }
    command = parse_create_payment(body, "m_from_token")
    assert command.description == ""
    assert command.callback_url is None
    assert command.metadata == {}


def test_optional_fields_may_be_null():
    body = {**VALID, "merchant_id": None, "description": None, "callback_url": None}
    body["metadata"] = None
    command = parse_create_payment(body, MERCHANT)
    assert (command.description, command.callback_url, command.metadata) == ("", None, {})


def test_limits_are_inclusive():
    body = {
        **VALID,
        "user_id": "u" * 64,
        "description": "d" * 255,
        "callback_url": "https://m.com/" + "a" * (2048 - len("https://m.com/")),
        "metadata": {f"k{i:02d}" + "x" * 37: "v" * 500 for i in range(20)},
        "amount_paisa": 1_000_000_000,
    }
    command = parse_create_payment(body, MERCHANT)
    assert len(command.metadata) == 20
    assert command.amount_paisa == 1_000_000_000
    assert parse_create_payment({**VALID, "amount_paisa": 100}, MERCHANT).amount_paisa == 100


def test_unicode_description_and_metadata_are_kept():
    body = {**VALID, "description": "चाय ☕ ₹50", "metadata": {"नोट": "धन्यवाद"}}
    command = parse_create_payment(body, MERCHANT)
    assert command.description == "चाय ☕ ₹50"
    assert command.metadata == {"नोट": "धन्यवाद"}


BAD_RAW = [
    ("wrong content type", b'{"a": 1}', "text/plain", None),
    ("form content type", b"a=1", "application/x-www-form-urlencoded", None),
    ("latin-1 charset", b'{"a": 1}', "application/json", "latin-1"),
    ("empty body", b"", "application/json", None),
    ("whitespace body", b"  \n", "application/json", None),
    ("malformed", b'{"user_id": ', "application/json", None),
    ("trailing garbage", b'{"a": 1} x', "application/json", None),
    ("array", b"[1, 2]", "application/json", None),
    ("string", b'"hello"', "application/json", None),
    ("number", b"10000", "application/json", None),
    ("null", b"null", "application/json", None),
    ("NaN", b'{"amount_paisa": NaN}', "application/json", None),
    ("Infinity", b'{"amount_paisa": Infinity}', "application/json", None),
    ("duplicate key", b'{"amount_paisa": 1, "amount_paisa": 10000}', "application/json", None),
    ("nested duplicate", b'{"metadata": {"a": "1", "a": "2"}}', "application/json", None),
    ("invalid utf-8", b'{"description": "\xff\xfe"}', "application/json", None),
    ("giant int", b'{"amount_paisa": ' + b"9" * 5000 + b"}", "application/json", None),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "application/json", None),
]


@pytest.mark.parametrize(
    ("raw", "content_type", "charset"), [c[1:] for c in BAD_RAW], ids=[c[0] for c in BAD_RAW]
)
def test_bad_raw_body_is_a_400(raw: bytes, content_type: str, charset: str | None):
    with pytest.raises(RequestError) as caught:
        decode_json_object(raw, content_type, charset)
    assert caught.value.status == 400
    assert caught.value.code in {"content_type_invalid", "body_invalid"}


def test_json_object_is_decoded():
    raw = json.dumps(VALID).encode()
    assert decode_json_object(raw, "application/json", "utf-8") == VALID
    assert decode_json_object(raw, "Application/JSON") == VALID


def test_the_request_carries_the_fee_of_the_configured_schedule():
    command = parse_create_payment(VALID, MERCHANT)
    event = build_payment_requested(
        command,
        merchant_id=MERCHANT,
        payment_id="PAY_1",
        request_id="req_1",
        now=datetime.now(UTC),
        expiry_s=900,
        fee_schedule={"UPI": (100, 50)},
    )
    assert event.fees_paisa == (event.amount_paisa * 100 + 5_000) // 10_000 + 50


def test_payment_note_prefers_description():
    assert payment_note("Order 7", "PAY_1") == "Order 7"
    assert payment_note("", "PAY_1") == "Payment PAY_1"
    assert payment_note("   ", "PAY_1") == "Payment PAY_1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111 1111 1111 1111", True),
        ("visa 4111-1111-1111-1111 exp", True),
        ("5555555555554444", True),
        ("378282246310005", True),
        ("4111111111111112", False),  # Luhn fails
        ("1732630000123", False),  # a millisecond timestamp, not a card network
        ("9876543210", False),  # a phone number
        ("order 12345", False),
    ],
)
def test_card_number_detection(text: str, expected: bool):
    assert contains_card_number(text) is expected


def test_built_event_and_view():
    now = datetime(2024, 1, 15, 10, 15, tzinfo=UTC)
    command = parse_create_payment(VALID, MERCHANT)
    event = build_payment_requested(
        command,
        merchant_id=MERCHANT,
        payment_id="PAY_01HM0000000000000000000000",
        request_id="req_1",
        now=now,
        expiry_s=900,
    )
    assert event.expires_at == now + timedelta(seconds=900)
    assert event.fees_paisa == 0
    assert event.payment_method == "UPI"
    assert event.payment_details == {"vpa": "user@paytm"}
    body, headers = encode(event)
    assert decode(body, headers) == event
    view = payment_view(accepted_payment(event))
    assert view["status"] == PaymentStatus.PENDING.value
    assert view["merchant_id"] == MERCHANT
    assert view["created_at"] == "2024-01-15T10:15:00Z"
    assert view["expires_at"] == "2024-01-15T10:30:00Z"
