"""UPI: virtual payment address validation and the intent deep link.

The intent link follows NPCI's UPI linking specification:
``upi://pay?pa=<payee vpa>&pn=<payee name>&am=<rupees.paise>&cu=INR&tn=<note>&tr=<ref>``.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from domain.errors import RequestError
from domain.money import format_major

_VPA: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}@[A-Za-z][A-Za-z0-9.-]{1,63}$")
MAX_NOTE_CHARS: Final = 50


def parse_vpa(value: object, param: str = "payment_details.vpa") -> str:
    """Validate a VPA such as ``user@paytm`` (handle@psp) and return it lower-cased."""
    if not isinstance(value, str) or not _VPA.fullmatch(value.strip()):
        raise RequestError("vpa_invalid", "vpa must look like name@bank, e.g. user@paytm", param)
    return value.strip().lower()


def intent_link(
    *, payee_vpa: str, payee_name: str, amount_paisa: int, note: str, reference: str
) -> str:
    """Build the ``upi://pay`` deep link a UPI app opens to pay ``amount_paisa``."""
    params = [
        ("pa", payee_vpa),
        ("pn", payee_name),
        ("am", format_major(amount_paisa, "INR")),
        ("cu", "INR"),
        ("tn", note[:MAX_NOTE_CHARS]),
        ("tr", reference),
    ]
    return "upi://pay?" + "&".join(f"{k}={quote(v, safe='@.-_')}" for k, v in params)
