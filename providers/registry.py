"""Build the provider adapters, keyed by payment method, for the routing agent.

The one place that turns :class:`settings.Settings` into adapters; the composition
root passes in the shared :class:`aiohttp.ClientSession` (constructors do no IO).
"""

from __future__ import annotations

import aiohttp

from domain.ports import PaymentProvider
from domain.status import PaymentMethod
from providers.upi_core import UpiCoreProvider
from settings import Settings

__all__ = ["build_providers"]


def build_providers(
    settings: Settings, session: aiohttp.ClientSession
) -> dict[str, PaymentProvider]:
    """Return ``{payment_method: adapter}``, e.g. ``{"UPI": UpiCoreProvider(...)}``.

    Keys are :class:`domain.status.PaymentMethod` values; a method without an entry
    has no provider yet (cards, wallets and netbanking arrive with their simulators).
    """
    return {
        PaymentMethod.UPI.value: UpiCoreProvider(
            session, settings.upi_core_endpoint, settings.provider_timeout_s
        ),
    }
