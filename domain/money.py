"""Money is an integer count of minor units (paisa) plus an ISO 4217 currency.

No floats anywhere: amounts arrive as JSON integers, are validated here, and are
formatted for humans (``"100.00"``) with integer arithmetic only.
"""

from __future__ import annotations

from typing import Final

from domain.errors import RequestError

SUPPORTED_CURRENCIES: Final = frozenset({"INR"})
MINOR_UNITS: Final = {"INR": 2}
MIN_AMOUNT_PAISA: Final = 100
"""₹1.00: the smallest payment we accept (providers refuse sub-rupee collects)."""
MAX_AMOUNT_PAISA: Final = 1_000_000_000
"""₹1,00,00,000.00 (one crore): an upper bound that stops typos and overflow games."""


def parse_amount_paisa(value: object, param: str = "amount_paisa") -> int:
    """Validate a JSON value as an amount in paisa and return it.

    Rejects floats (even ``100.0``), strings, booleans, zero, negatives and values
    outside [MIN_AMOUNT_PAISA, MAX_AMOUNT_PAISA].
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(
            "amount_invalid",
            f"{param} must be a whole number of paisa (an integer), e.g. 10000 for ₹100.00",
            param,
        )
    if value < MIN_AMOUNT_PAISA:
        raise RequestError(
            "amount_too_small", f"{param} must be at least {MIN_AMOUNT_PAISA} paisa", param
        )
    if value > MAX_AMOUNT_PAISA:
        raise RequestError(
            "amount_too_large", f"{param} must be at most {MAX_AMOUNT_PAISA} paisa", param
        )
    return value


def parse_currency(value: object, param: str = "currency") -> str:
    """Validate an ISO 4217 code we settle in (only ``INR`` today)."""
    if not isinstance(value, str) or value not in SUPPORTED_CURRENCIES:
        raise RequestError(
            "currency_not_supported",
            f"{param} must be one of {sorted(SUPPORTED_CURRENCIES)}",
            param,
        )
    return value


def format_major(amount_minor: int, currency: str = "INR") -> str:
    """Format minor units as a decimal string in major units: ``10050 -> "100.50"``."""
    digits = MINOR_UNITS[currency]
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}"
