"""domain.cards: Luhn, networks by BIN range, lengths, expiry, CVV, derived display fields."""

from __future__ import annotations

from datetime import date

import pytest

from domain.cards import (
    BRAND_RANGES,
    ISSUERS,
    PAN_LENGTHS,
    Brand,
    brand_of,
    display_name,
    issuer_of,
    luhn_valid,
    normalize_card_number,
    validate_card,
    validate_cvv,
    validate_expiry,
    validate_pan,
)
from domain.errors import RequestError

TODAY = date(2026, 11, 26)


def with_check_digit(partial: str) -> str:
    """``partial`` + the digit that makes it pass Luhn."""
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return partial + digit
    raise AssertionError("unreachable")


def make_pan(prefix: str, length: int) -> str:
    return with_check_digit(prefix + "0" * (length - len(prefix) - 1))


# The standard public test PANs of card networks and gateway sandboxes.
TEST_PANS = [
    ("4111111111111111", Brand.VISA),
    ("4012888888881881", Brand.VISA),
    ("4242424242424242", Brand.VISA),
    ("4000056655665556", Brand.VISA),
    ("4222222222222", Brand.VISA),  # 13 digits
    ("5555555555554444", Brand.MASTERCARD),
    ("5105105105105100", Brand.MASTERCARD),
    ("5200828282828210", Brand.MASTERCARD),
    ("2223003122003222", Brand.MASTERCARD),
    ("2223000048400011", Brand.MASTERCARD),
    ("5104015555555558", Brand.MASTERCARD),
    ("5104060000000008", Brand.MASTERCARD),
    ("5267318187975449", Brand.MASTERCARD),
    ("378282246310005", Brand.AMEX),
    ("371449635398431", Brand.AMEX),
    ("378734493671000", Brand.AMEX),
    ("6011111111111117", Brand.DISCOVER),
    ("6011000990139424", Brand.DISCOVER),
    ("30569309025904", Brand.DINERS),
    ("38520000023237", Brand.DINERS),
    ("36227206271667", Brand.DINERS),
    ("3056930009020004", Brand.DINERS),
]


@pytest.mark.parametrize(("pan", "brand"), TEST_PANS)
def test_standard_test_pans_are_valid_with_their_brand(pan: str, brand: Brand) -> None:
    assert luhn_valid(pan)
    assert validate_pan(pan) == (pan, brand)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("79927398713", True),  # the textbook example
        ("79927398710", False),
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("4111111111111121", False),  # two digits swapped
        ("0", True),
        ("18", True),
        ("", False),
        ("4111 1111 1111 1111", False),  # luhn_valid takes digits only
        ("\uff14\uff11", False),  # full-width digits are not ASCII digits
    ],
)
def test_luhn_table(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("bin6", "brand"),
    [
        ("400000", Brand.VISA),
        ("499999", Brand.VISA),
        ("510000", Brand.MASTERCARD),
        ("559999", Brand.MASTERCARD),
        ("222100", Brand.MASTERCARD),
        ("272099", Brand.MASTERCARD),
        ("222099", None),
        ("272100", None),
        ("500000", None),
        ("560000", None),
        ("340000", Brand.AMEX),
        ("349999", Brand.AMEX),
        ("370000", Brand.AMEX),
        ("379999", Brand.AMEX),
        ("300000", Brand.DINERS),
        ("305999", Brand.DINERS),
        ("306000", None),
        ("360000", Brand.DINERS),
        ("380000", Brand.DINERS),
        ("399999", Brand.DINERS),
        ("601100", Brand.DISCOVER),  # 6011 is narrower than RuPay's 60
        ("601199", Brand.DISCOVER),
        ("601000", Brand.RUPAY),
        ("601200", Brand.RUPAY),
        ("600000", Brand.RUPAY),
        ("609999", Brand.RUPAY),
        ("644000", Brand.DISCOVER),
        ("649999", Brand.DISCOVER),
        ("643999", None),
        ("650000", Brand.DISCOVER),
        ("652149", Brand.DISCOVER),
        ("652150", Brand.RUPAY),  # RuPay's slice of 65
        ("653149", Brand.RUPAY),
        ("653150", Brand.DISCOVER),
        ("659999", Brand.DISCOVER),
        ("810000", Brand.RUPAY),
        ("829999", Brand.RUPAY),
        ("830000", None),
        ("508000", Brand.RUPAY),
        ("508999", Brand.RUPAY),
        ("507999", None),
        ("353000", Brand.RUPAY),
        ("353999", Brand.RUPAY),
        ("356000", Brand.RUPAY),
        ("354000", None),
        ("620000", None),  # UnionPay: not supported
        ("100000", None),
        ("900000", None),
        ("41111", None),  # fewer than six digits
        ("4x1111", None),
    ],
)
def test_brand_by_bin_range(bin6: str, brand: Brand | None) -> None:
    assert brand_of(bin6) is brand


