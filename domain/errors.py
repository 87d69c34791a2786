"""The domain's exceptions. Every error a merchant can cause is a :class:`RequestError`."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error raised by :mod:`domain`."""


class RequestError(DomainError):
    """Bad input from a merchant: becomes a 4xx with a stable ``code`` and the bad ``param``.

    ``type`` follows Stripe's families: ``invalid_request_error`` for malformed or
    invalid parameters, ``authentication_error``, ``idempotency_error``,
    ``rate_limit_error``, ``card_error`` (a decline a payer can act on).
    """

    status = 400
    type = "invalid_request_error"

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


class UnprocessableError(RequestError):
    """Well-formed input that the business rules refuse (HTTP 422)."""

    status = 422
