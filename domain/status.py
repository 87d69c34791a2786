"""Payment and refund status values and their business meaning.

The lifecycle transition table lives in :mod:`domain.lifecycle`; this module only
names the states. Each value's docstring is what the API documentation says about it.
"""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    """Where a payment is in its life, as merchants see it."""

    CREATED = "CREATED"
    """Accepted by the API and durably queued; not yet screened or sent to a provider."""
    PENDING = "PENDING"
    """Being processed: screened and/or sent to the provider, outcome not yet known."""
    REQUIRES_ACTION = "REQUIRES_ACTION"
    """Waiting for the payer: a 3DS challenge or a UPI intent/collect to approve."""
    AUTHORIZED = "AUTHORIZED"
    """Funds are held on the card; capture to collect them (manual capture only)."""
    SUCCESS = "SUCCESS"
    """Captured: the money is collected and will be settled to the merchant."""
    FAILED = "FAILED"
    """Declined or blocked; no money moved. ``failure.code`` says why. Terminal."""
    CANCELLED = "CANCELLED"
    """Cancelled by the merchant before completion; no money moved. Terminal."""
    EXPIRED = "EXPIRED"
    """The payer did not complete it before ``expires_at``; no money moved. Terminal."""
    UNKNOWN = "UNKNOWN"
    """The provider's outcome is not known (timeout after sending). We resolve it by
    status inquiry, never by charging again; it ends SUCCESS or FAILED."""
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    """Captured, and part of the amount has been refunded."""
    REFUNDED = "REFUNDED"
    """Captured, and the whole amount has been refunded. Terminal."""

    @property
    def is_terminal(self) -> bool:
        """True when nothing can change this payment's outcome any more."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {PaymentStatus.FAILED, PaymentStatus.CANCELLED, PaymentStatus.EXPIRED, PaymentStatus.REFUNDED}
)

FINAL_OUTCOMES = frozenset(
    {
        PaymentStatus.SUCCESS,
        PaymentStatus.FAILED,
        PaymentStatus.CANCELLED,
        PaymentStatus.EXPIRED,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
    }
)
"""Statuses after which the payment attempt is over (money collected or not)."""


class PaymentMethod(StrEnum):
    """How the payer pays."""

    UPI = "UPI"
    CARD = "CARD"
    WALLET = "WALLET"
    NETBANKING = "NETBANKING"


class FraudAction(StrEnum):
    """What the fraud engine decided before a provider is called."""

    ALLOW = "ALLOW"
    CHALLENGE = "CHALLENGE"
    REVIEW = "REVIEW"
    BLOCK = "BLOCK"