def test_every_range_is_reachable_and_every_brand_has_lengths() -> None:
    for low, high, brand in BRAND_RANGES:
        assert brand_of(low.ljust(6, "0")) is brand
        assert brand_of(high.ljust(6, "9")) is brand
    assert set(PAN_LENGTHS) == set(Brand)


@pytest.mark.parametrize(
    ("prefix", "brand"),
    [
        ("6070", Brand.RUPAY),
        ("6521", Brand.DISCOVER),
        ("65216", Brand.RUPAY),
        ("8172", Brand.RUPAY),
        ("5085", Brand.RUPAY),
        ("3561", Brand.RUPAY),
        ("6445", Brand.DISCOVER),
    ],
)
def test_generated_pans_of_each_network(prefix: str, brand: Brand) -> None:
    for length in sorted(PAN_LENGTHS[brand]):
        pan = make_pan(prefix, length)
        assert validate_pan(pan) == (pan, brand)


@pytest.mark.parametrize(
    "pan",
    [
        make_pan("4111", 15),  # Visa is 13, 16 or 19
        make_pan("5555", 15),
        make_pan("5555", 19),
        make_pan("3782", 16),  # Amex is 15
        make_pan("3056", 13),  # Diners 14-19
        make_pan("6011", 15),  # Discover 16-19
        make_pan("6070", 19),  # RuPay 16
        "4111111111111112",  # Luhn
        "5555555555554443",
    ],
)
def test_wrong_length_or_check_digit_is_card_number_invalid(pan: str) -> None:
    with pytest.raises(RequestError) as caught:
        validate_pan(pan, "details.card_number")
    assert caught.value.code == "card_number_invalid"
    assert caught.value.param == "details.card_number"
    assert pan not in caught.value.message and pan[-4:] not in caught.value.message


def test_unknown_network_is_unsupported() -> None:
    with pytest.raises(RequestError) as caught:
        validate_pan(make_pan("6200", 16))
    assert caught.value.code == "card_brand_unsupported"


@pytest.mark.parametrize(
    "value",
    ["4111 1111 1111 1111", "4111-1111-1111-1111", " 4111111111111111 ", "4111 1111-1111 1111"],
)
def test_separators_between_digit_groups_are_removed(value: str) -> None:
    assert normalize_card_number(value) == "4111111111111111"


@pytest.mark.parametrize(
    "value",
    [
        4111111111111111,
        None,
        "",
        "4111  1111 1111 1111",
        "4111_1111_1111_1111",
        "41111111111",  # 11 digits
        "41111111111111111111",  # 20 digits
        "\uff14" * 16,
        "4111111111111111" + " " * 40,
        "411111111111111a",
    ],
)
def test_malformed_card_numbers(value: object) -> None:
    with pytest.raises(RequestError) as caught:
        normalize_card_number(value)
    assert caught.value.code == "card_number_invalid"
    assert "4111" not in caught.value.message


@pytest.mark.parametrize(
    ("month", "year", "expected"),
    [
        ("12", "26", (12, 2026)),
        ("11", "2026", (11, 2026)),  # valid through the end of its month
        ("1", "27", (1, 2027)),
        ("01", "27", (1, 2027)),
        (" 7 ", " 30 ", (7, 2030)),
        (12, 2027, (12, 2027)),
        (12, 27, (12, 2027)),
        ("12", "46", (12, 2046)),
    ],
)
def test_valid_expiry(month: object, year: object, expected: tuple[int, int]) -> None:
    assert validate_expiry(month, year, TODAY) == expected


