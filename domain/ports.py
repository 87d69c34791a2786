"""Ports: the interfaces the pure core needs from the outside world (``typing.Protocol``).

Adapters live in ``providers/`` (payment providers) and ``sinks/`` (storage). A test
may swap in a fake through the same interface; production wires real adapters in
one composition root.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class ProviderOutcome(StrEnum):
    """What a provider call tells us about the money; keep these apart, always."""

    APPROVED = "APPROVED"
    """The provider charged (captured) the payer."""
    DECLINED = "DECLINED"
    """The provider said no; no money moved."""
    PENDING = "PENDING"
    """Accepted, completion comes later (payer approval, callback or polling)."""
    UNKNOWN = "UNKNOWN"
    """The request may have been executed (timeout after sending, garbled answer):
    resolve by status inquiry, never by charging again."""
    NOT_SENT = "NOT_SENT"
    """Certainly not executed (connection refused before sending): safe to retry."""


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """One attempt to collect a payment through one provider."""

    payment_id: str
    attempt_no: int
    idempotency_key: str
    amount_paisa: int
    currency: str
    payment_method: str
    payment_details: Mapping[str, str]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """A provider's answer mapped onto our outcomes (closed mapping; unknown -> UNKNOWN)."""

    outcome: ProviderOutcome
    provider: str
    external_txn_id: str | None = None
    rrn: str | None = None
    approval_code: str | None = None
    decline_code: str | None = None
    decline_message: str | None = None
    raw_status: str | None = None
    retriable: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)


class PaymentProvider(Protocol):
    """A payment provider adapter (UPI Core, a card gateway, a wallet ...)."""

    name: str

    async def authorize(self, request: ChargeRequest) -> ChargeResult:
        """Ask the provider to collect ``request``; never raises for provider outcomes."""
        ...

    async def status(self, payment_id: str, idempotency_key: str) -> ChargeResult:
        """Status inquiry for an earlier attempt (resolves UNKNOWN)."""
        ...

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Ask the provider to refund ``request``; never raises for provider outcomes."""
        ...

    async def refund_status(self, refund_id: str, idempotency_key: str) -> RefundResult:
        """Status inquiry for an earlier refund (resolves UNKNOWN)."""
        ...

    async def health(self) -> bool:
        """True when the provider answers its health check."""
        ...


class RefundOutcome(StrEnum):
    """What a provider refund call tells us about the money (as :class:`ProviderOutcome`)."""

    PROCESSED = "PROCESSED"
    """The provider refunded: money went back to the payer."""
    FAILED = "FAILED"
    """The provider said no (or refused the request); no money moved."""
    PENDING = "PENDING"
    """Accepted, completion comes later (resolve by refund status inquiry)."""
    UNKNOWN = "UNKNOWN"
    """The refund may have been executed (timeout after sending, garbled answer):
    resolve by refund status inquiry, never by re-sending with a new key."""
    NOT_SENT = "NOT_SENT"
    """Certainly not executed (connection refused before sending): safe to retry
    with the same idempotency key."""


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """One refund of (part of) a captured payment through the provider that charged it."""

    refund_id: str
    payment_id: str
    idempotency_key: str
    amount_paisa: int
    currency: str
    payment_method: str
    provider_txn_id: str
    """The original charge's ``ChargeResult.external_txn_id``."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RefundResult:
    """A provider's refund answer mapped onto our outcomes (closed; unknown -> UNKNOWN).

    ``retriable`` means "sending the same refund again (same key) is safe and may
    succeed": true only for a retriable ``NOT_SENT``. ``extra`` carries diagnostics
    (HTTP status, provider code, transport error), never money.
    """

    outcome: RefundOutcome
    provider: str
    external_refund_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    raw_status: str | None = None
    retriable: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)
