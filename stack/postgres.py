"""PostgreSQL: our own cluster (initdb) under ``data_dir/postgres``, not Debian's.

Layout: ``pgdata/`` (the cluster; ``postmaster.pid`` is the pid file),
``postgres.log`` and ``run/`` (the unix socket directory). TCP listens on 127.0.0.1
with scram-sha-256 password auth; the unix socket trusts local connections and is
only used to create the app role and database. PostgreSQL refuses to run as root, so
as root every server command runs as the ``postgres`` OS user via ``runuser``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import asyncpg

from settings import Settings
from stack.common import (
    ServiceStatus,
    cmdline,
    ensure_dir,
    ensure_loopback,
    is_root,
    pid_alive,
    refuse_foreign,
    service_status,
    tail,
    wait_ready,
)
from stack.errors import StackError

__all__ = ["NAME", "bin_dir", "down", "status", "up"]

NAME: Final = "postgres"
SUPERUSER: Final = "postgres"
OS_USER: Final = "postgres"
START_TIMEOUT_S: Final = 60
STOP_TIMEOUT_S: Final = 60
_PG_ROOT: Final = Path("/usr/lib/postgresql")
_INCLUDE: Final = "include_if_exists = 'paystream.conf'"

log = logging.getLogger("stack")


def bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding initdb, or None."""
    candidates: list[tuple[int, Path]] = []
    if _PG_ROOT.is_dir():
        for version in _PG_ROOT.iterdir():
            if version.name.isdigit() and (version / "bin" / "initdb").is_file():
                candidates.append((int(version.name), version / "bin"))
    return max(candidates)[1] if candidates else None


def _bin(name: str) -> str:
    found = bin_dir()
    if found is None:
        raise StackError(
            "postgres server not found: install it with `apt-get install -y postgresql` "
            "(or run `make stack-up` as root)"
        )
    return str(found / name)


def _home(settings: Settings) -> Path:
    return settings.data_dir / NAME


def _pgdata(settings: Settings) -> Path:
    return _home(settings) / "pgdata"


def _socket_dir(settings: Settings) -> Path:
    return _home(settings) / "run"


def _log_path(settings: Settings) -> Path:
    return _home(settings) / "postgres.log"


def _as_server_user(argv: Sequence[str]) -> list[str]:
    """Run as the ``postgres`` OS user when we are root (PostgreSQL refuses root)."""
    return ["runuser", "-u", OS_USER, "--", *argv] if is_root() else list(argv)


