"""Card validation for the vault. Pure: no IO, no clock (``today`` is a parameter).

What a tokenize request's card is checked for, in this order, each failure a
:class:`~domain.errors.RequestError` whose message never echoes the submitted value:

1. **Shape**: a string of 12-19 digits; single spaces or dashes between digit groups
   are allowed and removed (``card_number_invalid``).
2. **Network** from the BIN (first six digits) by :data:`BRAND_RANGES`
   (``card_brand_unsupported`` if none matches).
3. **Length** for that network (:data:`PAN_LENGTHS`) and the **Luhn** check digit
   (both ``card_number_invalid``, with one message, so the answer does not say which).
4. **Expiry**: month 1-12, year of 2 (``25`` = 2025) or 4 digits, not before the month
   of ``today`` (a card is valid through the last day of its expiry month), and at most
   :data:`MAX_EXPIRY_YEARS` ahead (``expiry_month_invalid``, ``expiry_year_invalid``,
   ``card_expired``).
5. **CVV** format: 3 digits, 4 for American Express (``cvv_invalid``). The CVV is
   checked and dropped: :func:`validate_card` returns a :class:`Card`, which has no
   CVV field, so it cannot reach storage, Kafka or logs.

BIN ranges (six-digit BIN ``b``; a rule's prefix ``p`` covers every BIN starting with
it; ``a-b`` is every prefix of that length between them):

========== ================================================================
VISA       4
MASTERCARD 51-55, 2221-2720
AMEX       34, 37
DINERS     300-305, 36, 38-39
DISCOVER   6011, 644-649, 65
RUPAY      60, 652150-653149, 81-82, 508, 353, 356
========== ================================================================

**Overlaps: the narrowest range wins.** ``6011`` lies inside RuPay's ``60`` and is
Discover. RuPay and Discover both claim ``65`` (RuPay cards are co-badged on the
Discover network there): ``65`` is Discover except the slice ``652150-653149``, which
is RuPay's domestic range in ``65`` (the one Indian checkouts detect as RuPay). The
``353``/``356`` prefixes are JCB's, listed as RuPay for RuPay-JCB co-branded cards.

The issuer comes from :data:`ISSUERS`, a small table of well-known sandbox/test BINs
(``None`` for any other BIN). The display name is always derived
(``"Visa •••• 1111"``); a client-supplied one is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final

from domain.errors import RequestError

MAX_EXPIRY_YEARS: Final = 20
"""A card expiring more than this many years after ``today`` is refused (a typo)."""

_CARD_NUMBER: Final = re.compile(r"\d(?:[ -]?\d){11,18}")
_DIGITS: Final = re.compile(r"\d+")
_MAX_CARD_NUMBER_CHARS: Final = 40


class Brand(StrEnum):
    """Card networks the vault accepts."""

    VISA = "VISA"
    MASTERCARD = "MASTERCARD"
    AMEX = "AMEX"
    DINERS = "DINERS"
    DISCOVER = "DISCOVER"
    RUPAY = "RUPAY"

    @property
    def label(self) -> str:
        """The network's name for people (used in ``display_name``)."""
        return _LABELS[self]


_LABELS: Final[Mapping[Brand, str]] = {
    Brand.VISA: "Visa",
    Brand.MASTERCARD: "Mastercard",
    Brand.AMEX: "Amex",
    Brand.DINERS: "Diners Club",
    Brand.DISCOVER: "Discover",
    Brand.RUPAY: "RuPay",
}

BRAND_RANGES: Final[tuple[tuple[str, str, Brand], ...]] = (
    ("4", "4", Brand.VISA),
    ("51", "55", Brand.MASTERCARD),
    ("2221", "2720", Brand.MASTERCARD),
    ("34", "34", Brand.AMEX),
    ("37", "37", Brand.AMEX),
    ("300", "305", Brand.DINERS),
    ("36", "36", Brand.DINERS),
    ("38", "39", Brand.DINERS),
    ("6011", "6011", Brand.DISCOVER),
    ("644", "649", Brand.DISCOVER),
    ("65", "65", Brand.DISCOVER),
    ("60", "60", Brand.RUPAY),
    ("652150", "653149", Brand.RUPAY),
    ("81", "82", Brand.RUPAY),
    ("508", "508", Brand.RUPAY),
    ("353", "353", Brand.RUPAY),
    ("356", "356", Brand.RUPAY),
)
"""(first prefix, last prefix, brand); see the module docstring for the overlap rule."""

