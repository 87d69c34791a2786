"""The merchant API's OpenAPI 3.1 document, built as a dict, and the routes that serve it.

``GET /api/v1/openapi.json`` answers :func:`build_openapi` as JSON and ``GET /api/v1/docs``
renders the same dict as one self-contained HTML page (:mod:`ingress.api_docs`); both
need no token (their handlers are marked :func:`public`).

The document is written by hand, next to the handlers it describes, and kept honest by
tests rather than by generation:

* ``tests/unit/test_openapi.py`` checks that it is valid OpenAPI 3.1 and that its
  (path, method) pairs are exactly the routes ``create_app`` registers;
* ``tests/integration/test_schemathesis.py`` fuzzes every operation against the real
  stack and fails on any 5xx or any answer (status, content type, body, headers) that
  the document does not describe.

What the code already states is taken from the code: status values and their meaning
(the docstrings of :class:`domain.status.PaymentStatus`, read with :mod:`ast`), what a
status can become next (:data:`domain.lifecycle.TRANSITIONS`), amount bounds
(:mod:`domain.money`), enums, id shapes, field limits and webhook event types.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, Final, TypeVar

from aiohttp import web

from domain.cards import Brand
from domain.lifecycle import TRANSITIONS
from domain.money import MAX_AMOUNT_PAISA, MIN_AMOUNT_PAISA, SUPPORTED_CURRENCIES
from domain.status import PaymentMethod, PaymentStatus
from domain.upi import _VPA
from domain.views import WEBHOOK_EVENT_TYPES
from domain.webhooks import (
    EVENT_TYPES,
    MAX_ENDPOINTS_PER_MERCHANT,
    MAX_EVENTS,
    MAX_SECRET_CHARS,
    SECRET_PREFIX,
)
from ingress.api_docs import render_docs
from ingress.context import SETTINGS
from ingress.errors import dumps
from ingress.idempotency import HEADER as IDEMPOTENCY_HEADER
from ingress.idempotency import MAX_KEY_CHARS, REPLAYED_HEADER
from ingress.parsing import (
    ID_LIKE,
    MAX_CALLBACK_URL_CHARS,
    MAX_DESCRIPTION_CHARS,
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE_CHARS,
)
from ingress.payment_methods import MAX_HOLDER_NAME_CHARS
from ingress.payment_ops import DEFAULT_LIMIT, MAX_LIMIT
from ingress.ratelimit import LIMIT_HEADER, REMAINING_HEADER
from settings import Settings

OPENAPI_PATH: Final = "/api/v1/openapi.json"
DOCS_PATH: Final = "/api/v1/docs"
OPENAPI_VERSION: Final = "3.1.0"
API_VERSION: Final = "1.0.0"
_PUBLIC_ATTR: Final = "__paystream_public__"

_ID_CHARS: Final = "[0-9A-HJKMNP-TV-Z]"
"""Crockford base32, the alphabet of the time-sortable part of our ids (domain.ids)."""
PAYMENT_ID_PATTERN: Final = f"^PAY_{_ID_CHARS}{{26}}$"
REFUND_ID_PATTERN: Final = f"^rfnd_{_ID_CHARS}{{26}}$"
WEBHOOK_ID_PATTERN: Final = f"^we_{_ID_CHARS}{{26}}$"
TOKEN_PATTERN: Final = "^tok_[A-Za-z0-9_-]{24}$"  # noqa: S105 (an id shape, not a secret)
USER_ID_PATTERN: Final = f"^{ID_LIKE.pattern}$"
NO_CONTROL_CHARS: Final = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
"""Free text: no control characters (Unicode category Cc), as ingress.parsing refuses them."""
HTTP_URL: Final = "^[Hh][Tt][Tt][Pp][Ss]?://"

F = TypeVar("F", bound=Callable[..., Any])


def public(handler: F) -> F:
    """Mark a handler under ``/api/`` that answers without a merchant token."""
    setattr(handler, _PUBLIC_ATTR, True)
    return handler


def is_public(handler: object) -> bool:
    """True for handlers marked :func:`public` (the auth middleware lets them through)."""
    return getattr(handler, _PUBLIC_ATTR, False) is True


# Statuses, from the code ------------------------------------------------------------


def _clean_doc(text: str) -> str:
    """A docstring as one line of Markdown (RST ````x```` becomes ```x```)."""
    return " ".join(inspect.cleandoc(text).split()).replace("``", "`")


@lru_cache(maxsize=1)
def status_meanings() -> dict[str, str]:
    """Each PaymentStatus value's business meaning: the docstring under it in domain/status.py.

    Raises RuntimeError if a value has none, so a new status cannot ship undocumented.
    """
    tree = ast.parse(inspect.getsource(PaymentStatus).strip())
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef)
    meanings: dict[str, str] = {}
    for node, following in zip(cls.body, cls.body[1:], strict=False):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            meanings[node.targets[0].id] = _clean_doc(following.value.value)
    missing = [status.name for status in PaymentStatus if not meanings.get(status.name)]
    if missing:
        raise RuntimeError(f"PaymentStatus values without a docstring: {missing}")
    return {status.value: meanings[status.name] for status in PaymentStatus}


def next_statuses(status: PaymentStatus) -> list[str]:
    """The statuses ``status`` can move to in one step (domain.lifecycle.TRANSITIONS)."""
    targets = {to for (frm, _op, _out), to in TRANSITIONS.items() if frm is status and to != frm}
    return [s.value for s in PaymentStatus if s in targets]


def status_table() -> list[dict[str, Any]]:
    """One row per status: value, meaning, terminal, next statuses (for docs and tests)."""
    meanings = status_meanings()
    return [
        {
            "status": status.value,
            "meaning": meanings[status.value],
            "terminal": status.is_terminal,
            "next": next_statuses(status),
        }
        for status in PaymentStatus
    ]


def _status_description() -> str:
    lines = [
        "Where a payment is in its life. Generated from `domain/status.py` (each value's "
        "docstring) and `domain/lifecycle.py` (what it can become next).",
        "",
        "| Status | Meaning | Terminal | Can become |",
        "| --- | --- | --- | --- |",
    ]
    for row in status_table():
        following = ", ".join(f"`{s}`" for s in row["next"]) or "-"
        terminal = "yes" if row["terminal"] else "no"
        lines.append(f"| `{row['status']}` | {row['meaning']} | {terminal} | {following} |")
    return "\n".join(lines)


# Building blocks ----------------------------------------------------------------------


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _schema(name: str) -> dict[str, str]:
    return _ref("schemas", name)


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` or null (OpenAPI 3.1: a type list, or oneOf for references)."""
    if "$ref" in schema:
        return {"oneOf": [dict(schema), {"type": "null"}]}
    out = dict(schema)
    kind = out["type"]
    out["type"] = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def _obj(
    properties: Mapping[str, Any],
    required: Iterable[str] = (),
    *,
    closed: bool = False,
    description: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if description:
        out["description"] = description
    needed = list(required)
    if needed:
        out["required"] = needed
    if closed:
        out["additionalProperties"] = False
    return out


_TIMESTAMP: Final = {"type": "string", "format": "date-time", "examples": ["2026-11-26T17:05:04Z"]}
_JSON: Final = "application/json"


def _json_body(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {_JSON: {"schema": dict(schema)}}


def _header_refs(names: Iterable[str]) -> dict[str, Any]:
    """Response headers by name; ``"Retry-After?"`` is the optional variant of Retry-After."""
    out: dict[str, Any] = {}
    for name in ("X-Request-Id", *names):
        if name.endswith("?"):
            out[name[:-1]] = _ref("headers", name[:-1] + "-Optional")
        else:
            out[name] = _ref("headers", name)
    return out


def _error_response(description: str, *headers: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _header_refs(headers),
        "content": _json_body(_schema("Error")),
    }


def _ok(description: str, schema: Mapping[str, Any] | None, *headers: str) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "headers": _header_refs(headers)}
    if schema is not None:
        out["content"] = _json_body(schema)
    return out


# Components ---------------------------------------------------------------------------


def _metadata_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            f"Your key/value pairs: at most {MAX_METADATA_KEYS} keys of 1-"
            f"{MAX_METADATA_KEY_CHARS} characters, string values of at most "
            f"{MAX_METADATA_VALUE_CHARS} characters, no control characters, no card numbers."
        ),
        "maxProperties": MAX_METADATA_KEYS,
        "propertyNames": {
            "minLength": 1,
            "maxLength": MAX_METADATA_KEY_CHARS,
            "pattern": NO_CONTROL_CHARS,
        },
        "additionalProperties": {
            "type": "string",
            "maxLength": MAX_METADATA_VALUE_CHARS,
            "pattern": NO_CONTROL_CHARS,
        },
        "examples": [{"order_id": "12345"}],
    }


