"""Webhook endpoint registration (delivery comes later).

Routes (merchant token required; another merchant's endpoint is ``404``, like an
unknown one):

* ``POST /api/v1/webhooks`` ``{url, events, secret?, description?}``: ``201`` with the
  endpoint and its signing ``secret``, shown this once (generated when omitted).
  ``Idempotency-Key`` is optional. At most 20 live endpoints per merchant
  (``422 too_many_webhooks``).
* ``GET /api/v1/webhooks``: ``{"data": [...], "has_more": false}``, newest first.
* ``GET /api/v1/webhooks/{webhook_id}``: one endpoint.
* ``DELETE /api/v1/webhooks/{webhook_id}``: ``{"webhook_id", "deleted": true}``.

No answer but the create carries the secret. The URL must be ``http(s)`` and point to
a public address: :func:`check_url` resolves its host (``loop.getaddrinfo``, bounded)
and applies :func:`domain.ssrf.check_public_target` with ``allow_loopback=False``.
The resolver is an app value (:data:`RESOLVER`) so tests can answer for names that do
not exist; delivery must check the address it connects to again.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from aiohttp import web

from domain.errors import RequestError, UnprocessableError
from domain.ssrf import check_public_target, parse_target
from domain.webhooks import (
    MAX_ENDPOINTS_PER_MERCHANT,
    is_webhook_id,
    new_secret,
    new_webhook_id,
    parse_events,
    parse_secret,
    webhook_endpoint_view,
)
from ingress.auth import Principal
from ingress.context import PRINCIPAL, SETTINGS, STORE
from ingress.errors import LOG_FIELDS, ApiError, ServiceUnavailableError, dumps, not_found
from ingress.idempotency import idempotent
from ingress.parsing import decode_json_object, parse_description
from sinks.vault import keyring_from_settings
from sinks.webhook_endpoints import (
    WebhookEndpointStore,
    WebhookLimitError,
    WebhookStoreUnavailableError,
)

log = logging.getLogger("paystream.ingress.webhooks")

WEBHOOKS_PATH: Final = "/api/v1/webhooks"
WEBHOOK_PATH: Final = WEBHOOKS_PATH + "/{webhook_id}"
CREATE_FIELDS: Final = frozenset({"url", "events", "secret", "description"})
RESOLVE_TIMEOUT_S: Final = 3.0
ALLOW_LOOPBACK: Final = False
"""Loopback webhook targets are refused until a local-development setting exists."""
_NO_SUCH_NAME: Final = frozenset(
    code
    for code in (
        getattr(socket, "EAI_NONAME", None),
        getattr(socket, "EAI_NODATA", None),
        getattr(socket, "EAI_ADDRFAMILY", None),
    )
    if code is not None
)


class ResolveError(Exception):
    """The host name could not be resolved right now (not "does not exist")."""


class HostResolver:
    """Resolves a host name to its addresses with the event loop's ``getaddrinfo``."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address of ``host`` (empty when the name does not exist); ResolveError
        when the resolver fails or takes longer than RESOLVE_TIMEOUT_S."""
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
            )
        except socket.gaierror as exc:
            if exc.errno in _NO_SUCH_NAME:
                return []
            raise ResolveError(f"getaddrinfo: {exc.errno}") from exc
        except (OSError, TimeoutError) as exc:
            raise ResolveError(type(exc).__name__) from exc
        return sorted({str(info[4][0]) for info in infos})


RESOLVER: Final = web.AppKey("webhook_resolver", HostResolver)
WEBHOOK_ENDPOINTS: Final = web.AppKey("webhook_endpoints", WebhookEndpointStore)


async def check_url(resolver: HostResolver, url: str, *, allow_loopback: bool) -> str:
    """The URL if the gateway may call it (RequestError ``url_invalid``/``url_not_allowed``);
    ServiceUnavailableError when DNS cannot answer now."""
    target = parse_target(url)
    addresses: list[str] = []
    if target.address is None:
        try:
            addresses = await resolver.resolve(target.host, target.port)
        except ResolveError as exc:
            raise ServiceUnavailableError(
                "the webhook URL's host could not be resolved right now; retry later"
            ) from exc
    check_public_target(url, addresses, allow_loopback=allow_loopback)
    return url


def parse_create_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a create request, checked (pure); the URL's destination is not."""
    for name in body:
        if name not in CREATE_FIELDS:
            raise RequestError("parameter_unknown", f"received unknown parameter: {name}", name)
    if body.get("url") is None:
        raise RequestError("parameter_missing", "url is required", "url")
    if body.get("events") is None:
        raise RequestError("parameter_missing", "events is required", "events")
    parse_target(body["url"])
    return {
        "url": body["url"],
        "events": parse_events(body["events"]),
        "secret": parse_secret(body.get("secret")),
        "description": parse_description(body.get("description"), "description"),
    }


