"""Live payment status: ``GET /api/v1/payments/{payment_id}/events``.

Server-Sent Events (``text/event-stream``) by default; a WebSocket with
``?transport=websocket``. The stream sends the payment's current status at once, then
every later status change, and ends after a terminal status (FAILED, CANCELLED,
EXPIRED, REFUNDED), when the client goes away, or when the ingress stops::

    retry: 3000

    id: 4
    event: payment.pending
    data: {"payment_id": "PAY_...", "status": "PENDING", ...}

``id`` is the payment's ``sequence`` (it grows by one per change), ``event`` is the
webhook event type of the status, ``data`` is the payment exactly as ``GET
/api/v1/payments/{id}`` renders it. A comment line (``: keep-alive``) goes out every
15 s. A client that reconnects with ``Last-Event-ID: n`` (EventSource does so by itself;
WebSocket clients pass ``?last_event_id=n``) gets the current status only if it is newer
than ``n``; a terminal payment it has already seen answers ``204`` (EventSource then
stops reconnecting). WebSocket messages are JSON ``{"id", "event", "data"}``.

**Source of changes.** Each ingress process runs ONE :class:`PaymentEventHub`: an
aiokafka consumer without a group, assigned every partition of the payments events
topic from its end, started on the first subscriber and stopped with the app. It
decodes only messages whose key (the payment id) has a subscriber, and fans
``PaymentStatusChanged`` snapshots out to them. A handler subscribes FIRST and reads the
payment row SECOND: every change committed after the read is published after it, at an
offset the hub has not passed, so nothing is lost; what the read already covered
(``sequence <=`` the one sent) is dropped. A subscriber that falls too far behind, or a
hub that loses Kafka, ends its streams: clients reconnect with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Final

import asyncpg
import orjson
from aiohttp import WSMsgType, web
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from domain.errors import RequestError
from domain.events import PaymentStatusChanged
from domain.ids import is_payment_id
from domain.status import PaymentStatus
from domain.views import WEBHOOK_EVENT_TYPES, payment_view
from ingress.auth import Principal
from ingress.context import PRINCIPAL, SETTINGS, STORE, TOPICS
from ingress.errors import (
    LOG_FIELDS,
    REQUEST_ID_HEADER,
    ServiceUnavailableError,
    not_found,
    request_id_of,
)
from schemas.errors import SerializationError
from schemas.records import decode
from settings import Settings
from sinks.metrics import live_status_streams

log = logging.getLogger("paystream.ingress.live_status")

EVENTS_PATH: Final = "/api/v1/payments/{payment_id}/events"
HEARTBEAT_S: Final = 15.0
"""A comment line (SSE) or a ping (WebSocket) this often keeps proxies from closing."""
LIVENESS_CHECK_S: Final = 5.0
"""How often an idle stream checks that its client is still connected."""
RETRY_MS: Final = 3000
"""The reconnection delay suggested to EventSource clients."""
START_TIMEOUT_S: Final = 10.0
QUERY_TIMEOUT_S: Final = 2.0
MAX_QUEUED_EVENTS: Final = 64
"""Events a slow subscriber may have pending; beyond that its stream ends (it reconnects)."""
MAX_SUBSCRIBERS: Final = 10_000
"""Open streams per ingress process; more answer 503."""
CLIENT_ID: Final = "paystream-ingress-live-status"
TRANSPORTS: Final = frozenset({"sse", "websocket"})
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_SELECT_PAYMENT: Final = "SELECT * FROM payments WHERE payment_id = $1"


class HubUnavailableError(Exception):
    """The hub cannot follow the events topic now (Kafka down, too many subscribers)."""


class Subscription:
    """One stream's queue of status changes of one payment."""

    def __init__(self, payment_id: str, max_queued: int = MAX_QUEUED_EVENTS) -> None:
        self.payment_id = payment_id
        self.ended: str | None = None
        """Why the hub ended this subscription (``overflow``, ``source_lost``, ``shutdown``)."""
        self._events: deque[PaymentStatusChanged] = deque()
        self._max = max_queued
        self._wake = asyncio.Event()

    def push(self, event: PaymentStatusChanged) -> None:
        """Queue a change (called by the hub); a full queue ends the subscription."""
        if len(self._events) >= self._max:
            self.end("overflow")
            return
        self._events.append(event)
        self._wake.set()

    def end(self, reason: str) -> None:
        """End the subscription; the stream stops after the events already queued."""
        if self.ended is None:
            self.ended = reason
        self._wake.set()

    async def next(self, timeout_s: float) -> PaymentStatusChanged | None:
        """The next queued change, or None after ``timeout_s`` or once ended and drained."""
        if not self._events and self.ended is None:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout_s)
        return self._events.popleft() if self._events else None


