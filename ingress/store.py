"""Reading payments for the API: PostgreSQL first, then the Redis status cache.

PostgreSQL (table ``payments``, filled by the worker's sink) is the source of truth.
Right after ``POST /api/v1/payments`` the row may not exist yet, so the ingress also
writes the created view to Redis under ``paystream:payment:<payment_id>`` (JSON, with
``merchant_id``) and a GET falls back to it when there is no row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from domain.events import PaymentRequested
from domain.lifecycle import Operation, Outcome
from domain.processing import QUEUE_UNAVAILABLE
from domain.views import payment_view
from ingress.errors import IngressError
from settings import Settings
from sinks import payments
from sinks.db import pool_kwargs

log = logging.getLogger("paystream.ingress.store")

CACHE_PREFIX: Final = "paystream:payment:"
CACHE_GRACE_S: Final = 86_400
"""The cache outlives a payment's expiry by a day; by then the sink has written the row."""
QUERY_TIMEOUT_S: Final = 2.0

_SELECT_PAYMENT: Final = """
SELECT payment_id, merchant_id, user_id, status, amount_paisa, fees_paisa, currency,
       payment_method, description, metadata, provider, external_txn_id, rrn, approval_code,
       failure_code, failure_message, created_at, expires_at, processed_at, refunded_paisa
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


def build_pool_kwargs(settings: Settings) -> dict[str, Any]:
    """Arguments for ``asyncpg.create_pool`` (``min_size=0``: creating the pool does no IO)."""
    return pool_kwargs(settings)


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

    @property
    def pool(self) -> asyncpg.Pool:
        """The PostgreSQL pool, for handlers that run their own statements."""
        return self._pool

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

    async def create_pending(
        self, event: PaymentRequested, now: datetime, pii: Mapping[str, str] | None = None
    ) -> None:
        """Store the accepted payment as PENDING with its status event (the outbox)."""
        try:
            async with self._pool.acquire(timeout=QUERY_TIMEOUT_S) as conn:
                await payments.create_pending(conn, event, now, pii)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(f"postgres: {type(exc).__name__}") from exc

    async def mark_not_queued(self, payment_id: str, now: datetime) -> None:
        """An accepted payment could not be queued: FAILED, nothing was sent (best effort)."""
        try:
            async with self._pool.acquire(timeout=QUERY_TIMEOUT_S) as conn:
                await payments.transition(
                    conn,
                    payment_id,
                    Operation.SUBMIT,
                    Outcome.DECLINED,
                    now=now,
                    changes={
                        "processed_at": now,
                        "failure_code": QUEUE_UNAVAILABLE,
                        "failure_message": "The payment could not be queued; nothing was charged.",
                    },
                )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            log.error(
                "payment left PENDING after a failed enqueue",
                extra={"payment_id": payment_id, "error": type(exc).__name__},
            )

    async def ping_postgres(self) -> None:
        """Readiness: ``SELECT 1`` answers."""
        await self._pool.fetchval("SELECT 1", timeout=QUERY_TIMEOUT_S)

    async def ping_redis(self) -> None:
        """Readiness: Redis answers PING."""
        await self._redis.ping()