PAN_LENGTHS: Final[Mapping[Brand, frozenset[int]]] = {
    Brand.VISA: frozenset({13, 16, 19}),
    Brand.MASTERCARD: frozenset({16}),
    Brand.AMEX: frozenset({15}),
    Brand.DINERS: frozenset(range(14, 20)),
    Brand.DISCOVER: frozenset(range(16, 20)),
    Brand.RUPAY: frozenset({16}),
}
"""The PAN lengths each network issues."""

ISSUERS: Final[Mapping[str, str]] = {
    # Visa test BINs (gateway sandboxes)
    "411111": "Test Bank",
    "401288": "Test Bank",
    "424242": "Test Bank",
    "400005": "Test Bank",
    "400000": "Test Bank",
    # Mastercard test BINs
    "555555": "Test Bank",
    "510510": "Test Bank",
    "520082": "Test Bank",
    "222300": "Test Bank",
    # Razorpay's domestic (Indian) test cards
    "510401": "Razorpay Test Bank",
    "510406": "Razorpay Test Bank",
    "526731": "Razorpay Test Bank",
    # Networks that issue their own cards, with their public test BINs
    "378282": "American Express",
    "371449": "American Express",
    "601111": "Discover Bank",
    "601100": "Discover Bank",
    "305693": "Diners Club International",
    "385200": "Diners Club International",
    "362272": "Diners Club International",
    # RuPay: BINs of paystream's own sandbox cards (no public RuPay test BIN is standard)
    "652150": "RuPay Test Bank",
    "508500": "RuPay Test Bank",
}
"""Issuer by six-digit BIN: well-known sandbox/test BINs only; any other BIN is ``None``."""


def _range_of(low: str, high: str) -> tuple[int, int]:
    return int(low.ljust(6, "0")), int(high.ljust(6, "9"))


_RANGES: Final = tuple(
    (start, end, brand)
    for start, end, brand in sorted(
        ((*_range_of(low, high), brand) for low, high, brand in BRAND_RANGES),
        key=lambda rule: rule[1] - rule[0],
    )
)
"""The BIN ranges as six-digit integer intervals, narrowest first."""


@dataclass(frozen=True, slots=True)
class Card:
    """A validated card. The PAN is hidden from ``repr``; there is no CVV field."""

    pan: str = field(repr=False)
    brand: Brand
    expiry_month: int
    expiry_year: int

    @property
    def bin(self) -> str:
        """The first six digits (the BIN/IIN)."""
        return self.pan[:6]

    @property
    def last4(self) -> str:
        """The last four digits."""
        return self.pan[-4:]

    @property
    def issuer(self) -> str | None:
        """The issuing bank from :data:`ISSUERS`, or ``None``."""
        return issuer_of(self.pan)

    @property
    def display_name(self) -> str:
        """``"Visa •••• 1111"``: brand and last four, nothing a client supplied."""
        return display_name(self.brand, self.last4)


def luhn_valid(digits: str) -> bool:
    """True if the string of decimal digits ends with a correct Luhn check digit."""
    if not digits.isdigit() or not digits.isascii():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> Brand | None:
    """The network of a card number (or of a BIN of at least six digits); ``None`` if none."""
    head = number[:6]
    if len(head) < 6 or not head.isdigit() or not head.isascii():
        return None
    value = int(head)
    for start, end, brand in _RANGES:
        if start <= value <= end:
            return brand
    return None


def issuer_of(number: str) -> str | None:
    """The issuing bank of a card number's BIN from the shipped table, or ``None``."""
    return ISSUERS.get(number[:6])


def display_name(brand: Brand, last4: str) -> str:
    """How a stored card is shown to people: ``"<brand label> •••• <last4>"``."""
    return f"{brand.label} \u2022\u2022\u2022\u2022 {last4}"


