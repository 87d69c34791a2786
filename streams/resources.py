"""Resources a worker's agents share: the PostgreSQL pool and the providers' HTTP session.

Opened lazily by the first agent that needs them (constructors do no IO), closed
when the app shuts down, after its consumer has stopped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import asyncpg

from domain.ports import PaymentProvider
from settings import Settings

log = logging.getLogger(__name__)


class WorkerResources:
    """Lazily opened connections of one worker process."""

    def __init__(self, settings: Settings) -> None:
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

                    pool = await asyncpg.create_pool(
                        self.settings.database_dsn,
                        min_size=1,
                        max_size=self.settings.db_max_open_conns,
                    )
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

    async def on_app_shutdown(self, app: Any, **kwargs: Any) -> None:
        """Close connections once the consumer has stopped (Faust ``on_before_shutdown``)."""
        if self._session is not None:
            await self._session.close()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=10)
            except TimeoutError:
                log.warning("postgres pool did not close in 10 s; terminating")
                self._pool.terminate()