def _principal(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if not isinstance(principal, Principal):  # the auth middleware guards every /api/ route
        raise RuntimeError("route reached without authentication")
    request[LOG_FIELDS]["merchant_id"] = principal.merchant_id
    return principal


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def _store(request: web.Request) -> WebhookEndpointStore:
    return request.app[WEBHOOK_ENDPOINTS]


def _webhook_id(request: web.Request) -> str:
    webhook_id = request.match_info["webhook_id"]
    if not is_webhook_id(webhook_id):
        raise not_found("webhook_id", "webhook endpoint")
    request[LOG_FIELDS]["webhook_id"] = webhook_id
    return webhook_id


def _unavailable(exc: Exception) -> ServiceUnavailableError:
    log.error("webhook endpoint store unavailable", extra={"error": str(exc)})
    return ServiceUnavailableError()


@idempotent(required=False)
async def create_webhook(request: web.Request) -> web.Response:
    """``POST /api/v1/webhooks``: 201 with the endpoint and its secret (shown once)."""
    settings = request.app[SETTINGS]
    principal = _principal(request)
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise ApiError(
            413,
            "invalid_request_error",
            "request_too_large",
            f"the request body must be at most {settings.max_body_bytes} bytes",
        )
    body = decode_json_object(await request.read(), request.content_type, request.charset)
    fields = parse_create_body(body)
    url = await check_url(request.app[RESOLVER], fields["url"], allow_loopback=ALLOW_LOOPBACK)
    secret = fields["secret"] or new_secret()
    webhook_id = new_webhook_id()
    try:
        row = await _store(request).create(
            webhook_id=webhook_id,
            merchant_id=principal.merchant_id,
            url=url,
            events=fields["events"],
            description=fields["description"],
            secret=secret,
            limit=MAX_ENDPOINTS_PER_MERCHANT,
        )
    except WebhookLimitError as exc:
        raise UnprocessableError(
            "too_many_webhooks",
            f"a merchant can have at most {exc.limit} webhook endpoints; delete one first",
        ) from None
    except WebhookStoreUnavailableError as exc:
        raise _unavailable(exc) from exc
    request[LOG_FIELDS]["webhook_id"] = webhook_id
    log.info(
        "webhook endpoint created",
        extra={
            "merchant_id": principal.merchant_id,
            "webhook_id": webhook_id,
            "secret_generated": fields["secret"] is None,
        },
    )
    return _json({**webhook_endpoint_view(row), "secret": secret}, status=201)


async def list_webhooks(request: web.Request) -> web.Response:
    """``GET /api/v1/webhooks``: the merchant's endpoints, newest first, no secrets."""
    principal = _principal(request)
    if request.query:
        name = next(iter(request.query))
        raise RequestError("parameter_unknown", f"unknown query parameter: {name}", name)
    try:
        rows = await _store(request).list_for_merchant(
            principal.merchant_id, MAX_ENDPOINTS_PER_MERCHANT
        )
    except WebhookStoreUnavailableError as exc:
        raise _unavailable(exc) from exc
    return _json({"data": [webhook_endpoint_view(row) for row in rows], "has_more": False})


async def get_webhook(request: web.Request) -> web.Response:
    """``GET /api/v1/webhooks/{webhook_id}``: the endpoint if it is the caller's, else 404."""
    principal = _principal(request)
    webhook_id = _webhook_id(request)
    try:
        row = await _store(request).get(principal.merchant_id, webhook_id)
    except WebhookStoreUnavailableError as exc:
        raise _unavailable(exc) from exc
    if row is None:
        raise not_found("webhook_id", "webhook endpoint")
    return _json(webhook_endpoint_view(row))


async def delete_webhook(request: web.Request) -> web.Response:
    """``DELETE /api/v1/webhooks/{webhook_id}``: delete it (its secret is wiped)."""
    principal = _principal(request)
    webhook_id = _webhook_id(request)
    try:
        deleted = await _store(request).delete(principal.merchant_id, webhook_id)
    except WebhookStoreUnavailableError as exc:
        raise _unavailable(exc) from exc
    if not deleted:
        raise not_found("webhook_id", "webhook endpoint")
    log.info(
        "webhook endpoint deleted",
        extra={"merchant_id": principal.merchant_id, "webhook_id": webhook_id},
    )
    return _json({"webhook_id": webhook_id, "deleted": True})


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    """The endpoint store on the app's PostgreSQL pool (built by ``ingress.app``)."""
    app[WEBHOOK_ENDPOINTS] = WebhookEndpointStore(
        app[STORE].pool, keyring_from_settings(app[SETTINGS])
    )
    yield


def add_webhook_routes(app: web.Application) -> None:
    """Register the webhook endpoint routes (after ``ingress.app``'s clients context)."""
    keyring_from_settings(app[SETTINGS])  # a bad key configuration fails now, not per request
    app[RESOLVER] = HostResolver()  # tests may put their own in its place
    app.cleanup_ctx.append(_webhooks_ctx)
    app.router.add_post(WEBHOOKS_PATH, create_webhook)
    app.router.add_get(WEBHOOKS_PATH, list_webhooks, allow_head=False)
    app.router.add_get(WEBHOOK_PATH, get_webhook, allow_head=False)
    app.router.add_delete(WEBHOOK_PATH, delete_webhook)
