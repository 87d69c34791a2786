"""Every test here runs against the real stack: request it for each (fails if missing).

Shared fixtures of the e2e modules. A module tunes them with module-level constants:
``SERVICE_ENV`` (environment overrides for its service processes) and ``HTTP_TIMEOUT``
(the client timeout of ``http``). Each module's service logs to its own directory,
``<data dir>/test-logs/<module name without test_, hyphenated>``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import asyncpg
import pytest

from ingress.auth import mint_token
from settings import Settings
from tests.support.pipeline import Service, service_env


@pytest.fixture(autouse=True)
def _needs_stack(stack: Settings) -> Settings:
    return stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # conftest hooks see every collected item: mark only this folder's
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


def _log_name(module_name: str) -> str:
    """``tests.e2e.test_merchant_api`` -> ``merchant-api``."""
    return module_name.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")


@pytest.fixture(scope="module")
def service(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Service]:
    """Simulator, worker and ingress for the module, with its ``SERVICE_ENV`` overrides."""
    log_dir = settings.data_dir / "test-logs" / _log_name(request.module.__name__)
    overrides: dict[str, str] = getattr(request.module, "SERVICE_ENV", {})
    running = Service(settings, log_dir, service_env(**overrides)).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def http(request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession]:
    timeout = getattr(request.module, "HTTP_TIMEOUT", aiohttp.ClientTimeout(total=30))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(settings.database_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def token(settings: Settings) -> str:
    """A fresh merchant's bearer token."""
    return mint_token(settings, f"merchant-{uuid.uuid4()}")


@pytest.fixture
def merchant(token: str) -> dict[str, str]:
    """The ``Authorization`` header of a fresh merchant (the one of ``token``)."""
    return {"Authorization": f"Bearer {token}"}