def _amount(description: str, minimum: int = MIN_AMOUNT_PAISA) -> dict[str, Any]:
    return {
        "type": "integer",
        "format": "int64",
        "minimum": minimum,
        "maximum": MAX_AMOUNT_PAISA,
        "description": description,
        "examples": [10000],
    }


def _text(param: str, max_chars: int = MAX_DESCRIPTION_CHARS) -> dict[str, Any]:
    return {
        "type": ["string", "null"],
        "maxLength": max_chars,
        "pattern": NO_CONTROL_CHARS,
        "description": f"{param}: free text, at most {max_chars} characters, no control "
        "characters, no card numbers.",
    }


def _schemas() -> dict[str, Any]:
    currencies = sorted(SUPPORTED_CURRENCIES)
    failure = _nullable(
        _obj(
            {"code": {"type": "string"}, "message": {"type": ["string", "null"]}},
            ["code", "message"],
            description="Why it failed: a normalised code and a message for people.",
        )
    )
    payment_properties: dict[str, Any] = {
        "payment_id": {"type": "string", "pattern": PAYMENT_ID_PATTERN},
        "merchant_id": {"type": "string"},
        "user_id": {"type": "string"},
        "status": _schema("PaymentStatus"),
        "amount_paisa": _amount("The amount in paisa (1/100 INR)."),
        "fees_paisa": {"type": "integer", "format": "int64", "minimum": 0},
        "refunded_paisa": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "description": "What has been refunded so far.",
        },
        "currency": {"type": "string", "enum": currencies},
        "payment_method": _schema("PaymentMethodType"),
        "description": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "provider": {"type": ["string", "null"], "description": "e.g. `upi_core`"},
        "external_txn_id": {"type": ["string", "null"]},
        "gateway_response": _nullable(
            _obj(
                {
                    "rrn": {"type": ["string", "null"]},
                    "approval_code": {"type": ["string", "null"]},
                },
                ["rrn", "approval_code"],
            )
        ),
        "failure": failure,
        "processed_at": _nullable(_TIMESTAMP),
        "expires_at": _nullable(_TIMESTAMP),
        "created_at": _TIMESTAMP,
    }
    payment = _obj(
        payment_properties,
        list(payment_properties),
        description="A payment. Every key is always present (absent values are null).",
    )
    refund_properties: dict[str, Any] = {
        "refund_id": {"type": "string", "pattern": REFUND_ID_PATTERN},
        "payment_id": {"type": "string", "pattern": PAYMENT_ID_PATTERN},
        "amount_paisa": _amount("The refunded amount in paisa.", minimum=1),
        "currency": {"type": "string", "enum": currencies},
        "status": _schema("RefundStatus"),
        "reason": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "provider": {"type": ["string", "null"]},
        "external_refund_id": {"type": ["string", "null"]},
        "failure": failure,
        "created_at": _TIMESTAMP,
        "processed_at": _nullable(_TIMESTAMP),
    }
    card_properties: dict[str, Any] = {
        "brand": {"type": "string", "enum": [b.value for b in Brand]},
        "last4": {"type": "string", "pattern": "^[0-9]{4}$"},
        "expiry_month": {"type": "integer", "minimum": 1, "maximum": 12},
        "expiry_year": {"type": "integer", "minimum": 2000, "maximum": 2199},
        "issuer": {"type": ["string", "null"]},
    }
    payment_method_properties: dict[str, Any] = {
        "token": {"type": "string", "pattern": TOKEN_PATTERN},
        "type": {"type": "string", "enum": ["CARD"]},
        "user_id": {"type": "string"},
        "card": _obj(card_properties, list(card_properties)),
        "display_name": {"type": "string", "examples": ["Visa •••• 1111"]},
        "created_at": _TIMESTAMP,
    }
    webhook_properties: dict[str, Any] = {
        "webhook_id": {"type": "string", "pattern": WEBHOOK_ID_PATTERN},
        "url": {"type": "string"},
        "events": {"type": "array", "items": _schema("WebhookEventType")},
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "description": {"type": "string"},
        "created_at": _nullable(_TIMESTAMP),
    }
    secret = {
        "type": "string",
        "description": f"The signing secret, `{SECRET_PREFIX}` + key material. Shown only in "
        "the create answer: store it now.",
    }
    error_types = [
        "invalid_request_error",
        "authentication_error",
        "idempotency_error",
        "rate_limit_error",
        "card_error",
        "api_error",
    ]
    check = _obj(
        {
            "status": {"type": "string", "enum": ["healthy", "unhealthy"]},
            "error": {"type": "string"},
        },
        ["status"],
    )
    return {
        "PaymentStatus": {
            "type": "string",
            "enum": [s.value for s in PaymentStatus],
            "description": _status_description(),
            "x-status-meanings": status_meanings(),
        },
        "PaymentMethodType": {
            "type": "string",
            "enum": [m.value for m in PaymentMethod],
            "description": "How the payer pays. Only `UPI` is enabled today; the others "
            "answer `400 payment_method_unavailable`.",
        },
        "RefundStatus": {
            "type": "string",
            "enum": ["PENDING", "PROCESSED", "FAILED"],
            "description": "`PENDING`: accepted and reserved, the provider has not answered "
            "yet. `PROCESSED`: the money went back to the payer. `FAILED`: the provider "
            "refused; nothing was refunded and the amount is refundable again.",
        },
        "WebhookEventType": {
            "type": "string",
            "enum": list(EVENT_TYPES),
            "description": "One event per payment status, the refund outcomes, and `*` "
            "(every event, including ones added later).",
        },
        "Error": _obj(
            {
                "error": _obj(
                    {
                        "type": {"type": "string", "enum": error_types},
                        "code": {
                            "type": "string",
                            "description": "Stable, machine-readable (e.g. `amount_invalid`).",
                        },
                        "message": {"type": "string", "description": "For people; may change."},
                        "param": {
                            "type": ["string", "null"],
                            "description": "The offending parameter, header or field, if any.",
                        },
                        "request_id": {"type": "string", "description": "As in X-Request-Id."},
                    },
                    ["type", "code", "message", "param", "request_id"],
                    closed=True,
                )
            },
            ["error"],
            closed=True,
            description="The one error shape of every 4xx and 5xx.",
        ),
        "Payment": payment,
        "PaymentCreated": {
            "allOf": [
                _schema("Payment"),
                _obj(
                    {
                        "payment_url": {
                            "type": "string",
                            "description": "The UPI intent link (`upi://pay?...`) to pay it.",
                        },
                        "qr_code": {
                            "type": "string",
                            "description": "The same link as a QR code "
                            "(`data:image/png;base64,...`).",
                        },
                    },
                    ["payment_url", "qr_code"],
                ),
            ],
            "description": "The payment as created (status `PENDING`), with ways to pay it.",
        },
        "PaymentCreate": _obj(
            {
                "user_id": {
                    "type": "string",
                    "pattern": USER_ID_PATTERN,
                    "description": "Your id of the payer: 1-64 letters, digits, `_ . : -`.",
                    "examples": ["123e4567-e89b-12d3-a456-426614174000"],
                },
                "merchant_id": {
                    "type": ["string", "null"],
                    "description": "Optional; must equal the token's merchant "
                    "(`400 merchant_mismatch`).",
                },
                "amount_paisa": _amount(
                    "Integer paisa. Floats (even `100.0`), strings, zero and negatives are refused."
                ),
                "currency": {"type": "string", "enum": currencies},
                "payment_method": _schema("PaymentMethodType"),
                "payment_details": _obj(
                    {
                        "vpa": {
                            "type": "string",
                            "pattern": _VPA.pattern,
                            "examples": ["success@upi"],
                            "description": "The payer's UPI address (name@bank). In the "
                            "sandbox `success@upi` succeeds and `failure@upi` is declined.",
                        }
                    },
                    ["vpa"],
                    closed=True,
                    description="Method-specific details: `{vpa}` for UPI.",
                ),
                "description": _text("description"),
                "callback_url": {
                    "type": ["string", "null"],
                    "format": "uri",
                    "pattern": HTTP_URL,
                    "maxLength": MAX_CALLBACK_URL_CHARS,
                    "description": "An absolute http(s) URL without credentials.",
                },
                "metadata": _nullable(_metadata_schema()),
            },
            ["user_id", "amount_paisa", "currency", "payment_method", "payment_details"],
            closed=True,
            description="Unknown fields and server-owned ones (`status`, `fees_paisa`, ...) "
            "are refused (`400 parameter_unknown`).",
        ),
        "PaymentList": _obj(
            {
                "data": {"type": "array", "items": _schema("Payment"), "maxItems": MAX_LIMIT},
                "has_more": {"type": "boolean"},
            },
            ["data", "has_more"],
            description="Newest first. Pass the last `payment_id` as `starting_after` for the "
            "next page while `has_more` is true.",
        ),
        "CancelRequest": _obj(
            {"cancellation_reason": _text("cancellation_reason")},
            closed=True,
        ),
        "Refund": _obj(refund_properties, list(refund_properties), description="A refund."),
        "RefundCreate": _obj(
            {
                "amount_paisa": {
                    "type": ["integer", "null"],
                    "format": "int64",
                    "minimum": 1,
                    "maximum": MAX_AMOUNT_PAISA,
                    "description": "Integer paisa; omit it to refund everything still "
                    "refundable (captured - refunded - pending refunds).",
                },
                "reason": _text("reason"),
                "metadata": _nullable(_metadata_schema()),
            },
            closed=True,
            description="The body may be omitted: a full refund.",
        ),
        "RefundList": _obj(
            {
                "data": {"type": "array", "items": _schema("Refund"), "maxItems": MAX_LIMIT},
                "has_more": {"type": "boolean"},
            },
            ["data", "has_more"],
        ),
        "TokenizeRequest": _obj(
            {
                "user_id": {"type": "string", "pattern": USER_ID_PATTERN},
                "type": {
                    "type": "string",
                    "enum": ["CARD"],
                    "description": "Only cards can be tokenized today.",
                },
                "details": _obj(
                    {
                        "card_number": {
                            "type": "string",
                            "pattern": r"^\d(?:[ -]?\d){11,18}$",
                            "examples": ["4111 1111 1111 1111"],
                            "description": "12-19 digits, single spaces or dashes between "
                            "groups allowed; Visa, Mastercard, RuPay, Amex, Diners, Discover.",
                        },
                        "expiry_month": {
                            "anyOf": [
                                {"type": "integer", "minimum": 1, "maximum": 12},
                                {"type": "string", "pattern": "^(0?[1-9]|1[0-2])$"},
                            ],
                            "examples": ["12"],
                        },
                        "expiry_year": {
                            "anyOf": [
                                {"type": "integer", "minimum": 0},
                                {"type": "string", "pattern": "^([0-9]{2}|[0-9]{4})$"},
                            ],
                            "description": "2 digits (`28` is 2028) or 4; not expired, at "
                            "most 20 years ahead.",
                            "examples": ["2030"],
                        },
                        "cvv": {
                            "type": "string",
                            "pattern": "^[0-9]{3,4}$",
                            "description": "3 digits (4 for Amex): checked, then dropped; "
                            "never stored.",
                        },
                        "holder_name": {
                            "type": ["string", "null"],
                            "maxLength": MAX_HOLDER_NAME_CHARS,
                            "description": "Optional; stored encrypted, never returned.",
                        },
                    },
                    ["card_number", "expiry_month", "expiry_year", "cvv"],
                    closed=True,
                ),
                "display_name": {
                    "description": "Accepted and ignored: the display name is derived "
                    "(`Visa •••• 1111`)."
                },
            },
            ["user_id", "type", "details"],
            closed=True,
        ),
        "PaymentMethod": _obj(
            payment_method_properties,
            list(payment_method_properties),
            description="A stored card: never its number, BIN, CVV or holder name.",
        ),
        "PaymentMethodList": _obj(
            {
                "data": {"type": "array", "items": _schema("PaymentMethod")},
                "has_more": {"type": "boolean"},
            },
            ["data", "has_more"],
        ),
        "PaymentMethodDeleted": _obj(
            {
                "token": {"type": "string", "pattern": TOKEN_PATTERN},
                "deleted": {"type": "boolean", "const": True},
            },
            ["token", "deleted"],
        ),
        "WebhookEndpoint": _obj(
            webhook_properties,
            list(webhook_properties),
            description="A webhook endpoint (never its secret).",
        ),
        "WebhookEndpointCreated": {
            "allOf": [_schema("WebhookEndpoint"), _obj({"secret": secret}, ["secret"])],
            "description": "The new endpoint with its signing secret, shown this once.",
        },
        "WebhookEndpointCreate": _obj(
            {
                "url": {
                    "type": "string",
                    "format": "uri",
                    "pattern": HTTP_URL,
                    "maxLength": MAX_CALLBACK_URL_CHARS,
                    "examples": ["https://merchant.example/webhooks/paystream"],
                    "description": "An absolute http(s) URL whose host resolves only to "
                    "public addresses (`400 url_invalid` / `url_not_allowed`).",
                },
                "events": {
                    "type": "array",
                    "items": _schema("WebhookEventType"),
                    "minItems": 1,
                    "maxItems": MAX_EVENTS,
                },
                "secret": {
                    "type": ["string", "null"],
                    "maxLength": MAX_SECRET_CHARS,
                    "description": f"Optional: `{SECRET_PREFIX}` + at least 24 random bytes "
                    "in base64 or hex (`400 secret_too_weak`); omit it and one is generated.",
                },
                "description": _text("description"),
            },
            ["url", "events"],
            closed=True,
        ),
        "WebhookEndpointList": _obj(
            {
                "data": {
                    "type": "array",
                    "items": _schema("WebhookEndpoint"),
                    "maxItems": MAX_ENDPOINTS_PER_MERCHANT,
                },
                "has_more": {"type": "boolean", "const": False},
            },
            ["data", "has_more"],
        ),
        "WebhookEndpointDeleted": _obj(
            {
                "webhook_id": {"type": "string", "pattern": WEBHOOK_ID_PATTERN},
                "deleted": {"type": "boolean", "const": True},
            },
            ["webhook_id", "deleted"],
        ),
        "Health": _obj({"status": {"type": "string", "const": "healthy"}}, ["status"]),
        "Readiness": _obj(
            {
                "status": {"type": "string", "enum": ["ready", "degraded"]},
                "checks": _obj(
                    {"kafka": check, "postgres": check, "redis": check},
                    ["kafka", "postgres", "redis"],
                ),
            },
            ["status", "checks"],
        ),
    }


