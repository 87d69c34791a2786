"""Merchant operations on payments: list, cancel, refund, and reading refunds.

Handlers are thin: parse (pure, :mod:`ingress.parsing`-style helpers below), one
PostgreSQL call from :mod:`sinks.payments` / :mod:`sinks.refunds` (which lock the
payment row and apply the lifecycle table), publish what changed, render.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from aiohttp import web

from domain.errors import RequestError
from domain.events import RefundRequested
from domain.ids import is_payment_id
from domain.lifecycle import Operation, Outcome
from domain.status import PaymentMethod, PaymentStatus
from domain.views import payment_view
from ingress.auth import Principal
from ingress.context import PRINCIPAL, PRODUCER, STORE, TOPICS
from ingress.errors import ServiceUnavailableError, not_found
from ingress.idempotency import idempotent
from ingress.parsing import decode_json_object, parse_description, parse_metadata
from ingress.producer import ProducerUnavailableError
from schemas.records import encode
from sinks import payments, refunds
from sinks.payments import OutboxEvent, PaymentNotFoundError, TransitionResult
from sinks.refunds import RefundNotFoundError, refund_view

log = logging.getLogger("paystream.ingress.payment_ops")

PAYMENTS_PATH: Final = "/api/v1/payments"
DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 100
REFUND_ID: Final = re.compile(r"rfnd_[0-9A-HJKMNP-TV-Z]{26}")
"""The shape of a refund id (sinks.refunds.new_refund_id), checked before any lookup."""
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def _principal(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise RuntimeError("route reached without authentication")
    return principal


def parse_limit(raw: str | None) -> int:
    """``limit``: 1..100, default 10."""
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise RequestError("parameter_invalid", f"limit must be 1..{MAX_LIMIT}", "limit")
    return int(raw)


def parse_timestamp(raw: str | None, param: str) -> datetime | None:
    """An RFC 3339 timestamp (``2024-01-15T10:15:00Z``) or a date (``2024-01-15``)."""
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC)  # OverflowError: outside years 1-9999 once in UTC
    except (ValueError, OverflowError):
        raise RequestError(
            "parameter_invalid", f"{param} must be an RFC 3339 time or a date", param
        ) from None


def parse_list_query(query: Mapping[str, str]) -> dict[str, Any]:
    """The filters of ``GET /api/v1/payments``; unknown parameters are refused."""
    allowed = {"limit", "starting_after", "status", "payment_method", "created_from", "created_to"}
    for name in query:
        if name not in allowed:
            raise RequestError("parameter_unknown", f"unknown query parameter: {name}", name)
    status = query.get("status")
    if status is not None and status not in PaymentStatus.__members__:
        raise RequestError("parameter_invalid", "status is not a payment status", "status")
    method = query.get("payment_method")
    if method is not None and method not in PaymentMethod.__members__:
        raise RequestError(
            "parameter_invalid", "payment_method is not a payment method", "payment_method"
        )
    cursor = query.get("starting_after")
    if cursor is not None and not is_payment_id(cursor):
        raise RequestError(
            "parameter_invalid", "starting_after must be a payment id", "starting_after"
        )
    return {
        "limit": parse_limit(query.get("limit")),
        "starting_after": cursor,
        "status": status,
        "payment_method": method,
        "created_from": parse_timestamp(query.get("created_from"), "created_from"),
        "created_to": parse_timestamp(query.get("created_to"), "created_to"),
    }


def parse_refund_body(body: Mapping[str, Any]) -> tuple[int | None, str, dict[str, str]]:
    """``{amount_paisa?, reason?, metadata?}``: omit the amount to refund what is left."""
    for name in body:
        if name not in {"amount_paisa", "reason", "metadata"}:
            raise RequestError("parameter_unknown", f"received unknown parameter: {name}", name)
    amount = body.get("amount_paisa")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        raise RequestError(
            "amount_invalid", "amount_paisa must be a whole number of paisa", "amount_paisa"
        )
    if isinstance(amount, int) and amount <= 0:
        raise RequestError("amount_too_small", "amount_paisa must be at least 1", "amount_paisa")
    reason = parse_description(body.get("reason"), "reason")
    return amount, reason, parse_metadata(body.get("metadata"))


async def _publish(request: web.Request, events: list[OutboxEvent | None]) -> None:
    """Publish status events this request wrote; the worker's relay retries failures."""
    ready = [event for event in events if event is not None]
    if not ready:
        return
    topic = request.app[TOPICS].payment_events.name
    try:
        for event in ready:
            await request.app[PRODUCER].send(topic, event.payment_id, event.body, event.headers)
        async with request.app[STORE].pool.acquire() as conn:
            await payments.mark_published(conn, ready)
    except (ProducerUnavailableError, *_DB_ERRORS) as exc:
        log.warning("status event left to the outbox relay", extra={"error": type(exc).__name__})


