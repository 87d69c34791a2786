"""Idempotency-Key records: PostgreSQL (source of truth) with a Redis fast path.

PostgreSQL table ``idempotency_keys`` (migration 003), primary key (merchant_id, key):

* **claim**: one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement. It inserts an
  ``in_flight`` row, or takes over a row that has expired (``expires_at`` passed: the
  key is new again) or a stale claim (``in_flight`` for more than ``STALE_CLAIM_S`` with
  the same fingerprint: its process died without releasing it). Otherwise it changes
  nothing and the caller reads the row: completed (replay or 422) or in flight (409).
  Concurrent claims serialise on the row, so exactly one wins.
* **complete**: the claim's owner stores the response (status, replayed headers, body).
* **release**: the owner deletes its claim (5xx, crash, cancellation).

Redis holds completed responses under ``paystream:idem:<len>:<merchant>:<key>`` until
the row's ``expires_at``. It is only a cache: every Redis error is logged (throttled)
and counted, and the request goes on against PostgreSQL. In-flight locking is
PostgreSQL's alone (one source of truth, no Redis/PostgreSQL disagreement).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Final

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from domain.vault_crypto import KeyRing, VaultCryptoError, record_aad
from ingress.degrade import Breaker, LogThrottle
from ingress.errors import IngressError
from ingress.idempotency import REPLAYED_HEADERS, StoredResponse
from sinks.metrics import idempotency_cache_errors_total

log = logging.getLogger("paystream.ingress.idempotency")

CACHE_PREFIX: Final = "paystream:idem:"
STALE_CLAIM_S: Final = 60
"""An in-flight claim older than this may be taken over by a retry with the same request.

Creating a payment is bounded well below it (Kafka send ~10 s, PostgreSQL and Redis 2 s);
a claim this old belongs to a process that died (SIGKILL, OOM) before releasing it.
"""
PG_TIMEOUT_S: Final = 2.0
REDIS_TIMEOUT_S: Final = 0.5
PURGE_EVERY_S: Final = 300.0
PURGE_BATCH: Final = 1000

_CLAIM: Final = """
INSERT INTO idempotency_keys AS k
    (merchant_id, key, fingerprint, state, owner, created_at, locked_at, expires_at)
VALUES ($1, $2, $3, 'in_flight', $4, now(), now(), now() + make_interval(secs => $5))
ON CONFLICT (merchant_id, key) DO UPDATE SET
    fingerprint = EXCLUDED.fingerprint, state = 'in_flight', owner = EXCLUDED.owner,
    response_status = NULL, response_headers = NULL, response_body = NULL,
    created_at = EXCLUDED.created_at, locked_at = EXCLUDED.locked_at,
    completed_at = NULL, expires_at = EXCLUDED.expires_at
WHERE k.expires_at <= now()
   OR (k.state = 'in_flight' AND k.fingerprint = EXCLUDED.fingerprint
       AND k.locked_at <= now() - make_interval(secs => $6))
RETURNING owner
"""
_READ: Final = """
SELECT fingerprint, state, response_status, response_headers::text AS response_headers,
       response_body,
       expires_at <= now() AS expired,
       GREATEST(1, (extract(epoch FROM expires_at - now()) * 1000)::bigint) AS ttl_ms
FROM idempotency_keys WHERE merchant_id = $1 AND key = $2
"""
_COMPLETE: Final = """
UPDATE idempotency_keys
SET state = 'completed', response_status = $4, response_headers = $5::text::jsonb,
    response_body = $6, completed_at = now()
