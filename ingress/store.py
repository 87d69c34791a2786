"""Reading payments for the API: PostgreSQL first, then the Redis status cache.

PostgreSQL (table ``payments``, filled by the worker's sink) is the source of truth.
Right after ``POST /api/v1/payments`` the row may not exist yet, so the ingress also
writes the created view to Redis under ``paystream:payment:<payment_id>`` (JSON, with
``merchant_id``) and a GET falls back to it when there is no row.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any, Final

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from domain.views import payment_view
from ingress.errors import IngressError
from settings import Settings

log = logging.getLogger("paystream.ingress.store")

CACHE_PREFIX: Final = "paystream:payment:"
CACHE_GRACE_S: Final = 86_400
"""The cache outlives a payment's expiry by a day; by then the sink has written the row."""
QUERY_TIMEOUT_S: Final = 2.0

_SELECT_PAYMENT: Final = """
SELECT payment_id, merchant_id, user_id, status, amount_paisa, fees_paisa, currency,
       payment_method, description, metadata, provider, external_txn_id, rrn, approval_code,
       failure_code, failure_message, created_at, expires_at, processed_at
FROM payments WHERE payment_id = $1
"""


class StoreUnavailableError(IngressError):
    """PostgreSQL or Redis could not answer; the caller answers 503."""


def cache_key(payment_id: str) -> str:
    """The Redis key of a payment's cached view."""
    return CACHE_PREFIX + payment_id


def cache_ttl_s(settings: Settings) -> int:
    """How long a cached view lives: the payment's expiry plus a day."""
    return settings.payment_expiry_s + CACHE_GRACE_S


async def _init_connection(conn: asyncpg.Connection) -> None:
    for pg_type in ("json", "jsonb"):
        await conn.set_type_codec(
            pg_type, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


def build_pool_kwargs(settings: Settings) -> dict[str, Any]:
    """Arguments for ``asyncpg.create_pool`` (``min_size=0``: creating the pool does no IO)."""
    return {
        "dsn": settings.database_dsn,
        "min_size": 0,
        "max_size": settings.db_max_open_conns,
        "ssl": settings.db_ssl_mode,
        "timeout": QUERY_TIMEOUT_S,
        "command_timeout": QUERY_TIMEOUT_S,
        "init": _init_connection,
    }


def build_redis(settings: Settings) -> aioredis.Redis:
    """A Redis client; constructing it does no IO (it connects on first use)."""
    return aioredis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        password=settings.redis_password.reveal() or None,
        socket_timeout=QUERY_TIMEOUT_S,
        socket_connect_timeout=QUERY_TIMEOUT_S,
        health_check_interval=30,
    )


class PaymentStore:
    """Payment reads (PostgreSQL, then cache) and cache writes; every call is time-bounded."""

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, cache_ttl_s: int) -> None:
        self._pool = pool
        self._redis = redis
        self._ttl = cache_ttl_s

    async def find(self, payment_id: str) -> dict[str, Any] | None:
        """The merchant-facing view of a payment, or None if neither store knows it."""
        try:
            row = await asyncio.wait_for(
                self._pool.fetchrow(_SELECT_PAYMENT, payment_id), QUERY_TIMEOUT_S
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(f"postgres: {type(exc).__name__}") from exc
        if row is not None:
            return payment_view(dict(row))
        return await self.cached(payment_id)

    async def cached(self, payment_id: str) -> dict[str, Any] | None:
        """The view cached at creation, or None."""
        try:
            raw = await asyncio.wait_for(self._redis.get(cache_key(payment_id)), QUERY_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(f"redis: {type(exc).__name__}") from exc
        if raw is None:
            return None
        try:
            view = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.error("unreadable cached payment", extra={"payment_id": payment_id})
            return None
        return view if isinstance(view, dict) else None

    async def cache_created(self, view: Mapping[str, Any]) -> bool:
        """Cache a just-created payment's view; False (logged) if Redis did not take it.

        The payment is already durable in Kafka, so a cache failure must not fail the
        request: the GET will answer from PostgreSQL once the sink has written the row.
        """
        payment_id = view["payment_id"]
        try:
            await asyncio.wait_for(
                self._redis.set(cache_key(payment_id), orjson.dumps(dict(view)), ex=self._ttl),
                QUERY_TIMEOUT_S,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "payment view not cached",
                extra={"payment_id": payment_id, "error": type(exc).__name__},
            )
            return False
        return True

    async def ping_postgres(self) -> None:
        """Readiness: ``SELECT 1`` answers."""
        await self._pool.fetchval("SELECT 1", timeout=QUERY_TIMEOUT_S)

    async def ping_redis(self) -> None:
        """Readiness: Redis answers PING."""
        await self._redis.ping()