class PaymentEventHub:
    """One group-less consumer of the payments events topic, fanned out by payment id."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._subscribers: dict[str, set[Subscription]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions in this process."""
        return sum(len(subs) for subs in self._subscribers.values())

    @contextlib.asynccontextmanager
    async def subscribe(self, payment_id: str) -> AsyncIterator[Subscription]:
        """Follow ``payment_id``: registered first, then the consumer is (made) ready."""
        if self._closed:
            raise HubUnavailableError("the ingress is stopping")
        if self.subscriber_count >= MAX_SUBSCRIBERS:
            raise HubUnavailableError("too many open streams")
        subscription = Subscription(payment_id)
        self._subscribers.setdefault(payment_id, set()).add(subscription)
        try:
            await self._ensure_started()
            yield subscription
        finally:
            subs = self._subscribers.get(payment_id)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self._subscribers[payment_id]

    async def _ensure_started(self) -> None:
        """Start the consumer unless it runs; return once its positions are fixed."""
        if self._task is not None and not self._task.done():
            return
        async with self._lock:
            if self._task is not None and not self._task.done():
                return
            consumer = AIOKafkaConsumer(
                self._topic,
                bootstrap_servers=self._settings.kafka_bootstrap,
                client_id=CLIENT_ID,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                fetch_max_wait_ms=100,
                request_timeout_ms=int(START_TIMEOUT_S * 1000),
            )
            try:
                await asyncio.wait_for(self._start(consumer), START_TIMEOUT_S)
            except (KafkaError, OSError, TimeoutError) as exc:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                raise HubUnavailableError(f"kafka: {type(exc).__name__}") from exc
            self._consumer = consumer
            self._task = asyncio.create_task(self._run(consumer), name="live-status-hub")
            log.info("live status hub started", extra={"topic": self._topic})

    async def _start(self, consumer: AIOKafkaConsumer) -> None:
        # subscribed without a group: aiokafka assigns every partition of the topic
        await consumer.start()
        assigned = sorted(consumer.assignment())
        if not assigned:
            raise KafkaError(f"topic {self._topic} has no partitions")
        await consumer.seek_to_end(*assigned)
        for tp in assigned:  # resolve every position now: later messages are never skipped
            await consumer.position(tp)

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=500)
                for messages in batches.values():
                    for message in messages:
                        self._dispatch(message.key, message.value, message.headers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the stream source is gone: end streams, restart on demand
            log.error("live status hub stopped", extra={"error": type(exc).__name__})
            self._end_all("source_lost")
            with contextlib.suppress(Exception):
                await consumer.stop()

    def _dispatch(self, key: bytes | None, value: bytes | None, headers: Any) -> None:
        if key is None or value is None:
            return
        subs = self._subscribers.get(key.decode("utf-8", "replace"))
        if not subs:
            return
        try:
            event = decode(value, list(headers or ()))
        except SerializationError as exc:
            log.warning("undecodable payment event skipped", extra={"error": str(exc)})
            return
        if not isinstance(event, PaymentStatusChanged):
            return
        for subscription in list(subs):
            subscription.push(event)

    def _end_all(self, reason: str) -> None:
        for subs in list(self._subscribers.values()):
            for subscription in list(subs):
                subscription.end(reason)

    async def shutdown_streams(self, app: web.Application) -> None:
        """``on_shutdown``: end every stream so that handlers return within the grace."""
        del app
        self._closed = True
        self._end_all("shutdown")

    async def close(self) -> None:
        """Stop the consumer (after the streams ended)."""
        self._closed = True
        self._end_all("shutdown")
        task, consumer = self._task, self._consumer
        self._task = self._consumer = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10.0)


