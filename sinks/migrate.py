"""Apply the numbered SQL migrations in ``sinks/migrations`` exactly once each.

Safe to run from several workers and ingress replicas at once: a transaction-level
advisory lock serialises them, and each file is recorded in ``schema_migrations``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import asyncpg

from settings import Settings
from sinks.db import create_pool

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_ADVISORY_LOCK_ID = 0x7061797374726561  # "paystrea"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """The migration files in apply order; refuses badly named files."""
    files = sorted(directory.glob("*.sql"))
    for path in files:
        if not _NAME.match(path.name):
            raise ValueError(f"migration {path.name} is not named NNN_description.sql")
    return files


async def apply_migrations(pool: asyncpg.Pool, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    applied_now: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _ADVISORY_LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
        for path in migration_files(directory):
            if path.name in done:
                continue
            await conn.execute(path.read_text(encoding="utf-8"))
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied_now.append(path.name)
    if applied_now:
        log.info("applied migrations", extra={"migrations": ",".join(applied_now)})
    return applied_now


async def _main(settings: Settings) -> list[str]:
    pool = await create_pool(settings, min_size=1, max_size=2)
    try:
        return await apply_migrations(pool)
    finally:
        await pool.close()


def main(settings: Settings) -> int:
    """``paystream db-migrate``: apply pending migrations and say which."""
    applied = asyncio.run(_main(settings))
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0
