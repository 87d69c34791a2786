"""Bring the local stack (Kafka, PostgreSQL, Redis) up, down, or report its status.

``up`` is idempotent: a service that is ours and answers is left alone (same pid);
the three start in parallel, each waits until it really answers (a Kafka metadata
round trip, ``SELECT 1`` as the app user, Redis ``PING``). Missing Debian packages
(postgresql, redis-server) are installed with apt-get when we are root.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Final

from settings import Settings
from stack import kafka, postgres, redis
from stack.common import ServiceStatus, apt_install, ensure_dir, pid_alive, read_pid
from stack.errors import StackError

__all__ = ["SERVICES", "clean", "down", "ensure_system_packages", "status", "up", "up_async"]

SERVICES: Final[tuple[ModuleType, ...]] = (kafka, postgres, redis)

log = logging.getLogger("stack")


def ensure_system_packages(settings: Settings) -> None:
    """apt-get install postgresql / redis-server when their binaries are missing."""
    missing: list[str] = []
    if postgres.bin_dir() is None:
        missing.append("postgresql")
    if shutil.which(redis.BINARY) is None:
        missing.append("redis-server")
    if not missing:
        return
    apt_install(
        missing,
        reason=f"{' and '.join(missing)} not installed",
        log_path=settings.data_dir / "apt.log",
    )
    _stop_distribution_services()
    if postgres.bin_dir() is None or shutil.which(redis.BINARY) is None:
        raise StackError(f"apt-get installed {' '.join(missing)} but a binary is still missing")


def _stop_distribution_services() -> None:
    """Debian may start its own cluster (5432) and redis (6379) on install: stop them."""
    for cluster in sorted(Path("/etc/postgresql").glob("*/main")):
        with contextlib.suppress(OSError):
            subprocess.run(
                ["pg_ctlcluster", cluster.parent.name, "main", "stop"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
    pid = read_pid(Path("/run/redis/redis-server.pid"))
    if pid is not None and pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _preflight(settings: Settings) -> None:
    for service in SERVICES:
        service.preflight(settings)


@contextlib.asynccontextmanager
async def _profile_lock(settings: Settings) -> AsyncIterator[None]:
    """One ``up``/``down`` at a time per data dir (two `make test` runs may race)."""
    ensure_dir(settings.data_dir)
    with (settings.data_dir / ".stack.lock").open("a") as handle:
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def up_async(settings: Settings) -> list[ServiceStatus]:
    """Start every service not yet up (in parallel); wait until each answers."""
    async with _profile_lock(settings):
        ensure_system_packages(settings)
        _preflight(settings)
        results = await asyncio.gather(
            *(service.up(settings) for service in SERVICES), return_exceptions=True
        )
    failures = [
        str(result) if isinstance(result, StackError) else f"{type(result).__name__}: {result}"
        for result in results
        if isinstance(result, BaseException)
    ]
    if failures:
        raise StackError("; ".join(failures))
    return status(settings)


def up(settings: Settings) -> list[ServiceStatus]:
    """Synchronous :func:`up_async` (not from inside a running event loop)."""
    return asyncio.run(up_async(settings))


def down(settings: Settings) -> list[ServiceStatus]:
    """Stop every service of this profile (in parallel); a no-op for those not running."""
    return asyncio.run(_down_locked(settings))


async def _down_locked(settings: Settings) -> list[ServiceStatus]:
    async with _profile_lock(settings):
        return await asyncio.to_thread(_down, settings)


def _down(settings: Settings) -> list[ServiceStatus]:
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
        futures = [pool.submit(service.down, settings) for service in SERVICES]
        for future in futures:
            try:
                future.result()
            except StackError as exc:
                errors.append(str(exc))
    if errors:
        raise StackError("; ".join(errors))
    return status(settings)


def status(settings: Settings) -> list[ServiceStatus]:
    """One :class:`ServiceStatus` per service, in a fixed order (kafka, postgres, redis)."""
    return [service.status(settings) for service in SERVICES]


def clean(settings: Settings) -> list[ServiceStatus]:
    """``down``, then delete what the stack wrote under ``data_dir`` (and it, if empty)."""
    statuses = down(settings)
    data_dir = settings.data_dir
    for name in (kafka.NAME, postgres.NAME, redis.NAME):
        shutil.rmtree(data_dir / name, ignore_errors=True)
    (data_dir / "apt.log").unlink(missing_ok=True)
    (data_dir / ".stack.lock").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        data_dir.rmdir()
    log.info("removed the stack's data under %s", data_dir)
    return statuses