LIVE_STATUS: Final = web.AppKey("live_status", PaymentEventHub)


# Pure helpers -------------------------------------------------------------------------


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    """``Last-Event-ID`` (header, else ``?last_event_id=``): a sequence number, or None."""
    for raw, param in ((query, "last_event_id"), (header, "Last-Event-ID")):
        if raw is None or raw.strip() == "":
            continue
        text = raw.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 10:
            raise RequestError(
                "parameter_invalid", f"{param} must be an event id (a whole number)", param
            )
        return int(text)
    return None


def event_type(status: str) -> str:
    """The event name of a status (``payment.success``)."""
    try:
        return WEBHOOK_EVENT_TYPES[PaymentStatus(status)]
    except ValueError:
        return "payment." + status.lower()


def is_terminal(status: str) -> bool:
    """True when no further change can follow (FAILED, CANCELLED, EXPIRED, REFUNDED)."""
    try:
        return PaymentStatus(status).is_terminal
    except ValueError:
        return False


def sse_event(sequence: int, view: dict[str, Any]) -> bytes:
    """One SSE event: ``id``, ``event`` and one line of JSON ``data``."""
    data = orjson.dumps(view).decode("utf-8")
    return f"id: {sequence}\nevent: {event_type(view['status'])}\ndata: {data}\n\n".encode()


def ws_message(sequence: int, view: dict[str, Any]) -> dict[str, Any]:
    """One WebSocket message."""
    return {"id": sequence, "event": event_type(view["status"]), "data": view}


# The handler --------------------------------------------------------------------------


class _Stream:
    """What the handler writes to: an SSE response or a WebSocket."""

    def __init__(self, request: web.Request, transport: str) -> None:
        self.request = request
        self.transport = transport
        self.response: web.StreamResponse | None = None
        self.ws: web.WebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self.transport == "websocket":
            ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
            await ws.prepare(self.request)
            self.ws = ws
            self._reader = asyncio.create_task(self._drain(ws))
            return
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
                REQUEST_ID_HEADER: request_id_of(self.request),
            }
        )
        await response.prepare(self.request)
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        self.response = response

    @staticmethod
    async def _drain(ws: web.WebSocketResponse) -> None:
        async for message in ws:  # ends when the client closes
            if message.type == WSMsgType.ERROR:
                break

    @property
    def client_gone(self) -> bool:
        if self.ws is not None:
            return self.ws.closed or (self._reader is not None and self._reader.done())
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def send(self, sequence: int, view: dict[str, Any]) -> None:
        if self.ws is not None:
            await self.ws.send_json(ws_message(sequence, view), dumps=_dumps)
        elif self.response is not None:
            await self.response.write(sse_event(sequence, view))

    async def heartbeat(self) -> None:
        if self.response is not None:  # WebSocket pings come from aiohttp's heartbeat
            await self.response.write(b": keep-alive\n\n")

    async def close(self) -> web.StreamResponse:
        if self.ws is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close()
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._reader
            return self.ws
        assert self.response is not None
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.response.write_eof()
        return self.response


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode("utf-8")


