"""Payment provider adapters behind :class:`domain.ports.PaymentProvider`.

One module per provider: pure request building and a closed response mapping plus a
thin client (:mod:`providers.upi_core`); one shared HTTP executor that classifies
failures as NOT_SENT or UNKNOWN (:mod:`providers.http`); classified errors
(:mod:`providers.errors`); the sandbox simulators as a real HTTP service
(:mod:`providers.simulator`, ``python -m providers.simulator``).
"""

from __future__ import annotations

from providers.registry import build_providers
from providers.upi_core import UpiCoreProvider

__all__ = ["UpiCoreProvider", "build_providers"]
