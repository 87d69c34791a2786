"""HTTP handlers: decode, call a pure function, write, send. Nothing else.

Routes: ``POST /api/v1/payments``, ``GET /api/v1/payments/{payment_id}`` (both need a
merchant token), ``/health`` (liveness), ``/ready`` (Kafka, PostgreSQL, Redis) and
``/metrics`` (Prometheus text format).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import prometheus_client
from aiohttp import web

from domain.ids import is_payment_id, new_payment_id
from domain.pii import is_pii_key, mask_pii, protect_pii
from domain.upi import intent_link
from domain.vault_crypto import KeyRing, record_aad
from domain.views import payment_view
from ingress.auth import Principal
from ingress.context import PRINCIPAL, PRODUCER, SETTINGS, STORE, TOPICS
from ingress.errors import (
    LOG_FIELDS,
    ApiError,
    ServiceUnavailableError,
    dumps,
    not_found,
    request_id_of,
)
from ingress.idempotency import idempotent
from ingress.parsing import (
    accepted_payment,
    build_payment_requested,
    decode_json_object,
    parse_create_payment,
    payment_note,
)
from ingress.producer import ProducerUnavailableError
from ingress.qr import qr_data_uri
from ingress.store import StoreUnavailableError
from schemas.records import encode
from settings import Settings
from sinks.metrics import ready_state
from sinks.vault import keyring_from_settings

log = logging.getLogger("paystream.ingress")

PAYMENTS_PATH: Final = "/api/v1/payments"
READY_CHECK_TIMEOUT_S: Final = 1.5


_KEYRINGS: dict[int, KeyRing] = {}


def _keyring(settings: Settings) -> KeyRing:
    """The process's key ring, derived once per settings object."""
    keyring = _KEYRINGS.get(id(settings))
    if keyring is None:
        keyring = _KEYRINGS[id(settings)] = keyring_from_settings(settings)
    return keyring


def encrypted_pii(
    metadata: Mapping[str, str], keyring: KeyRing, merchant_id: str, payment_id: str
) -> dict[str, str]:
    """The personal-data fields of ``metadata``, encrypted and bound to the payment."""
    aad = record_aad("payment", merchant_id, payment_id, "metadata")
    return {k: v for k, v in protect_pii(metadata, keyring, aad).items() if is_pii_key(k)}


def _principal(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if not isinstance(principal, Principal):  # the auth middleware guards every /api/ route
        raise RuntimeError("route reached without authentication")
    return principal


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=dumps)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413,
            "invalid_request_error",
            "request_too_large",
            f"the request body must be at most {limit} bytes",
        )
    return await request.read()  # aiohttp enforces client_max_size on chunked bodies (413)


@idempotent(required=True)
async def create_payment(request: web.Request) -> web.Response:
    """``POST /api/v1/payments``: accept a payment once Kafka has acknowledged it (201)."""
    settings = request.app[SETTINGS]
    principal = _principal(request)
    fields = request[LOG_FIELDS]
    fields["merchant_id"] = principal.merchant_id
    raw = await _read_body(request, settings.max_body_bytes)
    body = decode_json_object(raw, request.content_type, request.charset)
    command = parse_create_payment(body, principal.merchant_id)

    payment_id = new_payment_id()
    # personal data in metadata: encrypted for PostgreSQL, masked everywhere else
    pii = encrypted_pii(command.metadata, _keyring(settings), principal.merchant_id, payment_id)
    command = dataclasses.replace(command, metadata=mask_pii(command.metadata))
    event = build_payment_requested(
        command,
        merchant_id=principal.merchant_id,
        payment_id=payment_id,
        request_id=request_id_of(request),
        now=datetime.now(UTC),
        expiry_s=settings.payment_expiry_s,
        fee_schedule=settings.fee_schedule,
    )
    link = intent_link(
        payee_vpa=settings.upi_payee_vpa,
        payee_name=settings.upi_payee_name,
        amount_paisa=event.amount_paisa,
        note=payment_note(event.description, payment_id),
        reference=payment_id,
    )
    qr_code = qr_data_uri(link)
    value, headers = encode(event)
    fields["payment_id"] = payment_id
    # PostgreSQL first (the source of truth, PENDING + its event in the outbox), then
    # the queue; if the queue refuses, the payment is FAILED with nothing sent.
    try:
        await request.app[STORE].create_pending(event, event.created_at, pii)
    except StoreUnavailableError as exc:
        raise ServiceUnavailableError("payments cannot be accepted right now; retry later") from exc
    try:
        await request.app[PRODUCER].send(
            request.app[TOPICS].payment_requests.name, payment_id, value, headers
        )
    except ProducerUnavailableError as exc:
        await request.app[STORE].mark_not_queued(payment_id, datetime.now(UTC))
        log.error(
            "payment not accepted: kafka unavailable",
            extra={
                "request_id": request_id_of(request),
                "payment_id": payment_id,
                "merchant_id": principal.merchant_id,
                "error": str(exc),
            },
        )
        raise ServiceUnavailableError("payments cannot be accepted right now; retry later") from exc

    view = payment_view(accepted_payment(event))
    await request.app[STORE].cache_created(view)
    fields["payment_status"] = view["status"]
    log.info(
        "payment accepted",
        extra={
            "request_id": request_id_of(request),
            "payment_id": payment_id,
            "merchant_id": principal.merchant_id,
            "status": view["status"],
            "payment_method": event.payment_method,
        },
    )
    return _json(
        {**view, "payment_url": link, "qr_code": qr_code},
        status=201,
        headers={"Location": f"{PAYMENTS_PATH}/{payment_id}"},
    )


