"""The merchant API's guards: per-merchant rate limits, then Idempotency-Key.

Both run after authentication (``create_app``: observe -> auth -> rate limit ->
idempotency -> handler), on matched routes under ``/api/v1`` only (never ``/health``,
``/ready``, ``/metrics``). :func:`install_guards` builds their state from the app's
PostgreSQL pool and Redis client when the app starts.

Rate limits (``rate_limit_per_s``, ``rate_limit_burst``): every response of a limited
route carries ``RateLimit-Limit`` (the bucket's capacity) and ``RateLimit-Remaining``;
over the limit the answer is 429 ``rate_limited`` with ``Retry-After``. Redis down:
fail OPEN by default (the limiter protects capacity, it holds no money state; refusing
every payment because a cache is down would turn a Redis outage into a full outage),
counting ``rate_limit_redis_errors_total`` and logging at most once per 10 s;
``rate_limit_fail_open=False`` answers 503 ``service_unavailable`` instead.

Idempotency (ingress/idempotency.py, ingress/idempotency_store.py): every ``POST`` under
``/api/v1`` honours ``Idempotency-Key``; routes marked ``@idempotent(required=True)``
demand it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from domain.errors import RequestError
from ingress.context import PRINCIPAL, SETTINGS
from ingress.degrade import Breaker, LogThrottle
from ingress.errors import (
    LOG_FIELDS,
    ApiError,
    Handler,
    ServiceUnavailableError,
    error_response,
    request_id_of,
)
from ingress.idempotency import (
    HEADER,
    REPLAYED_HEADER,
    REPLAYED_HEADERS,
    KeyInUseError,
    KeyReusedError,
    StoredResponse,
    fingerprint,
    fingerprint_key,
    is_storable,
    parse_key,
    policy_of,
)
from ingress.idempotency_store import (
    Claim,
    Existing,
    IdempotencyStore,
    IdempotencyStoreUnavailableError,
)
from ingress.ratelimit import (
    LIMIT_HEADER,
    Decision,
    RateLimiter,
    RateLimiterUnavailableError,
)
from sinks.metrics import idempotency_requests_total, rate_limit_redis_errors_total
from sinks.vault import keyring_from_settings

log = logging.getLogger("paystream.ingress")

GUARDED_PREFIX: Final = "/api/v1/"
CLAIM_ATTEMPTS: Final = 3
IDEMPOTENCY: Final = web.AppKey("idempotency", IdempotencyStore)
RATE_LIMITER: Final = web.AppKey("rate_limiter", RateLimiter)
FINGERPRINT_KEY: Final = web.AppKey("idempotency_fingerprint_key", bytes)
_RATE_LIMIT_LOG: Final = LogThrottle()


def install_guards(app: web.Application, pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
    """Give the guards their clients (called when the app starts; does no IO)."""
    settings = app[SETTINGS]
    breaker = Breaker()  # one Redis client, one view of whether it answers
    app[IDEMPOTENCY] = IdempotencyStore(
        pool, redis, settings.idempotency_ttl_s, breaker, keyring_from_settings(settings)
    )
    app[FINGERPRINT_KEY] = fingerprint_key(settings.encryption_key.reveal().encode())
    app[RATE_LIMITER] = RateLimiter(
        redis, settings.rate_limit_per_s, settings.rate_limit_burst, breaker
    )


def _guarded(request: web.Request) -> bool:
    """A matched, authenticated route under /api/v1."""
    return (
        request.match_info.http_exception is None
        and request.path.startswith(GUARDED_PREFIX)
        and request.get(PRINCIPAL) is not None
    )


def as_response(request: web.Request, exc: RequestError | ApiError) -> web.Response:
    """An error raised by a handler as the one error response (as observe_middleware does)."""
    request[LOG_FIELDS]["error_code"] = exc.code
    headers: Mapping[str, str] = getattr(exc, "headers", None) or {}
    return error_response(
        exc.status, exc.type, exc.code, exc.message, exc.param, request_id_of(request), headers
    )


# Rate limits -------------------------------------------------------------------------


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One token per request from the merchant's bucket; 429 when it is empty."""
    limiter = request.app.get(RATE_LIMITER)
    if limiter is None or not _guarded(request):
        return await handler(request)
    principal = request[PRINCIPAL]
    decision: Decision | None
    try:
        decision = await limiter.acquire(principal.merchant_id)
    except RateLimiterUnavailableError as exc:
        rate_limit_redis_errors_total.inc()
        fail_open = request.app[SETTINGS].rate_limit_fail_open
        if _RATE_LIMIT_LOG.allow():
            log.warning(
                "rate limiter unavailable; failing " + ("open" if fail_open else "closed"),
                extra={"error": str(exc), "request_id": request_id_of(request)},
            )
        if not fail_open:
            unavailable = ServiceUnavailableError()
            unavailable.headers[LIMIT_HEADER] = str(limiter.burst)
            raise unavailable from exc
        decision = None
    headers = decision.headers() if decision is not None else {LIMIT_HEADER: str(limiter.burst)}
    if decision is not None and not decision.allowed:
        request[LOG_FIELDS]["merchant_id"] = principal.merchant_id
        error = ApiError(
            429,
            "rate_limit_error",
            "rate_limited",
            f"too many requests: at most {limiter.rate_per_s} per second "
            f"(bursts of {limiter.burst}); retry after {decision.retry_after_s} s",
            None,
            headers,
        )
        return as_response(request, error)
    try:
        response = await handler(request)
    except (RequestError, ApiError) as exc:
        response = as_response(request, exc)
    if not response.prepared:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
    return response


