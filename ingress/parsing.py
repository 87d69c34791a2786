"""Pure request parsing for the payments API: bytes in, a validated command (or a RequestError) out.

Nothing here does IO. Every rejection is a :class:`domain.errors.RequestError` with a
stable ``code`` and the offending ``param``; messages never echo the submitted values
(a request body can hold a VPA, an email or, by mistake, a card number).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from domain.errors import RequestError
from domain.events import PaymentRequested
from domain.fees import fee_for
from domain.money import parse_amount_paisa, parse_currency
from domain.status import PaymentMethod, PaymentStatus
from domain.upi import parse_vpa

ID_LIKE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
"""A uuid or id-like string: 1-64 letters, digits, ``_ . : -``; starts with a letter or digit."""
MAX_DESCRIPTION_CHARS: Final = 255
MAX_CALLBACK_URL_CHARS: Final = 2048
MAX_METADATA_KEYS: Final = 20
MAX_METADATA_KEY_CHARS: Final = 40
MAX_METADATA_VALUE_CHARS: Final = 500
_MAX_ECHOED_PARAM_CHARS: Final = 64
_DIGIT_RUN: Final = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")

CLIENT_FIELDS: Final = frozenset(
    {
        "user_id",
        "merchant_id",
        "amount_paisa",
        "currency",
        "payment_method",
        "payment_details",
        "description",
        "callback_url",
        "metadata",
    }
)
"""Top-level fields a merchant may send to ``POST /api/v1/payments``."""

ENABLED_METHODS: Final = frozenset({PaymentMethod.UPI})
"""Payment methods accepted today; the other known ones answer ``payment_method_unavailable``."""

DETAIL_FIELDS: Final[Mapping[PaymentMethod, frozenset[str]]] = {
    PaymentMethod.UPI: frozenset({"vpa"}),
}
"""The keys ``payment_details`` may hold, per enabled method (all required today)."""


@dataclass(frozen=True, slots=True)
class CreatePayment:
    """A validated ``POST /api/v1/payments`` body; the merchant comes from the token."""

    user_id: str
    amount_paisa: int
    currency: str
    payment_method: PaymentMethod
    payment_details: dict[str, str]
    description: str = ""
    callback_url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def _invalid(param: str, message: str, code: str = "parameter_invalid") -> RequestError:
    return RequestError(code, message, param)


def _shown(name: str) -> str:
    """A submitted key as it may appear in an error (bounded, printable)."""
    clean = "".join(c if c.isprintable() else "?" for c in name)
    if len(clean) > _MAX_ECHOED_PARAM_CHARS:
        return clean[:_MAX_ECHOED_PARAM_CHARS] + "..."
    return clean


def _is_clean_text(value: str) -> bool:
    """True if ``value`` is valid UTF-8 text (no lone surrogates) without control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(unicodedata.category(c) == "Cc" for c in value)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def contains_card_number(value: str) -> bool:
    """True if ``value`` holds a card-number-shaped digit run.

    That is 13-19 digits (spaces or dashes allowed) with a card network's leading
    digits (2-series Mastercard, or 3, 4, 5, 6: Amex, JCB, Diners, Visa, Mastercard,
    RuPay, Discover, UnionPay, Maestro) and a valid Luhn check digit. Free-text fields
    travel to Kafka, PostgreSQL and webhooks, where card numbers must never be; a
    merchant who pastes one gets a 400 instead.
    """
    for match in _DIGIT_RUN.finditer(value):
        digits = "".join(c for c in match.group() if c.isdigit())
        network = digits[0] in "3456" or "22" <= digits[:2] <= "27"
        if network and _luhn_valid(digits):
            return True
    return False


def _no_card_number(value: str, param: str) -> str:
    if contains_card_number(value):
        raise RequestError(
            "card_data_not_allowed", f"{param} must not contain a card number", param
        )
    return value


