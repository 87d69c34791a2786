"""The one way to open PostgreSQL: every pool of every process is built here.

JSON and JSONB columns are encoded and decoded by the driver (Python dicts in,
dicts out), so no caller serialises JSON by hand and no value is encoded twice.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from settings import Settings

QUERY_TIMEOUT_S = 5.0


async def init_connection(conn: asyncpg.Connection) -> None:
    """Per-connection setup: JSON codecs."""
    for pg_type in ("json", "jsonb"):
        await conn.set_type_codec(
            pg_type, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


def pool_kwargs(
    settings: Settings, *, min_size: int = 0, max_size: int | None = None
) -> dict[str, Any]:
    """Arguments for ``asyncpg.create_pool`` (``min_size=0``: creating it does no IO)."""
    return {
        "dsn": settings.database_dsn,
        "min_size": min_size,
        "max_size": max_size or settings.db_max_open_conns,
        "ssl": settings.db_ssl_mode,
        "timeout": QUERY_TIMEOUT_S,
        "command_timeout": QUERY_TIMEOUT_S * 6,
        "init": init_connection,
    }


async def create_pool(
    settings: Settings, *, min_size: int = 0, max_size: int | None = None
) -> asyncpg.Pool:
    """A connection pool with the project's codecs and timeouts."""
    return await asyncpg.create_pool(**pool_kwargs(settings, min_size=min_size, max_size=max_size))