def normalize_card_number(value: object, param: str = "card_number") -> str:
    """The digits of a card number; spaces or dashes between digit groups are removed."""
    invalid = RequestError("card_number_invalid", f"{param} is not a valid card number", param)
    if not isinstance(value, str) or len(value) > _MAX_CARD_NUMBER_CHARS:
        raise invalid
    text = value.strip()
    if not text.isascii() or not _CARD_NUMBER.fullmatch(text):
        raise invalid
    return "".join(_DIGITS.findall(text))


def validate_pan(value: object, param: str = "card_number") -> tuple[str, Brand]:
    """Shape, network, length and Luhn of a card number; returns its digits and brand."""
    pan = normalize_card_number(value, param)
    brand = brand_of(pan)
    if brand is None:
        raise RequestError(
            "card_brand_unsupported",
            f"{param} is not a card of a supported network "
            "(Visa, Mastercard, RuPay, American Express, Diners Club, Discover)",
            param,
        )
    if len(pan) not in PAN_LENGTHS[brand] or not luhn_valid(pan):
        raise RequestError("card_number_invalid", f"{param} is not a valid card number", param)
    return pan, brand


def _small_int(value: object) -> tuple[int, int] | None:
    """(value, number of digits written) of a digit string or a plain int; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (value, len(str(value))) if value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        if 1 <= len(text) <= 4 and text.isascii() and text.isdigit():
            return int(text), len(text)
    return None


def parse_expiry_month(value: object, param: str = "expiry_month") -> int:
    """A month 1-12, as ``"12"``, ``"05"``, ``"5"`` or an integer."""
    parsed = _small_int(value)
    if parsed is None or parsed[1] > 2 or not 1 <= parsed[0] <= 12:
        raise RequestError("expiry_month_invalid", f"{param} must be a month from 1 to 12", param)
    return parsed[0]


def parse_expiry_year(value: object, param: str = "expiry_year") -> int:
    """A year of 2 digits (``"25"`` is 2025) or 4 digits (``"2025"``); returns 4 digits."""
    parsed = _small_int(value)
    message = f"{param} must be a year of 2 or 4 digits, e.g. '28' or '2028'"
    if parsed is None:
        raise RequestError("expiry_year_invalid", message, param)
    year, width = parsed
    if isinstance(value, int):
        width = 2 if year < 100 else 4 if 1000 <= year <= 9999 else 0
    if width == 2:
        return 2000 + year
    if width == 4 and year >= 2000:
        return year
    raise RequestError("expiry_year_invalid", message, param)


def validate_expiry(
    month: object,
    year: object,
    today: date,
    *,
    month_param: str = "expiry_month",
    year_param: str = "expiry_year",
) -> tuple[int, int]:
    """(month, four-digit year) of an expiry that is not before ``today``'s month."""
    expiry_month = parse_expiry_month(month, month_param)
    expiry_year = parse_expiry_year(year, year_param)
    if (expiry_year, expiry_month) < (today.year, today.month):
        raise RequestError("card_expired", "the card has expired", year_param)
    if expiry_year > today.year + MAX_EXPIRY_YEARS:
        raise RequestError(
            "expiry_year_invalid",
            f"{year_param} is more than {MAX_EXPIRY_YEARS} years in the future",
            year_param,
        )
    return expiry_month, expiry_year


def validate_cvv(value: object, brand: Brand, param: str = "cvv") -> None:
    """Check a CVV's format (3 digits; 4 for Amex). Returns nothing: the CVV is dropped."""
    size = 4 if brand is Brand.AMEX else 3
    if not (isinstance(value, str) and len(value) == size and value.isascii() and value.isdigit()):
        raise RequestError("cvv_invalid", f"{param} must be {size} digits for this card", param)


def validate_card(
    card_number: object,
    expiry_month: object,
    expiry_year: object,
    cvv: object,
    today: date,
    param_prefix: str = "",
) -> Card:
    """Validate a card (see the module docstring); the CVV is checked, then forgotten.

    ``param_prefix`` (e.g. ``"details."``) is put before each field name in errors.
    """
    pan, brand = validate_pan(card_number, f"{param_prefix}card_number")
    month, year = validate_expiry(
        expiry_month,
        expiry_year,
        today,
        month_param=f"{param_prefix}expiry_month",
        year_param=f"{param_prefix}expiry_year",
    )
    validate_cvv(cvv, brand, f"{param_prefix}cvv")
    return Card(pan=pan, brand=brand, expiry_month=month, expiry_year=year)