def _run(argv: Sequence[str], what: str, settings: Settings) -> None:
    result = subprocess.run(
        _as_server_user(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output = " | ".join(
            line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()
        )
        raise StackError(
            f"postgres: {what} failed (exit {result.returncode}): {output[-600:]}; "
            f"log: {tail([_log_path(settings)])}"
        )


def _postmaster(settings: Settings) -> tuple[int | None, int | None]:
    """(pid, port) from ``postmaster.pid`` when that postmaster is alive, else (None, None)."""
    try:
        lines = (_pgdata(settings) / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None, None
    if len(lines) < 4 or not lines[0].strip().isdigit():
        return None, None
    pid = int(lines[0])
    if not pid_alive(pid) or "postgres" not in cmdline(pid):
        return None, None
    port = int(lines[3]) if lines[3].strip().isdigit() else None
    return pid, port


def _prepare_home(settings: Settings) -> None:
    home = _home(settings)
    ensure_dir(settings.data_dir)
    ensure_dir(home, 0o700)
    ensure_dir(_socket_dir(settings), 0o700)
    if is_root():
        try:
            owner = pwd.getpwnam(OS_USER)
        except KeyError:
            raise StackError(
                f"postgres: the OS user {OS_USER!r} does not exist (reinstall postgresql)"
            ) from None
        for path in (home, _socket_dir(settings)):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        if _pgdata(settings).exists():
            os.chown(_pgdata(settings), owner.pw_uid, owner.pw_gid)
        probe = subprocess.run(
            _as_server_user(["test", "-w", str(home)]), stdin=subprocess.DEVNULL, check=False
        )
        if probe.returncode != 0:
            raise StackError(
                f"postgres: the {OS_USER} OS user cannot reach {home}; set PAYSTREAM_DATA_DIR "
                "to a directory every user can traverse (e.g. under /var/tmp)"
            )


def _initdb(settings: Settings) -> None:
    pgdata = _pgdata(settings)
    log.info("initdb %s", pgdata)
    _run(
        [
            _bin("initdb"),
            "--pgdata",
            str(pgdata),
            "--username",
            SUPERUSER,
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--auth-local",
            "trust",
            "--auth-host",
            "scram-sha-256",
            "--no-sync",
        ],
        "initdb",
        settings,
    )
    conf = pgdata / "postgresql.conf"
    text = conf.read_text()
    if _INCLUDE not in text:
        conf.write_text(text + f"\n# paystream: settings generated by `stack up`\n{_INCLUDE}\n")


def _write_conf(settings: Settings) -> None:
    conf = _pgdata(settings) / "paystream.conf"
    conf.write_text(
        "# Generated by `paystream stack up` from settings; edits are overwritten.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {settings.db_port}\n"
        f"unix_socket_directories = '{_socket_dir(settings)}'\n"
        "unix_socket_permissions = 0700\n"
        "password_encryption = 'scram-sha-256'\n"
        "max_connections = 200\n"
        "shared_buffers = 128MB\n"
        "logging_collector = off\n"
        "log_line_prefix = '%m [%p] %q%u@%d '\n"
        "log_min_duration_statement = 1000\n"
        "timezone = 'UTC'\n"
    )
    if is_root():
        owner = pwd.getpwnam(OS_USER)
        os.chown(conf, owner.pw_uid, owner.pw_gid)


def _start(settings: Settings) -> None:
    """initdb if needed, write the config, ``pg_ctl start -w`` (blocking)."""
    _prepare_home(settings)
    if not (_pgdata(settings) / "PG_VERSION").is_file():
        _initdb(settings)
    _write_conf(settings)
    log.info("starting postgres on port %d", settings.db_port)
    _run(
        [
            _bin("pg_ctl"),
            "--pgdata",
            str(_pgdata(settings)),
            "--log",
            str(_log_path(settings)),
            "--wait",
            "--timeout",
            str(START_TIMEOUT_S),
            "--silent",
            "start",
        ],
        "pg_ctl start",
        settings,
    )


async def _app_select_one(settings: Settings) -> None:
    conn = await asyncpg.connect(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_username,
        password=settings.db_password.reveal(),
        database=settings.db_database,
        timeout=5,
    )
    try:
        if await conn.fetchval("SELECT 1") != 1:
            raise StackError("postgres: SELECT 1 did not return 1")
    finally:
        await conn.close()


async def _bootstrap(settings: Settings) -> None:
    """Create (or re-password) the app role and create its database, via the socket."""
    conn = await asyncpg.connect(
        host=str(_socket_dir(settings)),
        port=settings.db_port,
        user=SUPERUSER,
        database="postgres",
        timeout=10,
    )
    try:
        role, db = settings.db_username, settings.db_database
        password = settings.db_password.reveal()
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        statement = await conn.fetchval(
            f"SELECT format('{verb} ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
            role,
            password,
        )
        await conn.execute(statement)
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
            log.info("creating database %s owned by %s", db, role)
            create = await conn.fetchval(
                "SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text)", db, role
            )
            await conn.execute(create)
    finally:
        await conn.close()


async def _ready(settings: Settings) -> None:
    try:
        await _app_select_one(settings)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidCatalogNameError):
        await _bootstrap(settings)
        await _app_select_one(settings)


def preflight(settings: Settings) -> None:
    """Fail before starting anything: a local host, and a free port unless ours runs."""
    ensure_loopback(NAME, settings.db_host, "DB_HOST")
    if _postmaster(settings)[0] is None:
        refuse_foreign(NAME, settings.db_host, settings.db_port, "DB_PORT", _home(settings))


async def up(settings: Settings) -> None:
    """Start our cluster unless it runs; make sure the app role and database exist."""
    preflight(settings)
    port = settings.db_port
    pid, running_port = _postmaster(settings)
    if pid is not None and running_port not in (None, port):
        raise StackError(
            f"postgres: our cluster runs on port {running_port} but DB_PORT={port}; "
            "run `stack down` first"
        )
    if pid is None:
        refuse_foreign(NAME, settings.db_host, port, "DB_PORT", _home(settings))
        await asyncio.to_thread(_start, settings)
    await wait_ready(
        NAME,
        lambda: _ready(settings),
        alive=lambda: _postmaster(settings)[0] is not None,
        within_s=START_TIMEOUT_S,
        logs=[_log_path(settings)],
    )


def down(settings: Settings) -> bool:
    """``pg_ctl stop -m fast``. True if our cluster was running."""
    pid, _ = _postmaster(settings)
    if pid is None:
        return False
    log.info("stopping postgres (pid %d)", pid)
    _run(
        [
            _bin("pg_ctl"),
            "--pgdata",
            str(_pgdata(settings)),
            "--mode",
            "fast",
            "--wait",
            "--timeout",
            str(STOP_TIMEOUT_S),
            "--silent",
            "stop",
        ],
        "pg_ctl stop",
        settings,
    )
    return True


def status(settings: Settings) -> ServiceStatus:
    """up / starting / down / foreign, with the postmaster pid when it is ours."""
    pid, _ = _postmaster(settings)
    return service_status(NAME, settings.db_host, settings.db_port, pid, _home(settings))