class _DuplicateKeyError(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json_object(raw: bytes, content_type: str, charset: str | None = None) -> dict[str, Any]:
    """Decode a request body that must be a JSON object sent as ``application/json`` UTF-8.

    Rejects other content types, other charsets, empty bodies, malformed JSON,
    ``NaN``/``Infinity``, duplicate keys (two parsers could disagree on which wins)
    and any top-level value that is not an object.
    """
    if content_type.lower() != "application/json":
        raise RequestError(
            "content_type_invalid", "Content-Type must be application/json", "Content-Type"
        )
    if charset is not None and charset.lower().replace("_", "-") not in {"utf-8", "utf8"}:
        raise RequestError(
            "content_type_invalid", "the request body must be UTF-8 encoded", "Content-Type"
        )
    if not raw.strip():
        raise RequestError("body_invalid", "the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
        data = json.loads(
            text, object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant
        )
    except _DuplicateKeyError as exc:
        raise RequestError(
            "body_invalid", "the request body has a duplicate key", _shown(str(exc))
        ) from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RequestError("body_invalid", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise RequestError("body_invalid", "the request body must be a JSON object")
    return data


def _required(body: Mapping[str, Any], name: str) -> Any:
    if name not in body or body[name] is None:
        raise RequestError("parameter_missing", f"{name} is required", name)
    return body[name]


def parse_user_id(value: object, param: str = "user_id") -> str:
    """A payer id chosen by the merchant: a uuid or an id-like string of 1-64 characters."""
    if not isinstance(value, str) or not ID_LIKE.fullmatch(value):
        raise _invalid(
            param, f"{param} must be 1-64 letters, digits, '_', '.', ':' or '-' (e.g. a uuid)"
        )
    return _no_card_number(value, param)


def parse_payment_method(value: object, param: str = "payment_method") -> PaymentMethod:
    """A payment method that is enabled today (only UPI)."""
    try:
        method = PaymentMethod(value) if isinstance(value, str) else None
    except ValueError:
        method = None
    if method is None:
        known = ", ".join(m.value for m in PaymentMethod)
        raise RequestError("payment_method_invalid", f"{param} must be one of {known}", param)
    if method not in ENABLED_METHODS:
        raise RequestError(
            "payment_method_unavailable", f"payment method {method.value} is not yet enabled", param
        )
    return method


def parse_payment_details(
    value: object, method: PaymentMethod, param: str = "payment_details"
) -> dict[str, str]:
    """The method-specific details: ``{"vpa": "user@bank"}`` for UPI; no other keys."""
    if not isinstance(value, dict):
        raise _invalid(param, f"{param} must be an object")
    allowed = DETAIL_FIELDS[method]
    for key in value:
        if key not in allowed:
            shown = f"{param}.{_shown(key)}"
            raise RequestError(
                "parameter_unknown", f"{shown} is not a {method.value} payment detail", shown
            )
    details: dict[str, str] = {}
    for key in sorted(allowed):
        if value.get(key) is None:
            raise RequestError("parameter_missing", f"{param}.{key} is required", f"{param}.{key}")
    if method is PaymentMethod.UPI:
        details["vpa"] = parse_vpa(value["vpa"], f"{param}.vpa")
    return details


def parse_description(value: object, param: str = "description") -> str:
    """Free text shown to the payer (UPI note): at most 255 characters, no control characters."""
    if value is None:
        return ""
    if not isinstance(value, str) or not _is_clean_text(value):
        raise _invalid(param, f"{param} must be a string without control characters")
    if len(value) > MAX_DESCRIPTION_CHARS:
        raise _invalid(param, f"{param} must be at most {MAX_DESCRIPTION_CHARS} characters")
    return _no_card_number(value, param)


def parse_callback_url(value: object, param: str = "callback_url") -> str | None:
    """An absolute ``http``/``https`` URL of at most 2048 characters, without credentials."""
    if value is None:
        return None
    message = f"{param} must be an absolute http(s) URL of at most {MAX_CALLBACK_URL_CHARS} chars"
    if (
        not isinstance(value, str)
        or len(value) > MAX_CALLBACK_URL_CHARS
        or not value.isascii()
        or any(not c.isprintable() or c.isspace() for c in value)
    ):
        raise _invalid(param, message)
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise _invalid(param, message) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise _invalid(param, message)
    if "@" in parts.netloc:
        raise _invalid(param, f"{param} must not contain credentials")
    return _no_card_number(value, param)


def parse_metadata(value: object, param: str = "metadata") -> dict[str, str]:
    """Merchant key/value pairs: at most 20 keys of <= 40 chars, string values of <= 500 chars."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(param, f"{param} must be an object of string values")
    if len(value) > MAX_METADATA_KEYS:
        raise _invalid(param, f"{param} may have at most {MAX_METADATA_KEYS} keys")
    result: dict[str, str] = {}
    for key, item in value.items():
        if not key or len(key) > MAX_METADATA_KEY_CHARS or not _is_clean_text(key):
            raise _invalid(
                param, f"{param} keys must be 1-{MAX_METADATA_KEY_CHARS} printable characters"
            )
        item_param = f"{param}.{key}"
        if not isinstance(item, str) or not _is_clean_text(item):
            raise _invalid(item_param, f"{item_param} must be a string without control characters")
        if len(item) > MAX_METADATA_VALUE_CHARS:
            raise _invalid(
                item_param, f"{item_param} must be at most {MAX_METADATA_VALUE_CHARS} characters"
            )
        _no_card_number(key, param)
        result[key] = _no_card_number(item, item_param)
    return result


def parse_create_payment(body: Mapping[str, Any], merchant_id: str) -> CreatePayment:
    """Validate a create-payment body for the merchant authenticated by the token.

    The token decides the merchant: a ``merchant_id`` in the body is only allowed if
    it is the same one (``merchant_mismatch`` otherwise). Unknown fields, including the
    ones the server sets (``status``, ``fees_paisa`` ...), are refused, never ignored.
    """
    for key in body:
        if key not in CLIENT_FIELDS:
            shown = _shown(key)
            raise RequestError("parameter_unknown", f"received unknown parameter: {shown}", shown)
    user_id = parse_user_id(_required(body, "user_id"))
    if body.get("merchant_id") is not None:
        claimed = body["merchant_id"]
        if not isinstance(claimed, str):
            raise _invalid("merchant_id", "merchant_id must be a string")
        if claimed != merchant_id:
            raise RequestError(
                "merchant_mismatch",
                "merchant_id does not match the merchant of the API token",
                "merchant_id",
            )
    amount = parse_amount_paisa(_required(body, "amount_paisa"))
    currency = parse_currency(_required(body, "currency"))
    method = parse_payment_method(_required(body, "payment_method"))
    details = parse_payment_details(_required(body, "payment_details"), method)
    return CreatePayment(
        user_id=user_id,
        amount_paisa=amount,
        currency=currency,
        payment_method=method,
        payment_details=details,
        description=parse_description(body.get("description")),
        callback_url=parse_callback_url(body.get("callback_url")),
        metadata=parse_metadata(body.get("metadata")),
    )


def payment_note(description: str, payment_id: str) -> str:
    """The note the payer's UPI app shows: the description, else ``Payment <id>``."""
    return description.strip() or f"Payment {payment_id}"


def build_payment_requested(
    command: CreatePayment,
    *,
    merchant_id: str,
    payment_id: str,
    request_id: str,
    now: datetime,
    expiry_s: int,
    fee_schedule: Mapping[str, tuple[int, int]] | None = None,
) -> PaymentRequested:
    """The command the ingress puts on ``payments.requests`` for an accepted request."""
    return PaymentRequested(
        payment_id=payment_id,
        merchant_id=merchant_id,
        user_id=command.user_id,
        amount_paisa=command.amount_paisa,
        fees_paisa=fee_for(command.payment_method.value, command.amount_paisa, fee_schedule or {}),
        currency=command.currency,
        payment_method=command.payment_method.value,
        payment_details=dict(command.payment_details),
        description=command.description,
        callback_url=command.callback_url,
        metadata=dict(command.metadata),
        created_at=now,
        expires_at=now + timedelta(seconds=expiry_s),
        request_id=request_id,
    )


def accepted_payment(
    event: PaymentRequested, status: PaymentStatus = PaymentStatus.PENDING
) -> dict[str, Any]:
    """The payment as a mapping for :func:`domain.views.payment_view`, right after acceptance."""
    return {
        "payment_id": event.payment_id,
        "merchant_id": event.merchant_id,
        "user_id": event.user_id,
        "status": status.value,
        "amount_paisa": event.amount_paisa,
        "fees_paisa": event.fees_paisa,
        "currency": event.currency,
        "payment_method": event.payment_method,
        "description": event.description,
        "metadata": dict(event.metadata),
        "created_at": event.created_at,
        "expires_at": event.expires_at,
    }
