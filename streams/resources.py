"""Resources a worker's agents share: the PostgreSQL pool and the providers' HTTP session.

A :class:`mode.Service` that the app starts FIRST and therefore stops LAST (mode
stops children in reverse order): agents finish or are cancelled before the pool
and the HTTP session close underneath them. Connections open lazily on first use,
so constructing it does no IO.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import asyncpg
from mode import Service

from domain.ports import PaymentProvider
from settings import Settings
from sinks.db import create_pool

log = logging.getLogger(__name__)


class WorkerResources(Service):
    """Lazily opened connections of one worker process."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self._lock = asyncio.Lock()
        self._pool: asyncpg.Pool | None = None
        self._session: aiohttp.ClientSession | None = None
        self._providers: dict[str, PaymentProvider] | None = None

    async def pool(self) -> asyncpg.Pool:
        """The PostgreSQL pool, with migrations applied on first use."""
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    from sinks.migrate import apply_migrations

                    pool = await create_pool(self.settings, min_size=1)
                    await apply_migrations(pool)
                    self._pool = pool
        return self._pool

    async def providers(self) -> dict[str, PaymentProvider]:
        """Provider adapters by payment method, sharing one HTTP session."""
        if self._providers is None:
            async with self._lock:
                if self._providers is None:
                    from providers import build_providers

                    self._session = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=300)
                    )
                    self._providers = build_providers(self.settings, self._session)
        return self._providers

    async def on_stop(self) -> None:
        """Close connections; runs after every agent has stopped."""
        if self._session is not None:
            await self._session.close()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=10)
            except TimeoutError:
                log.warning("postgres pool did not close in 10 s; terminating")
                self._pool.terminate()
