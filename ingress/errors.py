"""The ingress's errors, the one error body, and the middleware that applies it everywhere.

Every 4xx/5xx answer, including aiohttp's own 404/405/413 and unexpected exceptions,
has the shape ``{"error": {"type", "code", "message", "param", "request_id"}}`` and an
``X-Request-Id`` header. The same middleware records HTTP metrics by route template
and writes one structured access-log line per request (never a body).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from domain.errors import RequestError
from domain.ids import new_request_id
from sinks.metrics import http_request_duration_seconds, http_requests_total

log = logging.getLogger("paystream.ingress")

REQUEST_ID_HEADER: Final = "X-Request-Id"


def request_key(name: str, kind: type) -> Any:
    """A typed key for a request's dict (``web.RequestKey``; a plain string on older aiohttp)."""
    factory = getattr(web, "RequestKey", None)
    return factory(f"paystream.{name}", kind) if factory is not None else f"paystream.{name}"


REQUEST_ID: Final = request_key("request_id", str)
"""Key of the request id in the aiohttp request's dict."""
LOG_FIELDS: Final = request_key("log_fields", dict)
"""Key of a dict handlers fill with log-safe fields (payment_id, merchant_id, status)."""
_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
UNMATCHED_ROUTE: Final = "unmatched"
_QUIET_ROUTES: Final = frozenset({"/health", "/ready", "/metrics"})
"""Probe and scrape routes: their successful requests are logged at DEBUG only."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class IngressError(Exception):
    """Base class of the ingress's own exceptions."""


class ApiError(IngressError):
    """An HTTP error answered in the one error shape (``status``, ``type``, ``code`` ...)."""

    def __init__(
        self,
        status: int,
        type_: str,
        code: str,
        message: str,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})


class ServiceUnavailableError(ApiError):
    """A dependency (Kafka, PostgreSQL, Redis) cannot serve the request now: 503, retry later."""

    def __init__(self, message: str = "the service is temporarily unavailable; retry later"):
        super().__init__(
            503, "api_error", "service_unavailable", message, None, {"Retry-After": "1"}
        )


def not_found(param: str | None = None, what: str = "resource") -> ApiError:
    """The 404 for an id that does not exist, or that belongs to someone else."""
    return ApiError(404, "invalid_request_error", "resource_missing", f"no such {what}", param)


def dumps(data: Any) -> str:
    """JSON text for responses (orjson; datetimes are already strings in our views)."""
    return orjson.dumps(data).decode("utf-8")


def error_body(
    type_: str, code: str, message: str, param: str | None, request_id: str
) -> dict[str, Any]:
    """The one error shape merchants see.

    ``message`` and ``param`` may echo a submitted name; one that cannot be UTF-8
    (a lone surrogate from a JSON ``"\\ud800"`` escape) is shown with ``?`` instead.
    """
    return {
        "error": {
            "type": type_,
            "code": code,
            "message": _utf8(message),
            "param": None if param is None else _utf8(param),
            "request_id": request_id,
        }
    }


def _utf8(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def error_response(
    status: int,
    type_: str,
    code: str,
    message: str,
    param: str | None,
    request_id: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An error as an aiohttp response."""
    return web.json_response(
        error_body(type_, code, message, param, request_id),
        status=status,
        headers=dict(headers or {}),
        dumps=dumps,
    )


_HTTP_CODES: Final = {
    404: ("invalid_request_error", "route_not_found", "no such route"),
    405: ("invalid_request_error", "method_not_allowed", "method not allowed on this route"),
    413: ("invalid_request_error", "request_too_large", "the request body is too large"),
    415: ("invalid_request_error", "content_type_invalid", "unsupported media type"),
}


def _from_http_exception(exc: web.HTTPException, request_id: str) -> web.Response:
    type_, code, message = _HTTP_CODES.get(
        exc.status,
        (
            "api_error" if exc.status >= 500 else "invalid_request_error",
            "http_" + str(exc.status),
            exc.reason or "error",
        ),
    )
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    return error_response(exc.status, type_, code, message, None, request_id, headers)


def request_id_of(request: web.Request) -> str:
    """The request id assigned by :func:`observe_middleware`."""
    value = request.get(REQUEST_ID)
    return value if isinstance(value, str) else new_request_id()


def route_template(request: web.Request) -> str:
    """The route's template (``/api/v1/payments/{payment_id}``), never the raw path."""
    resource = request.match_info.route.resource
    if resource is None or request.match_info.http_exception is not None:
        return UNMATCHED_ROUTE
    return resource.canonical


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, the one error shape, HTTP metrics and the access log, for every request."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else new_request_id()
    request[REQUEST_ID] = request_id
    fields: dict[str, Any] = {}
    request[LOG_FIELDS] = fields
    started = time.perf_counter()
    try:
        response = await handler(request)
    except (RequestError, ApiError) as exc:
        headers = dict(getattr(exc, "headers", {}) or {})
        challenge = getattr(exc, "challenge", None)
        if challenge:
            headers["WWW-Authenticate"] = challenge
        fields["error_code"] = exc.code
        response = error_response(
            exc.status, exc.type, exc.code, exc.message, exc.param, request_id, headers
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        fields["error_code"] = f"http_{exc.status}"
        response = _from_http_exception(exc, request_id)
    except Exception:
        log.exception(
            "unhandled error",
            extra={"request_id": request_id, "route": route_template(request)},
        )
        fields["error_code"] = "internal_error"
        response = error_response(
            500, "api_error", "internal_error", "an internal error occurred", None, request_id
        )
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
    elapsed = time.perf_counter() - started
    route = route_template(request)
    http_requests_total.labels(route=route, method=request.method, status=response.status).inc()
    http_request_duration_seconds.labels(route=route, method=request.method).observe(elapsed)
    quiet = route in _QUIET_ROUTES and response.status < 400
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "http request",
        extra={
            **fields,
            "request_id": request_id,
            "method": request.method,
            "route": route,
            "status": response.status,
            "duration_ms": round(elapsed * 1000, 2),
        },
    )
    return response