async def list_payments(request: web.Request) -> web.Response:
    """``GET /api/v1/payments``: newest first, cursor pagination, filters."""
    principal = _principal(request)
    query = parse_list_query(request.query)
    limit = query["limit"]
    try:
        rows = await request.app[STORE].pool.fetch(
            "SELECT * FROM payments WHERE merchant_id = $1"
            " AND ($2::text IS NULL OR payment_id < $2)"
            " AND ($3::text IS NULL OR status = $3)"
            " AND ($4::text IS NULL OR payment_method = $4)"
            " AND ($5::timestamptz IS NULL OR created_at >= $5)"
            " AND ($6::timestamptz IS NULL OR created_at < $6)"
            " ORDER BY payment_id DESC LIMIT $7",
            principal.merchant_id,
            query["starting_after"],
            query["status"],
            query["payment_method"],
            query["created_from"],
            query["created_to"],
            limit + 1,
        )
    except _DB_ERRORS as exc:
        raise ServiceUnavailableError("payments cannot be listed right now") from exc
    data = [payment_view(dict(row)) for row in rows[:limit]]
    return web.json_response({"data": data, "has_more": len(rows) > limit})


def _payment_id(request: web.Request) -> str:
    payment_id = request.match_info["payment_id"]
    if not is_payment_id(payment_id):
        raise not_found("payment_id", "payment")
    return payment_id


@idempotent(required=False)
async def cancel_payment(request: web.Request) -> web.Response:
    """``POST /api/v1/payments/{id}/cancel``: before it is processed (else 409)."""
    principal = _principal(request)
    payment_id = _payment_id(request)
    raw = await request.read()
    body = decode_json_object(raw, request.content_type, request.charset) if raw else {}
    for name in body:
        if name != "cancellation_reason":
            raise RequestError("parameter_unknown", f"received unknown parameter: {name}", name)
    reason = parse_description(body.get("cancellation_reason"), "cancellation_reason")
    now = datetime.now(UTC)
    try:
        async with request.app[STORE].pool.acquire() as conn:
            result: TransitionResult = await payments.transition(
                conn,
                payment_id,
                Operation.CANCEL,
                Outcome.OK,
                now=now,
                merchant_id=principal.merchant_id,
                changes={"cancellation_reason": reason or "requested_by_customer"},
            )
    except PaymentNotFoundError:
        raise not_found("payment_id", "payment") from None
    except _DB_ERRORS as exc:
        raise ServiceUnavailableError("the payment cannot be cancelled right now") from exc
    await _publish(request, [result.outbox])
    log.info("payment cancelled", extra={"payment_id": payment_id})
    return web.json_response(payment_view(_as_row(result)))


def _as_row(result: TransitionResult) -> dict[str, Any]:
    return dataclasses.asdict(result.event)