def _headers(settings: Settings) -> dict[str, Any]:
    return {
        "X-Request-Id": {
            "description": "This request's id (yours, if you sent a sane `X-Request-Id`); "
            "also in error bodies and in our logs.",
            "required": True,
            "schema": {"type": "string", "minLength": 8, "maxLength": 64},
        },
        REPLAYED_HEADER: {
            "description": "`true` when this is the stored answer to an earlier request "
            "with the same Idempotency-Key.",
            "schema": {"type": "string", "enum": ["true"]},
        },
        LIMIT_HEADER: {
            "description": f"Your bucket's size ({settings.rate_limit_burst} requests by "
            "default configuration of this server); sent on authenticated /api/v1 answers.",
            "schema": {"type": "integer", "minimum": 1},
        },
        REMAINING_HEADER: {
            "description": "Requests left in your bucket now (absent while the limiter's "
            "store is down and the limiter fails open).",
            "schema": {"type": "integer", "minimum": 0},
        },
        "Retry-After": {
            "description": "Whole seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        },
        "Retry-After-Optional": {
            "description": "Whole seconds to wait before retrying (sent with "
            "`idempotency_key_in_use`).",
            "schema": {"type": "integer", "minimum": 0},
        },
        "Location": {
            "description": "The new payment's URL.",
            "required": True,
            "schema": {"type": "string"},
        },
        "WWW-Authenticate": {
            "description": 'The bearer challenge (RFC 6750), e.g. `Bearer realm="paystream", '
            'error="invalid_token"`.',
            "required": True,
            "schema": {"type": "string"},
        },
    }


_GUARD_HEADERS: Final = (LIMIT_HEADER, REMAINING_HEADER)


def _responses(settings: Settings) -> dict[str, Any]:
    return {
        "BadRequest": _error_response(
            "The request is invalid: `error.code` says how (`parameter_invalid`, "
            "`parameter_missing`, `parameter_unknown`, `body_invalid`, `content_type_invalid`, "
            "`idempotency_key_missing`, `idempotency_key_invalid`, ...) and `error.param` "
            "names the field.",
            *_GUARD_HEADERS,
            REPLAYED_HEADER,
        ),
        "Unauthorized": _error_response(
            "No valid merchant token (`missing_token`, `invalid_authorization`, "
            "`invalid_token`, `token_expired`).",
            "WWW-Authenticate",
        ),
        "NotFound": _error_response(
            "`resource_missing`: no such object, or it belongs to another merchant; "
            "`route_not_found`: the path does not name an object (e.g. it has a `/` in an id).",
            *_GUARD_HEADERS,
            REPLAYED_HEADER,
        ),
        "Conflict": _error_response(
            "`idempotency_key_in_use`: a request with this Idempotency-Key is still running "
            "(retry after `Retry-After`); `payment_invalid_state`: the payment's status does "
            "not allow this operation.",
            *_GUARD_HEADERS,
            "Retry-After?",
        ),
        "PayloadTooLarge": _error_response(
            f"`request_too_large`: the body is over {settings.max_body_bytes} bytes.",
            *_GUARD_HEADERS,
        ),
        "Unprocessable": _error_response(
            "`idempotency_key_reused`: this Idempotency-Key was used for another request "
            "(body or path); or a business rule refuses it (see the operation).",
            *_GUARD_HEADERS,
            REPLAYED_HEADER,
        ),
        "TooManyRequests": _error_response(
            f"`rate_limited`: over your rate limit ({settings.rate_limit_per_s}/s, bursts of "
            f"{settings.rate_limit_burst} on this server). Wait `Retry-After` seconds.",
            *_GUARD_HEADERS,
            "Retry-After",
        ),
        "ServiceUnavailable": _error_response(
            "`service_unavailable`: a dependency (Kafka, PostgreSQL, Redis) cannot serve the "
            "request now. Nothing was done; retry after `Retry-After` seconds (with the same "
            "Idempotency-Key).",
            *_GUARD_HEADERS,
            "Retry-After",
        ),
    }


def _parameters() -> dict[str, Any]:
    key_schema = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_CHARS,
        "pattern": "^[\\x20-\\x7e]+$",
        "examples": ["0b4c2d5e-6f70-4a8b-9c0d-1e2f3a4b5c6d"],
    }
    key_text = (
        "A unique value per operation (a UUID v4), the same on retries. 1-255 printable ASCII "
        'characters; `abc` and `"abc"` are the same key. Scoped to your merchant, kept 24 h. '
        "Same key + same request: the stored answer again (`Idempotent-Replayed: true`); "
        "while the first runs: `409 idempotency_key_in_use`; with another body or path: "
        "`422 idempotency_key_reused`."
    )
    return {
        "IdempotencyKeyRequired": {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": True,
            "description": "**Required** here (`400 idempotency_key_missing` without it). "
            + key_text,
            "schema": key_schema,
        },
        "IdempotencyKeyOptional": {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": False,
            "description": "Optional here. " + key_text,
            "schema": key_schema,
        },
        "PaymentId": {
            "name": "payment_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": PAYMENT_ID_PATTERN},
            "example": "PAY_01M8CD2R38N5CQDNXX8K442YFS",
        },
        "RefundId": {
            "name": "refund_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": REFUND_ID_PATTERN},
        },
        "Token": {
            "name": "token",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": TOKEN_PATTERN},
        },
        "UserId": {
            "name": "user_id",
            "in": "path",
            "required": True,
            "description": "Your id of the payer.",
            "schema": {"type": "string", "pattern": USER_ID_PATTERN},
        },
        "WebhookId": {
            "name": "webhook_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": WEBHOOK_ID_PATTERN},
        },
        "Limit": {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": f"Page size, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "default": DEFAULT_LIMIT,
            },
        },
        "PaymentStartingAfter": {
            "name": "starting_after",
            "in": "query",
            "required": False,
            "description": "A cursor: the last `payment_id` of the previous page.",
            "schema": {"type": "string", "pattern": PAYMENT_ID_PATTERN},
        },
        "RefundStartingAfter": {
            "name": "starting_after",
            "in": "query",
            "required": False,
            "description": "A cursor: the last `refund_id` of the previous page.",
            "schema": {"type": "string", "pattern": REFUND_ID_PATTERN},
        },
    }