@pytest.mark.parametrize(
    ("month", "year", "code", "param"),
    [
        ("10", "26", "card_expired", "expiry_year"),
        ("12", "25", "card_expired", "expiry_year"),
        ("12", "2025", "card_expired", "expiry_year"),
        ("13", "27", "expiry_month_invalid", "expiry_month"),
        ("0", "27", "expiry_month_invalid", "expiry_month"),
        ("00", "27", "expiry_month_invalid", "expiry_month"),
        ("012", "27", "expiry_month_invalid", "expiry_month"),
        ("-1", "27", "expiry_month_invalid", "expiry_month"),
        (True, "27", "expiry_month_invalid", "expiry_month"),
        (12.0, "27", "expiry_month_invalid", "expiry_month"),
        ("12", "2", "expiry_year_invalid", "expiry_year"),
        ("12", "027", "expiry_year_invalid", "expiry_year"),
        ("12", "1999", "expiry_year_invalid", "expiry_year"),
        ("12", 127, "expiry_year_invalid", "expiry_year"),
        ("12", "20271", "expiry_year_invalid", "expiry_year"),
        ("12", "47", "expiry_year_invalid", "expiry_year"),  # more than 20 years ahead
        ("12", None, "expiry_year_invalid", "expiry_year"),
    ],
)
def test_invalid_expiry(month: object, year: object, code: str, param: str) -> None:
    with pytest.raises(RequestError) as caught:
        validate_expiry(month, year, TODAY)
    assert (caught.value.code, caught.value.param) == (code, param)


@pytest.mark.parametrize(
    ("cvv", "brand", "ok"),
    [
        ("123", Brand.VISA, True),
        ("000", Brand.RUPAY, True),
        ("1234", Brand.AMEX, True),
        ("123", Brand.AMEX, False),
        ("1234", Brand.VISA, False),
        ("12", Brand.MASTERCARD, False),
        (123, Brand.VISA, False),
        ("12a", Brand.VISA, False),
        (" 123", Brand.VISA, False),
        ("\uff11\uff12\uff13", Brand.VISA, False),
        (None, Brand.VISA, False),
    ],
)
def test_cvv_format(cvv: object, brand: Brand, ok: bool) -> None:
    if ok:
        assert validate_cvv(cvv, brand) is None
    else:
        with pytest.raises(RequestError) as caught:
            validate_cvv(cvv, brand)
        assert caught.value.code == "cvv_invalid"
        assert str(cvv) not in caught.value.message


def test_validate_card_keeps_no_cvv_and_hides_the_pan() -> None:
    card = validate_card("4111 1111 1111 1111", "12", "30", "987", TODAY, "details.")
    assert card.pan == "4111111111111111"
    assert (card.brand, card.expiry_month, card.expiry_year) == (Brand.VISA, 12, 2030)
    assert (card.bin, card.last4, card.issuer) == ("411111", "1111", "Test Bank")
    assert card.display_name == "Visa \u2022\u2022\u2022\u2022 1111"
    assert "4111111111111111" not in repr(card)
    assert "987" not in repr(card)
    assert not any("cvv" in name for name in card.__slots__)


def test_validate_card_checks_in_order_with_prefixed_params() -> None:
    cases = [
        (("4111111111111112", "12", "30", "123"), "card_number_invalid", "card_number"),
        (("4111111111111111", "13", "30", "123"), "expiry_month_invalid", "expiry_month"),
        (("4111111111111111", "12", "20", "123"), "card_expired", "expiry_year"),
        (("378282246310005", "12", "30", "123"), "cvv_invalid", "cvv"),
    ]
    for args, code, param in cases:
        with pytest.raises(RequestError) as caught:
            validate_card(*args, TODAY, param_prefix="details.")
        assert (caught.value.code, caught.value.param) == (code, f"details.{param}")


def test_issuer_table_and_display_names() -> None:
    assert issuer_of("4111111111111111") == "Test Bank"
    assert issuer_of("378282246310005") == "American Express"
    assert issuer_of("4916000000000000") is None
    assert len(ISSUERS) >= 20
    for bin6 in ISSUERS:
        assert len(bin6) == 6 and bin6.isdigit()
        assert brand_of(bin6) is not None, bin6
    assert display_name(Brand.AMEX, "0005") == "Amex \u2022\u2022\u2022\u2022 0005"
    assert display_name(Brand.RUPAY, "4947") == "RuPay \u2022\u2022\u2022\u2022 4947"