async def get_payment(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/{payment_id}``: the payment if it is the caller's, else 404."""
    principal = _principal(request)
    fields = request[LOG_FIELDS]
    fields["merchant_id"] = principal.merchant_id
    payment_id = request.match_info["payment_id"]
    if not is_payment_id(payment_id):
        raise not_found("payment_id", "payment")
    fields["payment_id"] = payment_id
    try:
        view = await request.app[STORE].find(payment_id)
    except StoreUnavailableError as exc:
        log.error(
            "payment lookup failed",
            extra={
                "request_id": request_id_of(request),
                "payment_id": payment_id,
                "error": str(exc),
            },
        )
        raise ServiceUnavailableError() from exc
    if view is None or (view.get("merchant_id") != principal.merchant_id and not principal.admin):
        raise not_found("payment_id", "payment")
    fields["payment_status"] = view.get("status")
    return _json(view)


async def health(request: web.Request) -> web.Response:
    """Liveness: the process runs and its event loop answers."""
    del request
    return _json({"status": "healthy"})


async def _check(name: str, probe: Awaitable[None]) -> tuple[str, dict[str, str]]:
    try:
        await asyncio.wait_for(probe, READY_CHECK_TIMEOUT_S)
    except TimeoutError:
        result = {"status": "unhealthy", "error": f"no answer within {READY_CHECK_TIMEOUT_S}s"}
    except Exception as exc:  # a probe may fail in any way; report it, never raise
        text = str(exc).strip()
        error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        result = {"status": "unhealthy", "error": error[:300]}
    else:
        result = {"status": "healthy"}
    ready_state.labels(component=name).set(1 if result["status"] == "healthy" else 0)
    return name, result


async def ready(request: web.Request) -> web.Response:
    """Readiness: Kafka (metadata + requests topic), PostgreSQL (SELECT 1), Redis (PING)."""
    app = request.app
    store = app[STORE]
    results = await asyncio.gather(
        _check("kafka", app[PRODUCER].check(app[TOPICS].payment_requests.name, 1.0)),
        _check("postgres", store.ping_postgres()),
        _check("redis", store.ping_redis()),
    )
    checks = dict(results)
    ok = all(result["status"] == "healthy" for result in checks.values())
    ready_state.labels(component="ingress").set(1 if ok else 0)
    return _json(
        {"status": "ready" if ok else "degraded", "checks": checks}, status=200 if ok else 503
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this process, from the default registry."""
    del request
    response = web.Response(body=prometheus_client.generate_latest(prometheus_client.REGISTRY))
    response.headers["Content-Type"] = prometheus_client.CONTENT_TYPE_LATEST
    return response


def add_routes(app: web.Application, *, with_metrics: bool = True) -> None:
    """Register every route of the ingress on ``app``."""
    app.router.add_post(PAYMENTS_PATH, create_payment)
    app.router.add_get(PAYMENTS_PATH + "/{payment_id}", get_payment, allow_head=False)
    app.router.add_get("/health", health, allow_head=False)
    app.router.add_get("/ready", ready, allow_head=False)
    if with_metrics:
        app.router.add_get("/metrics", metrics, allow_head=False)