# Idempotency -------------------------------------------------------------------------


def _outcome(request: web.Request, outcome: str) -> None:
    request[LOG_FIELDS]["idempotency"] = outcome
    idempotency_requests_total.labels(outcome=outcome).inc()


def _replay(request: web.Request, existing: Existing, digest: str) -> web.Response:
    """The stored response again, or 422 (another request) / 409 (still running)."""
    if existing.fingerprint != digest:
        _outcome(request, "reused")
        raise KeyReusedError()
    stored = existing.response
    if stored is None:
        _outcome(request, "in_use")
        raise KeyInUseError()
    _outcome(request, "replayed")
    response = web.Response(status=stored.status, body=stored.body)
    for name in REPLAYED_HEADERS:
        if name in stored.headers:
            response.headers[name] = stored.headers[name]
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _stored(response: web.StreamResponse) -> StoredResponse | None:
    """The response as it will be replayed, or None if it cannot be (streamed, 5xx ...)."""
    if not isinstance(response, web.Response) or response.prepared:
        return None
    if not is_storable(response.status) or not isinstance(response.body, bytes | bytearray):
        return None
    headers = {
        name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers
    }
    return StoredResponse(response.status, headers, bytes(response.body))


async def _read_body(request: web.Request) -> bytes:
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413,
            "invalid_request_error",
            "request_too_large",
            f"the request body must be at most {limit} bytes",
        )
    return await request.read()  # cached by aiohttp: the handler reads the same bytes


async def _run_claimed(
    request: web.Request, handler: Handler, store: IdempotencyStore, claim: Claim, digest: str
) -> web.StreamResponse:
    """Run the handler under a claim; store a final answer, release the claim otherwise."""
    try:
        try:
            response = await handler(request)
        except (RequestError, ApiError) as exc:
            response = as_response(request, exc)
    except BaseException:  # crash or cancellation: free the key so that a retry can run
        await asyncio.shield(store.release(claim))
        _outcome(request, "released")
        raise
    stored = _stored(response)
    if stored is None:
        await asyncio.shield(store.release(claim))
        _outcome(request, "released")
    else:
        saved = await asyncio.shield(store.complete(claim, digest, stored))
        _outcome(request, "stored" if saved else "not_stored")
    return response


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Idempotency-Key on POSTs under /api/v1 (required where the route says so)."""
    store = request.app.get(IDEMPOTENCY)
    if store is None or request.method != "POST" or not _guarded(request):
        return await handler(request)
    policy = policy_of(request.match_info.handler)
    key = parse_key(request.headers.getall(HEADER, []), required=policy.required)
    if key is None:
        return await handler(request)
    merchant_id = request[PRINCIPAL].merchant_id
    request[LOG_FIELDS]["merchant_id"] = merchant_id
    digest = fingerprint(
        request.method, request.path, await _read_body(request), request.app[FINGERPRINT_KEY]
    )

    cached = await store.cached(merchant_id, key)
    if cached is not None:
        return _replay(request, cached, digest)
    claim: Claim | None = None
    try:
        for _ in range(CLAIM_ATTEMPTS):
            claim = await store.claim(merchant_id, key, digest)
            if claim is not None:
                break
            existing = await store.existing(merchant_id, key)
            if existing is not None:
                return _replay(request, existing, digest)
            # released or expired between the claim and the read: claim again
    except IdempotencyStoreUnavailableError as exc:
        log.error(
            "idempotency store unavailable",
            extra={"request_id": request_id_of(request), "error": str(exc)},
        )
        raise ServiceUnavailableError() from exc
    if claim is None:
        _outcome(request, "in_use")
        raise KeyInUseError()
    _outcome(request, "new")
    return await _run_claimed(request, handler, store, claim, digest)
