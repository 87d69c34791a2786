"""Merchant authentication: HS256 JWT bearer tokens (mint and verify). Pure: no IO.

A token names its merchant in the ``merchant_id`` claim (``sub`` carries the same
value), must carry ``exp``, ``iss`` = ``settings.jwt_issuer`` and ``aud`` =
``settings.jwt_audience``; a ``scope`` containing ``admin`` marks an admin token.
The algorithm is pinned to HS256, so ``alg: none`` and algorithm-confusion tokens fail.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

import jwt

from domain.errors import RequestError
from ingress.parsing import ID_LIKE
from settings import Settings

ALGORITHM: Final = "HS256"
ADMIN_SCOPE: Final = "admin"
LEEWAY_S: Final = 30
"""Clock skew tolerated on ``exp``/``nbf``/``iat``."""
MAX_TOKEN_CHARS: Final = 4096
REALM: Final = "paystream"


class AuthError(RequestError):
    """The request is not authenticated (HTTP 401, ``authentication_error``).

    ``challenge`` is the ``WWW-Authenticate`` header value (RFC 6750).
    """

    status = 401
    type = "authentication_error"

    def __init__(self, code: str, message: str, *, token_present: bool = True) -> None:
        super().__init__(code, message, None)
        error = ', error="invalid_token"' if token_present else ""
        self.challenge = f'Bearer realm="{REALM}"{error}'


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the merchant of the token, and whether it is an admin token."""

    merchant_id: str
    admin: bool = False


def _key(settings: Settings) -> bytes:
    return settings.jwt_secret.reveal().encode("utf-8")


def mint_token(
    settings: Settings,
    merchant_id: str,
    admin: bool = False,
    ttl_s: int = 3600,
    *,
    now: int | None = None,
) -> str:
    """Issue an HS256 token for ``merchant_id`` valid for ``ttl_s`` seconds from ``now``."""
    if not ID_LIKE.fullmatch(merchant_id):
        raise ValueError("merchant_id must be 1-64 letters, digits, '_', '.', ':' or '-'")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": merchant_id,
        "merchant_id": merchant_id,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_hex(8),
    }
    if admin:
        claims["scope"] = ADMIN_SCOPE
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def _scopes(raw: object) -> set[str]:
    if isinstance(raw, str):
        return set(raw.split())
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return set(raw)
    raise AuthError("invalid_token", "the bearer token has a malformed scope")


def verify_token(settings: Settings, token: str) -> Principal:
    """Check a token's signature and claims; return its :class:`Principal` or raise AuthError."""
    invalid = AuthError("invalid_token", "the bearer token is invalid")
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise invalid
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise invalid
        claims = jwt.decode(
            token,
            _key(settings),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iss", "aud"], "verify_sub": True},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token_expired", "the bearer token has expired") from None
    except jwt.InvalidTokenError:
        raise invalid from None
    merchant_id = claims.get("merchant_id", claims.get("sub"))
    subject = claims.get("sub")
    if not isinstance(merchant_id, str) or not ID_LIKE.fullmatch(merchant_id):
        raise invalid
    if subject is not None and subject != merchant_id:
        raise invalid
    admin = ADMIN_SCOPE in _scopes(claims["scope"]) if "scope" in claims else False
    return Principal(merchant_id=merchant_id, admin=admin)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or AuthError."""
    if not authorization:
        raise AuthError(
            "missing_token",
            "send an API token in the Authorization header: 'Bearer <token>'",
            token_present=False,
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(
            "invalid_authorization", "the Authorization header must be 'Bearer <token>'"
        )
    return token.strip()


def authenticate(settings: Settings, authorization: str | None) -> Principal:
    """Authenticate an ``Authorization`` header value."""
    return verify_token(settings, bearer_token(authorization))