def _principal(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if not isinstance(principal, Principal):  # the auth middleware guards every /api/ route
        raise RuntimeError("route reached without authentication")
    return principal


def _transport(request: web.Request) -> str:
    for name in request.query:
        if name not in {"transport", "last_event_id"}:
            raise RequestError("parameter_unknown", f"unknown query parameter: {name}", name)
    transport = request.query.get("transport", "sse")
    if transport not in TRANSPORTS:
        raise RequestError("parameter_invalid", "transport must be sse or websocket", "transport")
    if transport == "websocket" and not web.WebSocketResponse().can_prepare(request).ok:
        raise RequestError(
            "websocket_upgrade_required",
            "transport=websocket needs a WebSocket upgrade request",
            "transport",
        )
    return transport


async def _current(request: web.Request, payment_id: str, principal: Principal) -> Any:
    try:
        row = await asyncio.wait_for(
            request.app[STORE].pool.fetchrow(_SELECT_PAYMENT, payment_id), QUERY_TIMEOUT_S
        )
    except _DB_ERRORS as exc:
        raise ServiceUnavailableError("the payment cannot be read right now") from exc
    if row is None or (row["merchant_id"] != principal.merchant_id and not principal.admin):
        raise not_found("payment_id", "payment")
    return row


async def payment_events(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/payments/{payment_id}/events``: the payment's status, live."""
    principal = _principal(request)
    fields = request[LOG_FIELDS]
    fields["merchant_id"] = principal.merchant_id
    payment_id = request.match_info["payment_id"]
    if not is_payment_id(payment_id):
        raise not_found("payment_id", "payment")
    fields["payment_id"] = payment_id
    transport = _transport(request)
    last_seen = parse_last_event_id(
        request.headers.get("Last-Event-ID"), request.query.get("last_event_id")
    )
    hub = request.app[LIVE_STATUS]
    try:
        async with hub.subscribe(payment_id) as subscription:
            row = await _current(request, payment_id, principal)  # after subscribing: no gap
            sequence, status = int(row["sequence"]), str(row["status"])
            if last_seen is not None and last_seen >= sequence and is_terminal(status):
                fields["stream_end"] = "already_seen"
                return web.Response(status=204)
            stream = _Stream(request, transport)
            await stream.open()
            live_status_streams.labels(transport=transport).inc()
            try:
                fields["stream_end"] = await _follow(
                    stream, subscription, dict(row), sequence, last_seen
                )
            finally:
                live_status_streams.labels(transport=transport).dec()
            fields["payment_status"] = status
            return await stream.close()
    except HubUnavailableError as exc:
        log.warning("live status unavailable", extra={"error": str(exc)})
        raise ServiceUnavailableError("live status is unavailable right now; retry later") from exc


async def _follow(
    stream: _Stream,
    subscription: Subscription,
    row: dict[str, Any],
    sequence: int,
    last_seen: int | None,
) -> str:
    """Send the current status (unless already seen), then changes until the end."""
    high = sequence
    try:
        if last_seen is None or last_seen < sequence:
            await stream.send(sequence, payment_view(row))
        else:
            high = last_seen
        if is_terminal(str(row["status"])):
            return "terminal"
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + HEARTBEAT_S
        while True:
            wait_s = max(0.0, min(LIVENESS_CHECK_S, next_heartbeat - loop.time()))
            event = await subscription.next(wait_s)
            if stream.client_gone:
                return "client_gone"
            if event is None:
                if subscription.ended is not None:
                    return subscription.ended
                if loop.time() >= next_heartbeat:
                    await stream.heartbeat()
                    next_heartbeat = loop.time() + HEARTBEAT_S
                continue
            if event.sequence <= high:
                continue  # already covered by what was sent
            high = event.sequence
            await stream.send(event.sequence, payment_view(dataclasses.asdict(event)))
            if is_terminal(event.status):
                return "terminal"
    except ConnectionError:
        return "client_gone"


async def _hub_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = PaymentEventHub(app[SETTINGS], app[TOPICS].payment_events.name)
    app[LIVE_STATUS] = hub
    try:
        yield
    finally:
        await hub.close()


def add_live_status_routes(app: web.Application) -> None:
    """Register the live status route, its hub and the hub's shutdown hook."""
    app.cleanup_ctx.append(_hub_ctx)
    app.on_shutdown.append(_shutdown_streams)
    app.router.add_get(EVENTS_PATH, payment_events, allow_head=False)


async def _shutdown_streams(app: web.Application) -> None:
    hub = app.get(LIVE_STATUS)
    if hub is not None:
        await hub.shutdown_streams(app)
