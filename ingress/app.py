"""The ingress's composition root: :func:`create_app` wires settings, clients and routes.

Building the app does no IO. Clients (Kafka producer, PostgreSQL pool, Redis) are
created when the app starts (``cleanup_ctx``) and closed when it stops, unless the
caller passes its own in :class:`Resources`, which the app then uses but never closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaProducer
from redis.exceptions import RedisError

from ingress.auth import authenticate
from ingress.context import PRINCIPAL, PRODUCER, SETTINGS, STORE, TOPICS
from ingress.errors import Handler, observe_middleware
from ingress.guards import idempotency_middleware, install_guards, rate_limit_middleware
from ingress.live_status import add_live_status_routes
from ingress.openapi import add_openapi_routes, is_public
from ingress.payment_methods import add_payment_method_routes
from ingress.payment_ops import add_payment_operation_routes
from ingress.producer import PaymentProducer
from ingress.routes import add_routes
from ingress.store import PaymentStore, build_pool_kwargs, build_redis, cache_ttl_s
from ingress.webhooks import add_webhook_routes
from schemas.topics import build_topics
from settings import Settings

log = logging.getLogger("paystream.ingress")

API_PREFIX: Final = "/api/"
CLOSE_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class Resources:
    """Clients owned by the caller (tests, another composition root).

    A ``producer`` must already be started. Any client left ``None`` is created by the
    app at startup and closed at cleanup.
    """

    producer: AIOKafkaProducer | None = None
    pool: asyncpg.Pool | None = None
    redis: aioredis.Redis | None = None


RESOURCES: Final = web.AppKey("resources", Resources)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every matched route under ``/api/`` needs a valid merchant token."""
    match = request.match_info
    if match.http_exception is None and request.path.startswith(API_PREFIX):
        if is_public(match.handler):  # the API reference: /api/v1/openapi.json, /api/v1/docs
            return await handler(request)
        authorization = request.headers.get("Authorization")
        request[PRINCIPAL] = authenticate(request.app[SETTINGS], authorization)
    return await handler(request)


async def _warm_up(store: PaymentStore) -> None:
    """Open the first connections now so the first request does not pay for them."""
    for name, probe in (("postgres", store.ping_postgres), ("redis", store.ping_redis)):
        try:
            await asyncio.wait_for(probe(), 3.0)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, RedisError, OSError, TimeoutError):
            log.warning("dependency not reachable at startup", extra={"dependency": name})


async def _clients(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    given = app[RESOURCES]
    redis = given.redis if given.redis is not None else build_redis(settings)
    pool = given.pool
    if pool is None:
        pool = await asyncpg.create_pool(**build_pool_kwargs(settings))  # min_size=0: no connect
    producer = PaymentProducer(settings, given.producer)
    store = PaymentStore(pool, redis, cache_ttl_s(settings))
    app[PRODUCER] = producer
    app[STORE] = store
    install_guards(app, pool, redis)
    try:
        await producer.start()
        await _warm_up(store)
        yield
    finally:
        await producer.stop(CLOSE_TIMEOUT_S)
        if given.pool is None:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
            except TimeoutError:
                pool.terminate()
        if given.redis is None:
            await redis.aclose()
        log.info("ingress clients closed")


def create_app(settings: Settings, resources: Resources | None = None) -> web.Application:
    """Build the ingress application; no IO happens until it is started."""
    app = web.Application(
        middlewares=[
            observe_middleware,
            auth_middleware,
            rate_limit_middleware,
            idempotency_middleware,
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[TOPICS] = build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks)
    app[RESOURCES] = resources if resources is not None else Resources()
    app.cleanup_ctx.append(_clients)
    add_routes(app, with_metrics=settings.enable_metrics)
    add_payment_method_routes(app)
    add_payment_operation_routes(app)
    add_webhook_routes(app)
    add_live_status_routes(app)
    add_openapi_routes(app)
    return app
