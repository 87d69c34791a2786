"""Webhook endpoints: the event types a merchant can subscribe to, ids, and signing secrets.

Pure (stdlib only). Registration lives in :mod:`ingress.webhooks`, storage in
:mod:`sinks.webhook_endpoints`; delivery comes later and signs each payload with the
endpoint's secret.

**Secrets.** A signing secret is ``whsec_`` followed by key material in base64
(standard or URL-safe, padding optional) or hex. When a merchant does not send one we
generate ``whsec_`` + 32 random bytes in standard base64. A merchant's own secret must
carry at least :data:`MIN_SECRET_BYTES` bytes of key material after the prefix, and
that material must not be degenerate (fewer than :data:`MIN_DISTINCT_BYTES` distinct
byte values, e.g. ``whsec_`` + ``00`` * 24): otherwise ``secret_too_weak``. The secret
is shown once, in the create answer; it is stored encrypted and never listed.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from domain.errors import RequestError
from domain.ids import new_id
from domain.views import WEBHOOK_EVENT_TYPES, isoformat

WEBHOOK_ID_PREFIX: Final = "we"
WEBHOOK_ID_PATTERN: Final = re.compile(r"we_[0-9A-HJKMNP-TV-Z]{26}")
ALL_EVENTS: Final = "*"
REFUND_EVENT_TYPES: Final = ("refund.processed", "refund.failed")
EVENT_TYPES: Final = (*WEBHOOK_EVENT_TYPES.values(), *REFUND_EVENT_TYPES, ALL_EVENTS)
"""Every value ``events`` may hold: one per payment status, the refund outcomes, and
``*`` (every event, including ones added later)."""
MAX_ENDPOINTS_PER_MERCHANT: Final = 20
MAX_EVENTS: Final = len(EVENT_TYPES)

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a format prefix, not a secret)
MIN_SECRET_BYTES: Final = 24
MIN_DISTINCT_BYTES: Final = 12
GENERATED_SECRET_BYTES: Final = 32
MAX_SECRET_CHARS: Final = 256
_HEX: Final = re.compile(r"(?:[0-9a-fA-F]{2})+")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_BASE64_URL: Final = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def new_webhook_id() -> str:
    """A new webhook endpoint id: ``we_`` + 26 time-sortable, unguessable characters."""
    return new_id(WEBHOOK_ID_PREFIX)


def is_webhook_id(value: str) -> bool:
    """True if ``value`` has the shape of a webhook endpoint id (cheap check before a lookup)."""
    return WEBHOOK_ID_PATTERN.fullmatch(value) is not None


def new_secret() -> str:
    """A new signing secret: ``whsec_`` + 32 random bytes (:mod:`secrets`) in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode()


def secret_material(secret: str) -> bytes | None:
    """The key material after ``whsec_`` (hex first, then base64), or None if unreadable.

    Hex is tried first because a hex string is also valid base64 and would otherwise
    count 1.5 times the bytes it really holds.
    """
    if not secret.startswith(SECRET_PREFIX):
        return None
    body = secret[len(SECRET_PREFIX) :]
    if _HEX.fullmatch(body):
        return bytes.fromhex(body)
    for pattern, decode in (
        (_BASE64, base64.b64decode),
        (_BASE64_URL, base64.urlsafe_b64decode),
    ):
        if pattern.fullmatch(body):
            unpadded = body.rstrip("=")
            try:
                return decode(unpadded + "=" * (-len(unpadded) % 4))
            except (binascii.Error, ValueError):
                return None
    return None


def is_strong_secret(secret: str) -> bool:
    """True if ``secret`` carries >= 24 non-degenerate bytes of key material after ``whsec_``."""
    material = secret_material(secret)
    return (
        material is not None
        and len(material) >= MIN_SECRET_BYTES
        and len(set(material)) >= MIN_DISTINCT_BYTES
    )


def parse_secret(value: object, param: str = "secret") -> str | None:
    """A merchant-supplied secret, checked (None when absent: the caller generates one)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError("parameter_invalid", f"{param} must be a string", param)
    if len(value) > MAX_SECRET_CHARS or not is_strong_secret(value):
        raise RequestError(
            "secret_too_weak",
            f"{param} must be '{SECRET_PREFIX}' followed by at least {MIN_SECRET_BYTES} random "
            f"bytes in base64 or hex (at most {MAX_SECRET_CHARS} characters); omit it and a "
            "strong one is generated for you",
            param,
        )
    return value


def parse_events(value: object, param: str = "events") -> list[str]:
    """A non-empty list of known event types (duplicates dropped, order kept)."""
    if not isinstance(value, list) or not value:
        raise RequestError(
            "parameter_invalid",
            f'{param} must be a non-empty list of event types, e.g. ["payment.success"]',
            param,
        )
    if len(value) > MAX_EVENTS:
        raise RequestError(
            "parameter_invalid", f"{param} must list at most {MAX_EVENTS} event types", param
        )
    events: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or item not in EVENT_TYPES:
            raise RequestError(
                "event_type_unknown",
                f"{param}[{index}] is not a known event type; use one of: "
                + ", ".join(EVENT_TYPES),
                f"{param}[{index}]",
            )
        if item not in events:
            events.append(item)
    return events


def webhook_endpoint_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A webhook endpoint as merchants see it (never its secret)."""
    created: datetime | None = row.get("created_at")
    return {
        "webhook_id": row["webhook_id"],
        "url": row["url"],
        "events": list(row["events"]),
        "status": row["status"],
        "description": row.get("description") or "",
        "created_at": isoformat(created),
    }
