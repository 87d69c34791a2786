"""The one HTTP executor every provider adapter uses (hyperswitch's shared executor).

Adapters only build a request and map an answer; :func:`execute` does the HTTP and
classifies every failure by what it means for the money:

* a connection that could not be made (:class:`aiohttp.ClientConnectorError`:
  refused, DNS, TLS; or the connect phase timing out) -> :class:`ProviderUnavailable`,
  ``NOT_SENT``;
* a timeout, reset or disconnect once the connection existed -> :class:`ProviderTimeout`
  / :class:`ProviderDisconnected`, ``UNKNOWN``;
* a redirect (never followed), a non-JSON body or a JSON body that is not an object ->
  :class:`ProviderProtocolError`, ``UNKNOWN``;
* a 5xx -> :class:`ProviderServerError`, ``UNKNOWN``, unless the provider contract
  gives that status a meaning (``passthrough_statuses``).

Why the connect phase gets its own, shorter timeout: aiohttp's ``total`` deadline
cannot tell us whether it fired before or after the connection was made. With
``connect`` strictly shorter than ``total``, a connect-phase timeout always surfaces
as :class:`aiohttp.ConnectionTimeoutError` (nothing sent), so any other timeout
happened after the connection existed and is treated as possibly sent.

Any :class:`aiohttp.ClientSession` works: per request this module sets the timeout,
``allow_redirects=False`` and ``raise_for_status=False``. Every call is recorded in
``provider_request_duration_seconds{provider, operation, outcome}`` where ``outcome``
is the transport verdict: ``2xx``/``4xx`` (or the passed-through ``5xx``) when the
provider answered with a JSON object, else ``NOT_SENT`` or ``UNKNOWN``.
"""

from __future__ import annotations

import json as jsonlib
import logging
import time
from collections.abc import Collection, Mapping
from typing import Any, Final

import aiohttp

from domain.ports import ProviderOutcome
from providers.errors import (
    ProviderDisconnected,
    ProviderError,
    ProviderProtocolError,
    ProviderRequestError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)
from sinks.metrics import provider_request_duration_seconds

__all__ = ["MAX_CONNECT_TIMEOUT_S", "MAX_RESPONSE_BYTES", "connect_timeout_for", "execute"]

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES: Final = 1 << 20
"""Provider answers are small JSON objects; anything bigger is a protocol error."""
MAX_CONNECT_TIMEOUT_S: Final = 3.0
"""Upper bound of the connect phase (pool wait + DNS + TCP + TLS)."""


def connect_timeout_for(timeout_s: float) -> float:
    """The connect-phase timeout for a call with overall deadline ``timeout_s``.

    Half the deadline, at most :data:`MAX_CONNECT_TIMEOUT_S`: always at least a
    second short of ``total`` once aiohttp rounds deadlines of 5 s and more up to
    whole seconds, so the connect timeout fires first during the connect phase.
    """
    return min(timeout_s / 2, MAX_CONNECT_TIMEOUT_S)


async def execute(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float,
    provider: str,
    operation: str,
    passthrough_statuses: Collection[int] = (),
) -> tuple[int, dict[str, Any]]:
    """Send one request to a provider and return ``(http_status, json_object)``.

    Returns for 1xx/2xx/4xx answers whose body is a JSON object, and for the 5xx
    statuses in ``passthrough_statuses``; raises a :class:`ProviderError` subclass
    otherwise (see the module docstring for the classification). ``provider`` and
    ``operation`` label the latency metric and the logs. Cancellation propagates
    unchanged (the call may have been sent: the caller must treat it as UNKNOWN).
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    timeout = aiohttp.ClientTimeout(total=timeout_s, connect=connect_timeout_for(timeout_s))
    started = time.perf_counter()
    outcome = ProviderOutcome.UNKNOWN.value
    try:
        status, body = await _send(
            session,
            method,
            url,
            json=json,
            headers=headers,
            client_timeout=timeout,
            passthrough_statuses=passthrough_statuses,
        )
        outcome = f"{status // 100}xx"
        return status, body
    except ProviderError as err:
        err.provider, err.operation = provider, operation
        outcome = err.outcome.value
        logger.warning(
            "provider call failed",
            extra={
                "provider": provider,
                "operation": operation,
                "error": type(err).__name__,
                "outcome": outcome,
                "detail": err.message,
            },
        )
        raise
    finally:
        provider_request_duration_seconds.labels(
            provider=provider, operation=operation, outcome=outcome
        ).observe(time.perf_counter() - started)


async def _send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    client_timeout: aiohttp.ClientTimeout,
    passthrough_statuses: Collection[int],
) -> tuple[int, dict[str, Any]]:
    try:
        async with session.request(
            method,
            url,
            json=json,
            headers=headers,
            timeout=client_timeout,
            allow_redirects=False,
            raise_for_status=False,
        ) as response:
            status = response.status
            raw = await _read_bounded(response)
    # Order matters: the connector errors (nothing sent) are subclasses of the
    # broader timeout / OS error families that mean "possibly sent".
    except aiohttp.ConnectionTimeoutError as exc:
        raise ProviderUnavailable(f"connect timed out: {method} {url}") from exc
    except aiohttp.ClientConnectorError as exc:
        raise ProviderUnavailable(f"could not connect: {method} {url}: {exc}") from exc
    except aiohttp.InvalidURL as exc:
        raise ProviderRequestError(f"invalid URL: {url}") from exc
    except TimeoutError as exc:
        raise ProviderTimeout(f"no answer within {client_timeout.total}s: {method} {url}") from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        raise ProviderDisconnected(
            f"connection lost after sending: {method} {url}: {type(exc).__name__}"
        ) from exc
    except aiohttp.ClientError as exc:
        raise ProviderProtocolError(
            f"unreadable answer: {method} {url}: {type(exc).__name__}"
        ) from exc

    if 300 <= status < 400:
        raise ProviderProtocolError(f"redirect {status} not followed: {method} {url}")
    if status >= 500 and status not in passthrough_statuses:
        raise ProviderServerError(f"server error {status}: {method} {url}", status_code=status)
    try:
        body = jsonlib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProviderProtocolError(f"non-JSON answer ({status}): {method} {url}") from exc
    if not isinstance(body, dict):
        raise ProviderProtocolError(f"answer is not a JSON object ({status}): {method} {url}")
    return status, body


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ProviderProtocolError(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
