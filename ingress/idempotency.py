"""Idempotency-Key: the pure parts (no IO) and the per-route policy.

Semantics follow the IETF draft "The Idempotency-Key HTTP Header Field" and Stripe:
a key is scoped to its merchant; the first request with a key runs and its response
(2xx, or a 4xx that reflects the request) is stored; a retry with the same key and the
same request gets that response again, byte for byte, with ``Idempotent-Replayed: true``;
the same key while the first request runs answers 409 ``idempotency_key_in_use``; the
same key with another body or path answers 422 ``idempotency_key_reused``.

A route opts in to a REQUIRED key with :func:`idempotent`::

    @idempotent(required=True)
    async def create_refund(request: web.Request) -> web.Response: ...

Every other ``POST`` under ``/api/v1`` takes the header optionally.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from domain.errors import RequestError

HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
MAX_KEY_CHARS: Final = 255
REPLAYED_HEADERS: Final = ("Content-Type", "Location")
"""Response headers stored with the body and sent again on a replay."""
_POLICY_ATTR: Final = "__paystream_idempotency__"
_NOT_STORED: Final = frozenset({408, 409, 423, 425, 429})
"""4xx statuses that describe the moment, not the request: never stored, never replayed."""

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Policy:
    """How a route treats ``Idempotency-Key``: ``required`` answers 400 when it is missing."""

    required: bool = False


OPTIONAL: Final = Policy(required=False)


def idempotent(*, required: bool = True) -> Callable[[F], F]:
    """Mark a handler's Idempotency-Key policy (the middleware reads it from the route)."""

    def mark(handler: F) -> F:
        setattr(handler, _POLICY_ATTR, Policy(required=required))
        return handler

    return mark


def policy_of(handler: object) -> Policy:
    """The policy set by :func:`idempotent` on ``handler``, else optional."""
    found = getattr(handler, _POLICY_ATTR, None)
    return found if isinstance(found, Policy) else OPTIONAL


class IdempotencyError(RequestError):
    """A request the Idempotency-Key rules refuse (``idempotency_error``)."""

    type = "idempotency_error"
    headers: Mapping[str, str] = {}


class KeyInUseError(IdempotencyError):
    """409: the first request with this key has not finished; retry in a moment."""

    status = 409
    headers: Mapping[str, str] = {"Retry-After": "1"}

    def __init__(self) -> None:
        super().__init__(
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still being processed; retry shortly",
            HEADER,
        )


class KeyReusedError(IdempotencyError):
    """422: the key was used for a different request (another body or path)."""

    status = 422

    def __init__(self) -> None:
        super().__init__(
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request; "
            "use a new key for a new request",
            HEADER,
        )


def _unquote_sf_string(value: str) -> str | None:
    """The content of an RFC 8941 sf-string (``"abc"``), or None if malformed."""
    out: list[str] = []
    chars = iter(value[1:-1])
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped not in ('"', "\\"):
                return None
            out.append(escaped)
        elif char == '"':
            return None
        else:
            out.append(char)
    return "".join(out)


def parse_key(values: list[str], *, required: bool) -> str | None:
    """The Idempotency-Key of a request from its header values, or None when absent.

    Accepts a bare token (Stripe) or a quoted sf-string (the IETF draft): ``abc`` and
    ``"abc"`` are the same key. Raises a 400 RequestError when the key is missing but
    ``required`` (``idempotency_key_missing``), sent twice, empty, longer than 255
    characters or not printable ASCII (``idempotency_key_invalid``).
    """
    if not values:
        if required:
            raise RequestError(
                "idempotency_key_missing",
                f"this request needs an {HEADER} header (a unique value per operation, "
                "e.g. a UUID v4) so that it can be retried safely",
                HEADER,
            )
        return None
    invalid = RequestError(
        "idempotency_key_invalid",
        f"the {HEADER} header must be one value of 1 to {MAX_KEY_CHARS} printable ASCII "
        'characters (optionally quoted: "...")',
        HEADER,
    )
    if len(values) != 1:
        raise invalid
    raw = values[0].strip()
    key: str | None = raw
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        key = _unquote_sf_string(raw)
    if not key or len(key) > MAX_KEY_CHARS or not all(" " <= c <= "~" for c in key):
        raise invalid
    return key


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: not JSON


def canonical_body(body: bytes) -> bytes:
    """The body in canonical form: JSON with sorted keys and no whitespace, else the bytes.

    Key order and insignificant whitespace do not change the canonical form; numbers keep
    their JSON type (``100`` and ``100.0`` differ). A body that is not strict JSON
    (malformed, duplicate keys, NaN) is taken byte for byte, marked as such.
    """
    try:
        parsed = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return b"raw:" + body
    text = json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return b"json:" + text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape ("\ud800") has no UTF-8 form
        return b"raw:" + body


def fingerprint(method: str, path: str, body: bytes, key: bytes = b"") -> str:
    """Hex HMAC-SHA256 of the request: method, path and canonical body (see canonical_body).

    Keyed, never a plain hash: a body can hold a PAN and CVV (tokenize), and an
    unkeyed digest of low-entropy card data can be brute-forced (PCI DSS 3.5.1 wants
    keyed hashes). Production passes :func:`fingerprint_key` of the configured secret.
    """
    digest = hmac.new(key, digestmod=hashlib.sha256)
    for part in (method.upper().encode("ascii"), path.encode("utf-8"), canonical_body(body)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def fingerprint_key(secret: bytes) -> bytes:
    """The request-fingerprint key derived from a configured secret (HMAC as a KDF)."""
    return hmac.new(secret, b"paystream/idempotency-fingerprint/v1", hashlib.sha256).digest()


def is_storable(status: int) -> bool:
    """Whether a response is final for its key: 2xx, and 4xx except transient ones.

    5xx (and 503) are never stored: the key is released so that the client may retry.
    """
    return 200 <= status < 300 or (400 <= status < 500 and status not in _NOT_STORED)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response kept for a key: replayed with the same status, headers and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes
