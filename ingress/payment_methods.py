"""Payment methods: tokenize a card into the vault, list a user's, delete one.

Routes (merchant token required; a token or user of another merchant is invisible):

* ``POST /api/v1/payment-methods/tokenize``: ``201`` with the new payment method, or
  ``200`` with the existing one when this merchant's user already has this card
  (same fingerprint; its expiry is updated to the one sent).
* ``GET /api/v1/users/{user_id}/payment-methods``: ``{"data": [...], "has_more": bool}``,
  newest first, deleted ones left out.
* ``DELETE /api/v1/payment-methods/{token}``: ``{"token", "deleted": true}``; the card
  data is wiped. An unknown, foreign or already deleted token is ``404 resource_missing``.

Card data handling: the body is decoded, the card validated (:mod:`domain.cards`)
and sealed (:mod:`sinks.vault`); the CVV is checked and dropped; no error message or
log line carries the PAN, the CVV or the holder name (the access log has ids only).
The client's ``display_name`` is ignored: the vault derives it (``"Visa •••• 1111"``).
The holder name is optional and stored encrypted (PII); it is never returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import asyncpg
from aiohttp import web

from domain.cards import Card, validate_card
from domain.errors import RequestError
from domain.vault_crypto import is_token
from domain.views import isoformat
from ingress.auth import Principal
from ingress.context import PRINCIPAL, SETTINGS
from ingress.errors import (
    LOG_FIELDS,
    ApiError,
    ServiceUnavailableError,
    dumps,
    not_found,
    request_id_of,
)
from ingress.parsing import contains_card_number, decode_json_object, parse_user_id
from ingress.store import build_pool_kwargs
from sinks.vault import Vault, VaultUnavailableError, keyring_from_settings

log = logging.getLogger("paystream.ingress.payment_methods")

TOKENIZE_PATH: Final = "/api/v1/payment-methods/tokenize"
PAYMENT_METHOD_PATH: Final = "/api/v1/payment-methods/{token}"
USER_PAYMENT_METHODS_PATH: Final = "/api/v1/users/{user_id}/payment-methods"
VAULT: Final = web.AppKey("vault", Vault)
VAULT_POOL_MAX: Final = 5
"""The vault's own small PostgreSQL pool (kept apart from the payments pool)."""
CLOSE_TIMEOUT_S: Final = 10.0
MAX_HOLDER_NAME_CHARS: Final = 100

TOKENIZE_FIELDS: Final = frozenset({"user_id", "type", "details", "display_name"})
"""Top-level fields of a tokenize body; ``display_name`` is accepted and ignored."""
CARD_FIELDS: Final = frozenset({"card_number", "expiry_month", "expiry_year", "cvv", "holder_name"})
SUPPORTED_TYPES: Final = frozenset({"CARD"})
"""Payment-method types the vault tokenizes today (UPI VPAs may follow)."""


@dataclass(frozen=True, slots=True)
class TokenizeCard:
    """A validated tokenize request: the card (no CVV) and the optional holder name."""

    user_id: str
    card: Card
    holder_name: str | None = None

    def __repr__(self) -> str:
        return f"TokenizeCard(user_id={self.user_id!r}, card={self.card!r}, holder_name=...)"


def _safe_key(key: str, prefix: str = "") -> str:
    """A submitted key as it may appear in an error: never a card number, bounded."""
    if contains_card_number(key):
        return prefix.rstrip(".") or "body"
    clean = "".join(c if c.isprintable() else "?" for c in key)[:64]
    return prefix + clean


def _refuse_unknown(body: Mapping[str, Any], allowed: frozenset[str], prefix: str = "") -> None:
    for key in body:
        if key not in allowed:
            shown = _safe_key(key, prefix)
            raise RequestError("parameter_unknown", f"received unknown parameter: {shown}", shown)


def _required(body: Mapping[str, Any], name: str, prefix: str = "") -> Any:
    if body.get(name) is None:
        raise RequestError("parameter_missing", f"{prefix}{name} is required", prefix + name)
    return body[name]


def parse_holder_name(value: object, param: str = "details.holder_name") -> str | None:
    """An optional cardholder name: 1-100 printable characters, never a card number."""
    if value is None:
        return None
    invalid = RequestError(
        "parameter_invalid",
        f"{param} must be a name of 1-{MAX_HOLDER_NAME_CHARS} printable characters",
        param,
    )
    if not isinstance(value, str):
        raise invalid
    name = " ".join(value.split())
    if not name or len(name) > MAX_HOLDER_NAME_CHARS or not name.isprintable():
        raise invalid
    if contains_card_number(name):
        raise RequestError(
            "card_data_not_allowed", f"{param} must not contain a card number", param
        )
    return name


def parse_tokenize(body: Mapping[str, Any], today: date) -> TokenizeCard:
    """Validate a tokenize body (pure). Errors name the field, never echo a value."""
    _refuse_unknown(body, TOKENIZE_FIELDS)
    user_id = parse_user_id(_required(body, "user_id"))
    kind = _required(body, "type")
    if not isinstance(kind, str):
        raise RequestError("parameter_invalid", "type must be a string such as 'CARD'", "type")
    if kind not in SUPPORTED_TYPES:
        raise RequestError(
            "payment_method_type_unsupported",
            "type must be CARD: only cards can be tokenized today",
            "type",
        )
    details = _required(body, "details")
    if not isinstance(details, dict):
        raise RequestError("parameter_invalid", "details must be an object", "details")
    _refuse_unknown(details, CARD_FIELDS, "details.")
    for name in ("card_number", "expiry_month", "expiry_year", "cvv"):
        _required(details, name, "details.")
    card = validate_card(
        details["card_number"],
        details["expiry_month"],
        details["expiry_year"],
        details["cvv"],
        today,
        param_prefix="details.",
    )
    return TokenizeCard(user_id, card, parse_holder_name(details.get("holder_name")))