# Operations ---------------------------------------------------------------------------

_POST_ERRORS: Final = ("400", "401", "409", "413", "422", "429", "503")
_GET_ERRORS: Final = ("401", "429", "503")
_ERROR_REFS: Final = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "404": "NotFound",
    "409": "Conflict",
    "413": "PayloadTooLarge",
    "422": "Unprocessable",
    "429": "TooManyRequests",
    "503": "ServiceUnavailable",
}


def _errors(*codes: str, **overrides: str) -> dict[str, Any]:
    """Error responses by status code; ``overrides`` (``e422=...``) give a fuller text."""
    out: dict[str, Any] = {}
    for code in sorted(set(codes)):
        text = overrides.get("e" + code)
        if text is None:
            out[code] = _ref("responses", _ERROR_REFS[code])
        else:
            extra = ("Retry-After?",) if code == "409" else (REPLAYED_HEADER,)
            out[code] = _error_response(text, *_GUARD_HEADERS, *extra)
    return out


def _op(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: dict[str, Any],
    *,
    parameters: Iterable[Mapping[str, Any]] = (),
    body: Mapping[str, Any] | None = None,
    body_required: bool = True,
    security: list[Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
    }
    params = [dict(p) for p in parameters]
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = {"required": body_required, "content": _json_body(body)}
    out["responses"] = responses
    if security is not None:
        out["security"] = security
    return out


def _param(name: str) -> dict[str, str]:
    return _ref("parameters", name)


def _query(name: str, schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": dict(schema),
    }


def _sse_event_schema() -> dict[str, Any]:
    """One Server-Sent Event of the live status stream (``data`` is a Payment as JSON)."""
    return _obj(
        {
            "id": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "The payment's `sequence`: +1 per status change.",
            },
            "event": {
                "type": "string",
                "enum": list(WEBHOOK_EVENT_TYPES.values()),
                "description": "`payment.<status>`.",
            },
            "data": {
                "type": "string",
                "contentMediaType": _JSON,
                "contentSchema": _schema("Payment"),
                "description": "The payment as `GET /api/v1/payments/{payment_id}` answers it.",
            },
            "retry": {"type": "integer", "minimum": 0},
        },
        ["id", "event", "data"],
        description="One event of the stream (comments and the `retry` line are not events).",
    )


