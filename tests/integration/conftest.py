"""Every test here runs against the real stack: request it for each (fails if missing).

Shared module-scoped fixtures of the integration modules; a module with a different need
(another pool, an app with extra routes or a fake resolver) defines its own of the same
name, and the fixtures here that depend on it (``client`` on ``pool``) use that one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from ingress.app import create_app
from settings import Settings


@pytest.fixture(autouse=True)
def _needs_stack(stack: Settings) -> Settings:
    return stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # conftest hooks see every collected item: mark only this folder's
    for item in items:
        if "/tests/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A plain asyncpg pool (no codecs); fails the run (never skips) if unreachable."""
    try:
        pool = await asyncpg.create_pool(settings.database_dsn, min_size=1, max_size=4, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(f"PostgreSQL {settings.db_host}:{settings.db_port} unreachable: {exc!r}")
    yield pool
    await pool.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """A Redis client that answered PING; fails the run (never skips) if unreachable."""
    client = aioredis.Redis(
        host=settings.redis_host, port=settings.redis_port, db=settings.redis_db
    )
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        pytest.fail(f"Redis {settings.redis_host}:{settings.redis_port} unreachable: {exc!r}")
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    """The real ingress app in-process, started once the module's ``pool`` is up."""
    del pool  # the stack is checked and migrated first
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client