WHERE merchant_id = $1 AND key = $2 AND owner = $3 AND state = 'in_flight'
RETURNING GREATEST(1, (extract(epoch FROM expires_at - now()) * 1000)::bigint) AS ttl_ms
"""
_RELEASE: Final = """
DELETE FROM idempotency_keys
WHERE merchant_id = $1 AND key = $2 AND owner = $3 AND state = 'in_flight'
"""
_PURGE: Final = """
DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT $1))
"""
_PG_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_REDIS_ERRORS: Final = (RedisError, OSError, TimeoutError)


class IdempotencyStoreUnavailableError(IngressError):
    """PostgreSQL could not claim or read a key: the request cannot be made safe (503)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A key this request now holds (``owner`` proves it on complete/release)."""

    merchant_id: str
    key: str
    owner: str


@dataclass(frozen=True, slots=True)
class Existing:
    """A key held by another request: ``response`` is None while that one is in flight."""

    fingerprint: str
    response: StoredResponse | None
    ttl_ms: int = 0


def cache_key(merchant_id: str, key: str) -> str:
    """Redis key of a completed response (length prefix: no merchant/key ambiguity)."""
    return f"{CACHE_PREFIX}{len(merchant_id)}:{merchant_id}:{key}"


def _encode_cached(fingerprint: str, response: StoredResponse) -> bytes:
    return orjson.dumps(
        {
            "f": fingerprint,
            "s": response.status,
            "h": dict(response.headers),
            "b": base64.b64encode(response.body).decode("ascii"),
        }
    )


def _decode_cached(raw: bytes) -> Existing | None:
    try:
        data = orjson.loads(raw)
        response = StoredResponse(
            status=int(data["s"]),
            headers={str(k): str(v) for k, v in data["h"].items() if k in REPLAYED_HEADERS},
            body=base64.b64decode(data["b"], validate=True),
        )
        return Existing(fingerprint=str(data["f"]), response=response)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def _headers_of(text: str | None) -> dict[str, str]:
    value = orjson.loads(text) if text else {}
    return {str(k): str(v) for k, v in value.items() if k in REPLAYED_HEADERS}


class IdempotencyStore:
    """Claims, completes and releases keys; reads them back through the Redis cache."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        ttl_s: int,
        breaker: Breaker | None = None,
        keyring: KeyRing | None = None,
    ) -> None:
        self._keyring = keyring
        self._pool = pool
        self._redis = redis
        self._breaker = breaker if breaker is not None else Breaker()
        self._ttl_s = ttl_s
        self._redis_log = LogThrottle()
        self._last_purge = time.monotonic()
        self._purging: asyncio.Task[None] | None = None

    # Stored bodies are encrypted: a response can hold a secret shown once -----------

    def _seal(self, merchant_id: str, key: str, response: StoredResponse) -> StoredResponse:
        """The response with its body encrypted (AES-256-GCM, bound to merchant and key)."""
        if self._keyring is None:
            return response
        sealed = self._keyring.encrypt(response.body, record_aad("idempotency", merchant_id, key))
        return StoredResponse(response.status, response.headers, sealed.encode("ascii"))

    def _open(self, merchant_id: str, key: str, response: StoredResponse) -> StoredResponse:
        if self._keyring is None:
            return response
        try:
            body = self._keyring.decrypt(
                response.body.decode("ascii"), record_aad("idempotency", merchant_id, key)
            )
        except (VaultCryptoError, UnicodeDecodeError) as exc:
            raise IdempotencyStoreUnavailableError("stored response cannot be opened") from exc
        return StoredResponse(response.status, response.headers, body)

    # Redis fast path (best effort) -------------------------------------------------

    def _redis_failed(self, operation: str, exc: BaseException) -> None:
        self._breaker.failed()
        idempotency_cache_errors_total.inc()
        if self._redis_log.allow():
            log.warning(
                "idempotency cache unavailable; using PostgreSQL",
                extra={"operation": operation, "error": type(exc).__name__},
            )

    async def cached(self, merchant_id: str, key: str) -> Existing | None:
        """A completed response from Redis, or None (miss, or Redis unavailable)."""
        if not self._breaker.closed():
            return None
        try:
            raw = await asyncio.wait_for(
                self._redis.get(cache_key(merchant_id, key)), REDIS_TIMEOUT_S
            )
        except _REDIS_ERRORS as exc:
            self._redis_failed("get", exc)
            return None
        found = _decode_cached(raw) if raw is not None else None
        if found is None or found.response is None:
            return found
        return Existing(found.fingerprint, self._open(merchant_id, key, found.response))

    async def _cache(
        self, merchant_id: str, key: str, fingerprint: str, response: StoredResponse, ttl_ms: int
    ) -> None:
        if not self._breaker.closed():
            return
        try:
            await asyncio.wait_for(
                self._redis.set(
                    cache_key(merchant_id, key),
                    _encode_cached(fingerprint, self._seal(merchant_id, key, response)),
                    px=max(1, ttl_ms),
                ),
                REDIS_TIMEOUT_S,
            )
        except _REDIS_ERRORS as exc:
            self._redis_failed("set", exc)

    # PostgreSQL (source of truth) ---------------------------------------------------

    async def claim(self, merchant_id: str, key: str, fingerprint: str) -> Claim | None:
        """Take the key for this request; None if another request holds or completed it."""
        owner = secrets.token_hex(16)
        try:
            taken = await asyncio.wait_for(
                self._pool.fetchval(
                    _CLAIM, merchant_id, key, fingerprint, owner, self._ttl_s, STALE_CLAIM_S
                ),
                PG_TIMEOUT_S,
            )
        except _PG_ERRORS as exc:
            raise IdempotencyStoreUnavailableError(f"postgres: {type(exc).__name__}") from exc
        self._maybe_purge()
        return Claim(merchant_id, key, owner) if taken == owner else None

    async def existing(self, merchant_id: str, key: str) -> Existing | None:
        """The row holding ``key`` (None if it vanished or expired meanwhile: claim again)."""
        try:
            row = await asyncio.wait_for(self._pool.fetchrow(_READ, merchant_id, key), PG_TIMEOUT_S)
        except _PG_ERRORS as exc:
            raise IdempotencyStoreUnavailableError(f"postgres: {type(exc).__name__}") from exc
        if row is None or row["expired"]:
            return None
        response = None
        if row["state"] == "completed":
            response = self._open(
                merchant_id,
                key,
                StoredResponse(
                    status=row["response_status"],
                    headers=_headers_of(row["response_headers"]),
                    body=bytes(row["response_body"]),
                ),
            )
            await self._cache(merchant_id, key, row["fingerprint"], response, row["ttl_ms"])
        return Existing(row["fingerprint"], response, row["ttl_ms"])

    async def complete(self, claim: Claim, fingerprint: str, response: StoredResponse) -> bool:
        """Store the final response of a claim (PostgreSQL, then Redis); True if in PostgreSQL.

        If PostgreSQL fails here the response is still cached in Redis, so retries replay
        it; the row stays in flight (retries that miss the cache get 409) until it is stale.
        """
        try:
            ttl_ms = await asyncio.wait_for(
                self._pool.fetchval(
                    _COMPLETE,
                    claim.merchant_id,
                    claim.key,
                    claim.owner,
                    response.status,
                    orjson.dumps(dict(response.headers)).decode("utf-8"),
                    self._seal(claim.merchant_id, claim.key, response).body,
                ),
                PG_TIMEOUT_S,
            )
        except _PG_ERRORS as exc:
            log.error(
                "idempotent response not stored in postgres; cached in redis only",
                extra={"merchant_id": claim.merchant_id, "error": type(exc).__name__},
            )
            await self._cache(
                claim.merchant_id, claim.key, fingerprint, response, self._ttl_s * 1000
            )
            return False
        if ttl_ms is None:  # our claim went stale and another request took it over
            log.warning(
                "idempotency claim lost before completion (taken over as stale)",
                extra={"merchant_id": claim.merchant_id},
            )
            return False
        await self._cache(claim.merchant_id, claim.key, fingerprint, response, int(ttl_ms))
        return True

    async def release(self, claim: Claim) -> None:
        """Give a claim up (the request failed with 5xx, raised or was cancelled)."""
        try:
            await asyncio.wait_for(
                self._pool.execute(_RELEASE, claim.merchant_id, claim.key, claim.owner),
                PG_TIMEOUT_S,
            )
        except _PG_ERRORS as exc:
            log.error(
                "idempotency claim not released; a retry may take it over once stale",
                extra={
                    "merchant_id": claim.merchant_id,
                    "error": type(exc).__name__,
                    "stale_after_s": STALE_CLAIM_S,
                },
            )

    def _maybe_purge(self) -> None:
        """Now and then, delete a batch of expired keys in the background."""
        now = time.monotonic()
        if now - self._last_purge < PURGE_EVERY_S or (
            self._purging is not None and not self._purging.done()
        ):
            return
        self._last_purge = now
        self._purging = asyncio.get_running_loop().create_task(self._purge())

    async def _purge(self) -> None:
        try:
            await asyncio.wait_for(self._pool.execute(_PURGE, PURGE_BATCH), PG_TIMEOUT_S * 5)
        except _PG_ERRORS as exc:
            log.warning("expired idempotency keys not purged", extra={"error": type(exc).__name__})
