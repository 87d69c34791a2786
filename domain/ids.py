"""Identifiers: unguessable, prefixed, and sortable by creation time.

A payment id is ``PAY_`` + 10 Crockford base32 characters of milliseconds since
the epoch + 16 characters (80 bits) from :mod:`secrets`. The time prefix makes ids
sort by creation (cursor pagination); the random part makes them unguessable.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Final

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_NAMESPACE: Final = uuid.UUID("6f1b1c8e-3a55-4c55-9d2e-7a0b8f6a1c01")


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """Return ``<prefix>_`` + a time-sortable, unguessable 26-character suffix."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}_{_base32(millis, 10)}{_base32(secrets.randbits(80), 16)}"


def new_payment_id(now_ms: int | None = None) -> str:
    """A new payment id such as ``PAY_01JD3Q...``."""
    return new_id("PAY", now_ms)


def new_request_id() -> str:
    """A request id for logs and error bodies (``req_...``)."""
    return new_id("req")


def event_id(object_id: str, sequence: int) -> str:
    """The stable id of the ``sequence``-th event of an object.

    Derived, not random, so that a redelivered status change produces the same
    event id and receivers (and our webhook sink) can deduplicate on it.
    """
    return "evt_" + uuid.uuid5(_NAMESPACE, f"{object_id}:{sequence}").hex


def attempt_idempotency_key(payment_id: str, attempt_no: int) -> str:
    """The idempotency key sent to a provider for one attempt of one payment."""
    return f"{payment_id}-a{attempt_no}"


def is_payment_id(value: str) -> bool:
    """True if ``value`` has the shape of a payment id (cheap check before a lookup)."""
    return len(value) == 30 and value.startswith("PAY_") and all(c in _CROCKFORD for c in value[4:])
