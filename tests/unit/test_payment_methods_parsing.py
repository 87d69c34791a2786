"""ingress.payment_methods: the pure tokenize-body parser and the merchant view."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from domain.cards import Brand
from domain.errors import RequestError
from ingress.payment_methods import parse_tokenize, payment_method_view

TODAY = date(2026, 11, 26)
PAN = "4111111111111111"


def body(**details: Any) -> dict[str, Any]:
    card = {
        "card_number": PAN,
        "expiry_month": "12",
        "expiry_year": "28",
        "cvv": "123",
        "holder_name": "John Doe",
        **details,
    }
    return {
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "type": "CARD",
        "details": {k: v for k, v in card.items() if v is not None},
        "display_name": "**** **** **** 1111",
    }


def test_the_spec_body_parses_and_the_cvv_is_gone() -> None:
    spec = body(expiry_year="25", cvv="987")  # the spec's example card expired in 12/2025
    command = parse_tokenize(spec, date(2025, 12, 1))
    assert command.user_id == "123e4567-e89b-12d3-a456-426614174000"
    assert command.card.brand is Brand.VISA
    assert (command.card.expiry_month, command.card.expiry_year) == (12, 2025)
    assert command.holder_name == "John Doe"
    assert "987" not in repr(command)
    assert not [name for name in dir(command) + dir(command.card) if "cvv" in name]
    assert PAN not in repr(command) and "John" not in repr(command)


def test_client_display_name_is_ignored() -> None:
    data = body()
    data["display_name"] = "My favourite card"
    assert parse_tokenize(data, TODAY).card.display_name == "Visa \u2022\u2022\u2022\u2022 1111"


@pytest.mark.parametrize(
    ("holder", "expected"),
    [(None, None), ("  Jane   Q  Public ", "Jane Q Public")],
)
def test_holder_name_is_optional_and_normalised(holder: str | None, expected: str | None) -> None:
    data = body()
    data["details"].pop("holder_name")
    if holder is not None:
        data["details"]["holder_name"] = holder
    assert parse_tokenize(data, TODAY).holder_name == expected


def _error(data: dict[str, Any]) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse_tokenize(data, TODAY)
    text = f"{caught.value.message} {caught.value.param}"
    assert PAN not in text and "411111" not in text
    return caught.value


@pytest.mark.parametrize(
    ("change", "code", "param"),
    [
        ({"type": "UPI"}, "payment_method_type_unsupported", "type"),
        ({"type": 1}, "parameter_invalid", "type"),
        ({"type": None}, "parameter_missing", "type"),
        ({"user_id": None}, "parameter_missing", "user_id"),
        ({"user_id": "bad id"}, "parameter_invalid", "user_id"),
        ({"details": "4111111111111111"}, "parameter_invalid", "details"),
        ({"merchant_id": "m_1"}, "parameter_unknown", "merchant_id"),
        ({PAN: "x"}, "parameter_unknown", "body"),
    ],
)
def test_top_level_errors(change: dict[str, Any], code: str, param: str) -> None:
    data = {**body(), **change}
    error = _error(data)
    assert (error.code, error.param) == (code, param)


@pytest.mark.parametrize(
    ("details", "code", "param"),
    [
        ({"card_number": "4111111111111112"}, "card_number_invalid", "details.card_number"),
        ({"card_number": "6200000000000005"}, "card_brand_unsupported", "details.card_number"),
        ({"expiry_year": "24"}, "card_expired", "details.expiry_year"),
        ({"expiry_month": "13"}, "expiry_month_invalid", "details.expiry_month"),
        ({"cvv": "12"}, "cvv_invalid", "details.cvv"),
        ({"cvv": None}, "parameter_missing", "details.cvv"),
        ({"card_number": None}, "parameter_missing", "details.card_number"),
        ({"holder_name": "x" * 101}, "parameter_invalid", "details.holder_name"),
        ({"holder_name": 7}, "parameter_invalid", "details.holder_name"),
        ({"holder_name": f"J {PAN}"}, "card_data_not_allowed", "details.holder_name"),
        ({"track2": ";4111111111111111=2812"}, "parameter_unknown", "details.track2"),
        ({PAN: "x"}, "parameter_unknown", "details"),
    ],
)
def test_card_errors_name_the_field_and_never_echo_the_number(
    details: dict[str, Any], code: str, param: str
) -> None:
    error = _error(body(**details))
    assert (error.code, error.param) == (code, param)


def test_view_shows_no_bin_fingerprint_or_ciphertext() -> None:
    row = {
        "token": "tok_" + "a" * 24,
        "merchant_id": "m_1",
        "user_id": "u_1",
        "type": "CARD",
        "brand": "VISA",
        "last4": "1111",
        "expiry_month": 12,
        "expiry_year": 2028,
        "issuer": "Test Bank",
        "display_name": "Visa \u2022\u2022\u2022\u2022 1111",
        "created_at": datetime(2026, 11, 26, 10, 0, 0, 123, tzinfo=UTC),
    }
    assert payment_method_view(row) == {
        "token": row["token"],
        "type": "CARD",
        "user_id": "u_1",
        "card": {
            "brand": "VISA",
            "last4": "1111",
            "expiry_month": 12,
            "expiry_year": 2028,
            "issuer": "Test Bank",
        },
        "display_name": "Visa \u2022\u2022\u2022\u2022 1111",
        "created_at": "2026-11-26T10:00:00Z",
    }
