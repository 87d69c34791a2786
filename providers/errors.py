"""The exceptions of :mod:`providers`, each classified like aiokafka's ``errors.py``.

Every class says two things about a failed provider call:

``outcome``
    What it tells us about the money, as a :class:`~domain.ports.ProviderOutcome`:
    ``NOT_SENT`` when the request certainly never reached the provider (connection
    refused, DNS, TLS handshake, connect timeout, or we refused to build it), and
    ``UNKNOWN`` when it may have been executed (timeout or reset after sending,
    a garbled or 5xx answer). ``UNKNOWN`` is resolved by a status inquiry, never by
    charging again.

``retriable``
    Whether repeating *the same call* (same URL, same body, same idempotency key)
    can succeed, as in aiokafka. It never licenses a new attempt with a new key:
    after an ``UNKNOWN`` the only safe next step is a status inquiry or a resend
    with the identical key, which the provider deduplicates.

Adapters catch :class:`ProviderError` at their boundary and turn it into a
:class:`~domain.ports.ChargeResult` (see :func:`providers.upi_core.result_from_error`);
callers of ``PaymentProvider`` methods never see these exceptions.
"""

from __future__ import annotations

from domain.ports import ProviderOutcome

__all__ = [
    "ProviderDisconnected",
    "ProviderError",
    "ProviderProtocolError",
    "ProviderRequestError",
    "ProviderServerError",
    "ProviderTimeout",
    "ProviderUnavailable",
]


class ProviderError(Exception):
    """Base class of every provider failure; subclasses fix ``outcome`` and ``retriable``."""

    retriable: bool = False
    outcome: ProviderOutcome = ProviderOutcome.UNKNOWN

    def __init__(self, message: str, *, provider: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.operation = operation


class ProviderUnavailable(ProviderError):  # noqa: N818 (names from the design)
    """No connection could be made (refused, DNS, TLS handshake, connect timeout).

    Nothing was written to the provider, so the request was certainly not executed.
    """

    retriable = True
    outcome = ProviderOutcome.NOT_SENT


class ProviderRequestError(ProviderError):
    """We refused to send: the request could not be built (missing VPA, bad amount, bad URL).

    Not executed, and sending it again unchanged cannot help.
    """

    retriable = False
    outcome = ProviderOutcome.NOT_SENT


class ProviderTimeout(ProviderError):  # noqa: N818 (names from the design)
    """No complete answer within the deadline after the connection was made: may have run."""

    retriable = True
    outcome = ProviderOutcome.UNKNOWN


class ProviderDisconnected(ProviderError):  # noqa: N818 (names from the design)
    """The connection was reset or closed after the request was (possibly) sent: may have run."""

    retriable = True
    outcome = ProviderOutcome.UNKNOWN


class ProviderProtocolError(ProviderError):
    """The provider answered something we cannot read (non-JSON, not an object, a redirect,
    an oversized body): it may have executed the request."""

    retriable = False
    outcome = ProviderOutcome.UNKNOWN


class ProviderServerError(ProviderError):
    """The provider answered 5xx: it failed somewhere, possibly after charging."""

    retriable = True
    outcome = ProviderOutcome.UNKNOWN

    def __init__(
        self, message: str, *, status_code: int, provider: str = "", operation: str = ""
    ) -> None:
        super().__init__(message, provider=provider, operation=operation)
        self.status_code = status_code