def _paths(with_metrics: bool) -> dict[str, Any]:
    guard = _GUARD_HEADERS
    replay = (*guard, REPLAYED_HEADER)
    timestamp_or_date = {
        "type": "string",
        "anyOf": [{"format": "date-time"}, {"format": "date"}],
        "examples": ["2026-11-26T00:00:00Z", "2026-11-26"],
    }
    paths: dict[str, Any] = {
        "/api/v1/payments": {
            "post": _op(
                "createPayment",
                "Payments",
                "Create a payment",
                "Stores the payment (`PENDING`) and queues it for processing; answers once "
                "Kafka has acknowledged it. Poll `GET /api/v1/payments/{payment_id}`, follow "
                "`/events`, or register a webhook for the outcome.",
                {
                    "201": _ok(
                        "Created: the payment, its UPI intent link and QR code.",
                        _schema("PaymentCreated"),
                        "Location",
                        *replay,
                    ),
                    **_errors(*_POST_ERRORS),
                },
                parameters=[_param("IdempotencyKeyRequired")],
                body=_schema("PaymentCreate"),
            ),
            "get": _op(
                "listPayments",
                "Payments",
                "List payments",
                "Your payments, newest first, with filters. Unknown query parameters are "
                "refused (`400 parameter_unknown`).",
                {
                    "200": _ok("A page of payments.", _schema("PaymentList"), *guard),
                    **_errors("400", *_GET_ERRORS),
                },
                parameters=[
                    _param("Limit"),
                    _param("PaymentStartingAfter"),
                    _query("status", _schema("PaymentStatus"), "Only payments in this status."),
                    _query(
                        "payment_method",
                        _schema("PaymentMethodType"),
                        "Only payments with this method.",
                    ),
                    _query(
                        "created_from",
                        timestamp_or_date,
                        "Created at or after (RFC 3339 time, or a date = its midnight UTC).",
                    ),
                    _query(
                        "created_to",
                        timestamp_or_date,
                        "Created before (RFC 3339 time, or a date = its midnight UTC).",
                    ),
                ],
            ),
        },
        "/api/v1/payments/{payment_id}": {
            "get": _op(
                "getPayment",
                "Payments",
                "Get a payment",
                "The payment as stored. Another merchant's payment is `404`, like an unknown one.",
                {
                    "200": _ok("The payment.", _schema("Payment"), *guard),
                    **_errors("404", *_GET_ERRORS),
                },
                parameters=[_param("PaymentId")],
            ),
        },
        "/api/v1/payments/{payment_id}/cancel": {
            "post": _op(
                "cancelPayment",
                "Payments",
                "Cancel a payment",
                "Cancels a payment that has not been processed yet (`CREATED`, "
                "`REQUIRES_ACTION`, `AUTHORIZED`); no money moves. Otherwise `409 "
                "payment_invalid_state`. The body is optional.",
                {
                    "200": _ok("The cancelled payment.", _schema("Payment"), *replay),
                    **_errors("404", *_POST_ERRORS),
                },
                parameters=[_param("PaymentId"), _param("IdempotencyKeyOptional")],
                body=_schema("CancelRequest"),
                body_required=False,
            ),
        },
        "/api/v1/payments/{payment_id}/refund": {
            "post": _op(
                "createRefund",
                "Refunds",
                "Refund a payment",
                "Refunds all (no `amount_paisa`) or part of a captured payment (`SUCCESS` or "
                "`PARTIALLY_REFUNDED`); several partial refunds are allowed. The amount is "
                "reserved at once so refunds can never exceed what was captured. The refund "
                "starts `PENDING`; the provider's answer makes it `PROCESSED` or `FAILED`.",
                {
                    "201": _ok("The refund, `PENDING`.", _schema("Refund"), *replay),
                    **_errors(
                        "404",
                        *_POST_ERRORS,
                        e409="`payment_invalid_state`: the payment is not captured (or is "
                        "fully refunded); `idempotency_key_in_use` (retry after `Retry-After`).",
                        e422="`refund_exceeds_captured`: more than is still refundable; or "
                        "`idempotency_key_reused`.",
                    ),
                },
                parameters=[_param("PaymentId"), _param("IdempotencyKeyRequired")],
                body=_schema("RefundCreate"),
                body_required=False,
            ),
        },
        "/api/v1/payments/{payment_id}/refunds": {
            "get": _op(
                "listPaymentRefunds",
                "Refunds",
                "List a payment's refunds",
                "Newest first. Unknown query parameters are refused.",
                {
                    "200": _ok("A page of refunds.", _schema("RefundList"), *guard),
                    **_errors("400", "404", *_GET_ERRORS),
                },
                parameters=[
                    _param("PaymentId"),
                    _param("Limit"),
                    _param("RefundStartingAfter"),
                ],
            ),
        },
        "/api/v1/payments/{payment_id}/events": {
            "get": _op(
                "streamPaymentEvents",
                "Payments",
                "Follow a payment's status live",
                "Server-Sent Events: `retry: 3000`, then the current status at once and every "
                "later change, each as `id: <sequence>`, `event: payment.<status>`, `data: "
                "<the Payment as JSON>`; `: keep-alive` comments every 15 s. The stream ends "
                "after a terminal status. Reconnect with `Last-Event-ID` (EventSource does): "
                "you get the current status only if it is newer, and a terminal payment you "
                "have already seen answers `204`. With `?transport=websocket` and a WebSocket "
                "upgrade, the same events arrive as JSON messages `{id, event, data}`.",
                {
                    "101": {"description": "Switching to a WebSocket (`transport=websocket`)."},
                    "200": {
                        "description": "The event stream.",
                        "headers": _header_refs(guard),
                        "content": {
                            "text/event-stream": {
                                "schema": _sse_event_schema(),
                                "example": 'retry: 3000\n\nid: 1\nevent: payment.pending\ndata: {"payment_id": "PAY_...", "status": "PENDING"}\n\n',  # noqa: E501
                            }
                        },
                    },
                    "204": _ok(
                        "The payment is terminal and you have seen its last event: stop.",
                        None,
                        *guard,
                    ),
                    **_errors("400", "404", *_GET_ERRORS),
                },
                parameters=[
                    _param("PaymentId"),
                    _query(
                        "transport",
                        {"type": "string", "enum": ["sse", "websocket"], "default": "sse"},
                        "`websocket` needs a WebSocket upgrade request "
                        "(`400 websocket_upgrade_required`).",
                    ),
                    _query(
                        "last_event_id",
                        {"type": "string", "pattern": "^[0-9]{1,10}$"},
                        "Like the `Last-Event-ID` header (for WebSocket clients); wins over it.",
                    ),
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "description": "The `id` of the last event you received.",
                        "schema": {"type": "string", "pattern": "^[0-9]{1,10}$"},
                    },
                ],
            ),
        },
        "/api/v1/refunds": {
            "get": _op(
                "listRefunds",
                "Refunds",
                "List refunds",
                "All your refunds, newest first. Unknown query parameters are refused.",
                {
                    "200": _ok("A page of refunds.", _schema("RefundList"), *guard),
                    **_errors("400", *_GET_ERRORS),
                },
                parameters=[_param("Limit"), _param("RefundStartingAfter")],
            ),
        },
        "/api/v1/refunds/{refund_id}": {
            "get": _op(
                "getRefund",
                "Refunds",
                "Get a refund",
                "Another merchant's refund is `404`, like an unknown one.",
                {
                    "200": _ok("The refund.", _schema("Refund"), *guard),
                    **_errors("404", *_GET_ERRORS),
                },
                parameters=[_param("RefundId")],
            ),
        },
        "/api/v1/payment-methods/tokenize": {
            "post": _op(
                "tokenizeCard",
                "Payment methods",
                "Tokenize a card",
                "Validates the card (network, length, Luhn, expiry, CVV format), seals it in "
                "the vault and answers a token. The CVV is checked and dropped. A card this "
                "user already has answers `200` with the existing token (expiry updated). "
                "Errors name the field, never echo card data (`card_number_invalid`, "
                "`card_brand_unsupported`, `card_expired`, `cvv_invalid`, ...).",
                {
                    "201": _ok("Stored: a new token.", _schema("PaymentMethod"), *replay),
                    "200": _ok(
                        "This user already has this card: its token.",
                        _schema("PaymentMethod"),
                        *replay,
                    ),
                    **_errors(*_POST_ERRORS),
                },
                parameters=[_param("IdempotencyKeyOptional")],
                body=_schema("TokenizeRequest"),
            ),
        },
        "/api/v1/users/{user_id}/payment-methods": {
            "get": _op(
                "listPaymentMethods",
                "Payment methods",
                "List a user's payment methods",
                "Newest first; deleted ones left out.",
                {
                    "200": _ok("The user's cards.", _schema("PaymentMethodList"), *guard),
                    **_errors("400", "404", *_GET_ERRORS),
                },
                parameters=[_param("UserId")],
            ),
        },
        "/api/v1/payment-methods/{token}": {
            "delete": _op(
                "deletePaymentMethod",
                "Payment methods",
                "Delete a payment method",
                "Deletes the token and wipes its card data. An unknown, foreign or already "
                "deleted token is `404`.",
                {
                    "200": _ok("Deleted.", _schema("PaymentMethodDeleted"), *guard),
                    **_errors("404", *_GET_ERRORS),
                },
                parameters=[_param("Token")],
            ),
        },
        "/api/v1/webhooks": {
            "post": _op(
                "createWebhookEndpoint",
                "Webhooks",
                "Register a webhook endpoint",
                f"At most {MAX_ENDPOINTS_PER_MERCHANT} endpoints per merchant. The answer "
                "carries the signing secret, shown this once.",
                {
                    "201": _ok(
                        "Registered, with its secret.",
                        _schema("WebhookEndpointCreated"),
                        *replay,
                    ),
                    **_errors(
                        *_POST_ERRORS,
                        e422=f"`too_many_webhooks`: you have {MAX_ENDPOINTS_PER_MERCHANT} "
                        "endpoints already; or `idempotency_key_reused`.",
                    ),
                },
                parameters=[_param("IdempotencyKeyOptional")],
                body=_schema("WebhookEndpointCreate"),
            ),
            "get": _op(
                "listWebhookEndpoints",
                "Webhooks",
                "List webhook endpoints",
                "Newest first, without secrets. Takes no query parameters.",
                {
                    "200": _ok("Your endpoints.", _schema("WebhookEndpointList"), *guard),
                    **_errors("400", *_GET_ERRORS),
                },
            ),
        },
        "/api/v1/webhooks/{webhook_id}": {
            "get": _op(
                "getWebhookEndpoint",
                "Webhooks",
                "Get a webhook endpoint",
                "Without its secret.",
                {
                    "200": _ok("The endpoint.", _schema("WebhookEndpoint"), *guard),
                    **_errors("404", *_GET_ERRORS),
                },
                parameters=[_param("WebhookId")],
            ),
            "delete": _op(
                "deleteWebhookEndpoint",
                "Webhooks",
                "Delete a webhook endpoint",
                "Its secret is wiped.",
                {
                    "200": _ok("Deleted.", _schema("WebhookEndpointDeleted"), *guard),
                    **_errors("404", *_GET_ERRORS),
                },
                parameters=[_param("WebhookId")],
            ),
        },
        OPENAPI_PATH: {
            "get": _op(
                "getOpenApiDocument",
                "Reference",
                "This document",
                "The OpenAPI 3.1 document of this API. No token needed.",
                {"200": _ok("The document.", {"type": "object"})},
                security=[],
            ),
        },
        DOCS_PATH: {
            "get": _op(
                "getApiDocs",
                "Reference",
                "The API reference page",
                "This document as one HTML page, without external resources. No token needed.",
                {
                    "200": {
                        "description": "The page.",
                        "headers": _header_refs(()),
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
                security=[],
            ),
        },
        "/health": {
            "get": _op(
                "health",
                "Operations",
                "Liveness",
                "The process runs and its event loop answers.",
                {"200": _ok("Alive.", _schema("Health"))},
                security=[],
            ),
        },
        "/ready": {
            "get": _op(
                "ready",
                "Operations",
                "Readiness",
                "Kafka (and the requests topic), PostgreSQL and Redis each answer.",
                {
                    "200": _ok("Ready.", _schema("Readiness")),
                    "503": _ok("Degraded: `checks` names the failing one.", _schema("Readiness")),
                },
                security=[],
            ),
        },
    }
    if with_metrics:
        paths["/metrics"] = {
            "get": _op(
                "metrics",
                "Operations",
                "Prometheus metrics",
                "This process's metrics in the Prometheus text format.",
                {
                    "200": {
                        "description": "The metrics.",
                        "headers": _header_refs(()),
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                security=[],
            ),
        }
    return paths


_DESCRIPTION: Final = """\
paystream takes payments over HTTP and processes them on a Kafka pipeline. Money is
**integer paisa** everywhere (`10000` is ₹100.00); floats are refused.

**Authentication.** `Authorization: Bearer <JWT>` on every `/api/v1` route except this
document and the reference page: HS256, with `exp`, `iss` = `paystream`, `aud` =
`paystream-api`; the merchant is the `merchant_id` claim. Another merchant's objects
answer `404`, exactly like unknown ones.

**Errors** have one shape, for every 4xx and 5xx (see `Error`), and every response
carries `X-Request-Id`.

**Idempotency.** Every `POST` under `/api/v1` honours `Idempotency-Key`; creating a
payment or a refund requires one. Send a new UUID per operation and the same value when
you retry it. A 5xx is never stored: retry it with the same key.

**Rate limits.** A token bucket per merchant; answers carry `RateLimit-Limit` and
`RateLimit-Remaining`; over the limit, `429 rate_limited` with `Retry-After`.
"""


def build_openapi(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the ingress as configured by ``settings``."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "paystream merchant API",
            "version": API_VERSION,
            "summary": "Payments, refunds, card vault, webhooks and live status.",
            "description": _DESCRIPTION,
        },
        "servers": [{"url": "/", "description": "This server"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "Payments", "description": "Create, read, list, cancel, follow live."},
            {"name": "Refunds", "description": "Full and partial refunds of captured payments."},
            {"name": "Payment methods", "description": "The card vault."},
            {"name": "Webhooks", "description": "Where we send events about your payments."},
            {"name": "Reference", "description": "This document."},
            {"name": "Operations", "description": "Probes and metrics (no token)."},
        ],
        "paths": _paths(settings.enable_metrics),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An HS256 JWT (`paystream token --merchant-id ...` mints "
                    "one for development).",
                }
            },
            "schemas": _schemas(),
            "parameters": _parameters(),
            "headers": _headers(settings),
            "responses": _responses(settings),
        },
    }


# Routes ---------------------------------------------------------------------------------

OPENAPI_DOCUMENT: Final = web.AppKey("openapi_document", dict)
_DOCS_HTML: Final = web.AppKey("openapi_docs_html", str)


def _document(app: web.Application) -> dict[str, Any]:
    document = app.get(OPENAPI_DOCUMENT)
    if document is None:
        raise RuntimeError("add_openapi_routes was not called")
    return document


@public
async def openapi_json(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: the document (no token needed)."""
    return web.json_response(_document(request.app), dumps=dumps)


@public
async def api_docs(request: web.Request) -> web.Response:
    """``GET /api/v1/docs``: the document as a self-contained HTML page."""
    return web.Response(text=request.app[_DOCS_HTML], content_type="text/html", charset="utf-8")


def add_openapi_routes(app: web.Application) -> None:
    """Build the document and its page once (no IO) and register both routes."""
    document = build_openapi(app[SETTINGS])
    app[OPENAPI_DOCUMENT] = document
    app[_DOCS_HTML] = render_docs(document)
    app.router.add_get(OPENAPI_PATH, openapi_json, allow_head=False)
    app.router.add_get(DOCS_PATH, api_docs, allow_head=False)