@idempotent(required=True)
async def create_refund(request: web.Request) -> web.Response:
    """``POST /api/v1/payments/{id}/refund``: full (no amount) or partial, several allowed."""
    principal = _principal(request)
    payment_id = _payment_id(request)
    raw = await request.read()
    body = decode_json_object(raw, request.content_type, request.charset) if raw else {}
    amount, reason, metadata = parse_refund_body(body)
    now = datetime.now(UTC)
    try:
        async with request.app[STORE].pool.acquire() as conn:
            refund, payment = await refunds.create_refund(
                conn,
                payment_id=payment_id,
                merchant_id=principal.merchant_id,
                amount_paisa=amount,
                reason=reason,
                metadata=metadata,
                now=now,
            )
    except PaymentNotFoundError:
        raise not_found("payment_id", "payment") from None
    except _DB_ERRORS as exc:
        raise ServiceUnavailableError("refunds cannot be accepted right now") from exc
    command = RefundRequested(
        refund_id=refund["refund_id"],
        payment_id=payment_id,
        merchant_id=principal.merchant_id,
        amount_paisa=refund["amount_paisa"],
        currency=refund["currency"].strip(),
        payment_method=payment["payment_method"],
        provider=payment["provider"],
        provider_txn_id=payment["external_txn_id"],
        reason=reason,
        requested_at=now,
    )
    value, headers = encode(command)
    try:
        await request.app[PRODUCER].send(
            request.app[TOPICS].refund_requests.name, payment_id, value, headers
        )
    except ProducerUnavailableError:
        # accepted and reserved: the worker's janitor queues PENDING refunds it finds idle
        log.warning("refund queued by the janitor later", extra={"payment_id": payment_id})
    log.info("refund accepted", extra={"payment_id": payment_id, "refund_id": refund["refund_id"]})
    return web.json_response(refund_view(refund), status=201)


async def get_refund(request: web.Request) -> web.Response:
    """``GET /api/v1/refunds/{refund_id}``."""
    principal = _principal(request)
    refund_id = request.match_info["refund_id"]
    if not REFUND_ID.fullmatch(refund_id):
        raise not_found("refund_id", "refund")
    try:
        async with request.app[STORE].pool.acquire() as conn:
            row = await refunds.get_refund(conn, refund_id, principal.merchant_id)
    except RefundNotFoundError:
        raise not_found("refund_id", "refund") from None
    except _DB_ERRORS as exc:
        raise ServiceUnavailableError("refunds cannot be read right now") from exc
    return web.json_response(refund_view(row))


async def list_refunds(request: web.Request) -> web.Response:
    """``GET /api/v1/refunds`` and ``GET /api/v1/payments/{id}/refunds``."""
    principal = _principal(request)
    payment_id = request.match_info.get("payment_id")
    if payment_id is not None and not is_payment_id(payment_id):
        raise not_found("payment_id", "payment")
    for name in request.query:
        if name not in {"limit", "starting_after"}:
            raise RequestError("parameter_unknown", f"unknown query parameter: {name}", name)
    limit = parse_limit(request.query.get("limit"))
    cursor = request.query.get("starting_after")
    if cursor is not None and not REFUND_ID.fullmatch(cursor):
        raise RequestError(
            "parameter_invalid", "starting_after must be a refund id", "starting_after"
        )
    try:
        async with request.app[STORE].pool.acquire() as conn:
            if payment_id is not None:
                await payments.get_payment(conn, payment_id, principal.merchant_id)
            rows = await refunds.list_refunds(
                conn,
                principal.merchant_id,
                payment_id=payment_id,
                limit=limit + 1,
                starting_after=cursor,
            )
    except PaymentNotFoundError:
        raise not_found("payment_id", "payment") from None
    except _DB_ERRORS as exc:
        raise ServiceUnavailableError("refunds cannot be listed right now") from exc
    data = [refund_view(row) for row in rows[:limit]]
    return web.json_response({"data": data, "has_more": len(rows) > limit})


def add_payment_operation_routes(app: web.Application) -> None:
    """Register the routes of this module."""
    app.router.add_get(PAYMENTS_PATH, list_payments, allow_head=False)
    app.router.add_post(PAYMENTS_PATH + "/{payment_id}/cancel", cancel_payment)
    app.router.add_post(PAYMENTS_PATH + "/{payment_id}/refund", create_refund)
    app.router.add_get(PAYMENTS_PATH + "/{payment_id}/refunds", list_refunds, allow_head=False)
    app.router.add_get("/api/v1/refunds", list_refunds, allow_head=False)
    app.router.add_get("/api/v1/refunds/{refund_id}", get_refund, allow_head=False)