def payment_method_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored payment method as merchants see it (no BIN, fingerprint or ciphertext)."""
    return {
        "token": row["token"],
        "type": row["type"],
        "user_id": row["user_id"],
        "card": {
            "brand": row["brand"],
            "last4": row["last4"],
            "expiry_month": row["expiry_month"],
            "expiry_year": row["expiry_year"],
            "issuer": row["issuer"],
        },
        "display_name": row["display_name"],
        "created_at": isoformat(row["created_at"]),
    }


def _principal(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if not isinstance(principal, Principal):  # the auth middleware guards every /api/ route
        raise RuntimeError("route reached without authentication")
    return principal


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def _unavailable(request: web.Request, what: str, exc: Exception) -> ServiceUnavailableError:
    log.error(what, extra={"request_id": request_id_of(request), "error": str(exc)})
    return ServiceUnavailableError()


async def tokenize(request: web.Request) -> web.Response:
    """``POST /api/v1/payment-methods/tokenize``: 201 new, 200 already stored."""
    settings = request.app[SETTINGS]
    principal = _principal(request)
    fields = request[LOG_FIELDS]
    fields["merchant_id"] = principal.merchant_id
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise ApiError(
            413,
            "invalid_request_error",
            "request_too_large",
            f"the request body must be at most {settings.max_body_bytes} bytes",
        )
    body = decode_json_object(await request.read(), request.content_type, request.charset)
    command = parse_tokenize(body, datetime.now(UTC).date())
    try:
        row, created = await request.app[VAULT].tokenize(
            principal.merchant_id, command.user_id, command.card, command.holder_name
        )
    except VaultUnavailableError as exc:
        raise _unavailable(request, "payment method not stored", exc) from exc
    fields["payment_method"] = row["token"]
    fields["payment_method_created"] = created
    log.info(
        "payment method tokenized" if created else "payment method already stored",
        extra={
            "request_id": request_id_of(request),
            "merchant_id": principal.merchant_id,
            "payment_method": row["token"],
            "brand": row["brand"],
        },
    )
    return _json(payment_method_view(row), status=201 if created else 200)


async def list_payment_methods(request: web.Request) -> web.Response:
    """``GET /api/v1/users/{user_id}/payment-methods``: the user's live methods, newest first."""
    principal = _principal(request)
    request[LOG_FIELDS]["merchant_id"] = principal.merchant_id
    user_id = parse_user_id(request.match_info["user_id"])
    try:
        rows, has_more = await request.app[VAULT].list_for_user(principal.merchant_id, user_id)
    except VaultUnavailableError as exc:
        raise _unavailable(request, "payment methods not listed", exc) from exc
    return _json({"data": [payment_method_view(r) for r in rows], "has_more": has_more})


async def delete_payment_method(request: web.Request) -> web.Response:
    """``DELETE /api/v1/payment-methods/{token}``: delete it and wipe its card data."""
    principal = _principal(request)
    fields = request[LOG_FIELDS]
    fields["merchant_id"] = principal.merchant_id
    token = request.match_info["token"]
    if not is_token(token):
        raise not_found("token", "payment method")
    fields["payment_method"] = token
    try:
        deleted = await request.app[VAULT].delete(principal.merchant_id, token)
    except VaultUnavailableError as exc:
        raise _unavailable(request, "payment method not deleted", exc) from exc
    if not deleted:
        raise not_found("token", "payment method")
    return _json({"token": token, "deleted": True})


async def _vault_ctx(app: web.Application) -> AsyncIterator[None]:
    """The vault's pool and key ring, for the app's lifetime (a given pool is borrowed)."""
    from ingress.app import RESOURCES  # ingress.app imports this module

    settings = app[SETTINGS]
    given = app[RESOURCES].pool
    pool = given
    if pool is None:
        kwargs = build_pool_kwargs(settings)
        kwargs["max_size"] = min(VAULT_POOL_MAX, settings.db_max_open_conns)
        pool = await asyncpg.create_pool(**kwargs)  # min_size=0: no connection yet
    app[VAULT] = Vault(pool, keyring_from_settings(settings))
    try:
        yield
    finally:
        if given is None:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
            except TimeoutError:
                pool.terminate()


def add_payment_method_routes(app: web.Application) -> None:
    """Register the payment-method routes and the vault's clients on ``app``."""
    keyring_from_settings(app[SETTINGS])  # a bad key configuration fails now, not per request
    app.cleanup_ctx.append(_vault_ctx)
    app.router.add_post(TOKENIZE_PATH, tokenize)
    app.router.add_get(USER_PAYMENT_METHODS_PATH, list_payment_methods, allow_head=False)
    app.router.add_delete(PAYMENT_METHOD_PATH, delete_payment_method)
