"""Process, port, file and package helpers shared by the service modules.

Nothing here reads environment variables: configuration comes from
:class:`settings.Settings`, passed in by the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from stack.errors import StackError

__all__ = [
    "LOOPBACK_HOSTS",
    "ServiceStatus",
    "State",
    "apt_install",
    "cmdline",
    "ensure_dir",
    "ensure_loopback",
    "is_root",
    "listening_pids",
    "pid_alive",
    "port_open",
    "port_owner",
    "read_pid",
    "refuse_foreign",
    "refuse_other_listener",
    "require_binary",
    "service_status",
    "spawn_daemon",
    "stop_daemon",
    "tail",
    "terminate",
    "wait_daemon_ready",
    "wait_ready",
]

log = logging.getLogger("stack")

State = Literal["up", "down", "starting", "foreign"]
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost"})
_TCP_LISTEN: Final = "0A"


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What ``status`` knows about one service.

    ``state`` is ``up`` (ours, answering on its port), ``down`` (not running),
    ``starting`` (our process lives but the port does not answer yet) or
    ``foreign`` (the port answers but the process is not ours).
    """

    name: str
    state: State
    host: str
    port: int
    pid: int | None
    detail: str = ""

    def line(self) -> str:
        """One human-readable line, e.g. ``kafka     up    127.0.0.1:9092   pid 4242``."""
        pid = f"pid {self.pid}" if self.pid is not None else "-"
        text = f"{self.name:<9} {self.state:<8} {self.host}:{self.port:<6} {pid:<10}"
        return f"{text} {self.detail}".rstrip()


def is_root() -> bool:
    """True when running with euid 0 (we may apt-get install and must drop to postgres)."""
    return os.geteuid() == 0


def ensure_loopback(service: str, host: str, variable: str) -> None:
    """The stack only runs services on this machine: refuse a remote host."""
    if host not in LOOPBACK_HOSTS:
        raise StackError(
            f"{service}: {variable} host {host!r} is not local; the stack runs {service} on "
            "127.0.0.1 only (point it at 127.0.0.1 or manage that server yourself)"
        )


def require_binary(name: str, hint: str) -> str:
    """The absolute path of ``name`` on PATH, or a one-line StackError with ``hint``."""
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found: {hint}")
    return found


def ensure_dir(path: Path, mode: int = 0o755) -> Path:
    """Create ``path`` and missing parents, each with ``mode`` (ignoring the umask)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=mode)
            directory.chmod(mode)
    if not path.is_dir():
        raise StackError(f"{path} exists and is not a directory")
    return path


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening_pids(port: int) -> set[int]:
    """The pids holding a listening TCP socket on ``port`` (best effort, via /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[3] != _TCP_LISTEN:
                continue
            if int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return set()
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        pids.add(int(proc.name))
                        break
        except OSError:
            continue
    return pids


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ('' if it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def port_owner(port: int) -> str:
    """Who listens on ``port``, for an error message: ``pid 12 (redis-server ...)``."""
    pids = sorted(listening_pids(port))
    if not pids:
        return "another process"
    return ", ".join(f"pid {pid} ({cmdline(pid)[:80] or '?'})" for pid in pids)


def refuse_foreign(service: str, host: str, port: int, variable: str, home: Path) -> None:
    """StackError when ``port`` answers although our ``service`` is not running."""
    if not port_open(host, port):
        return
    owner = port_owner(port)
    hint = ""
    if service == "postgres" and ("/etc/postgresql" in owner or "/var/lib/postgresql" in owner):
        hint = " (Debian's own cluster: `pg_ctlcluster <version> main stop`)"
    raise StackError(
        f"{service}: port {port} is in use by {owner}, not by this stack's {service} "
        f"({home}); stop it{hint} or set {variable}"
    )


def refuse_other_listener(service: str, what: str, host: str, port: int, pid: int) -> None:
    """StackError when ``port`` answers but our running ``pid`` does not hold it."""
    if port_open(host, port) and pid not in listening_pids(port):
        raise StackError(
            f"{service}: our {what} (pid {pid}) is not the one on port {port} "
            f"({port_owner(port)}); run `stack down` and retry"
        )


def service_status(
    service: str, host: str, port: int, pid: int | None, home: Path
) -> ServiceStatus:
    """up / starting / down / foreign, from our ``pid`` (None when ours is not running)."""
    answering = port_open(host, port)
    if pid is not None:
        state: State = "up" if answering else "starting"
        return ServiceStatus(service, state, host, port, pid, str(home))
    if answering:
        return ServiceStatus(service, "foreign", host, port, None, port_owner(port))
    return ServiceStatus(service, "down", host, port, None)


def read_pid(path: Path) -> int | None:
    """The pid on the first line of ``path``, or None."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` runs (a zombie, exited but not yet reaped, counts as dead)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in {"Z", "X"}


def terminate(pid: int, name: str, timeout: float) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` seconds, then SIGKILL it."""
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    log.warning("%s (pid %d) ignored SIGTERM for %.0fs; sending SIGKILL", name, pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    raise StackError(f"{name} (pid {pid}) survived SIGKILL")


def stop_daemon(name: str, pid: int | None, pid_path: Path, timeout: float) -> bool:
    """Stop our daemon ``pid`` (see :func:`terminate`) and remove its pid file.
    True if one was running."""
    if pid is None:
        pid_path.unlink(missing_ok=True)
        return False
    log.info("stopping %s (pid %d)", name, pid)
    terminate(pid, name, timeout)
    pid_path.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own child (started by this very process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def tail(paths: Sequence[Path], lines: int = 6) -> str:
    """The last non-empty ``lines`` of the first existing log files, joined by ' | '."""
    collected: list[str] = []
    for path in paths:
        try:
            with path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 16384))
                text = handle.read().decode(errors="replace")
        except OSError:
            continue
        collected.extend(line.strip()[:240] for line in text.splitlines() if line.strip())
    if not collected:
        return "(no log output)"
    return " | ".join(collected[-lines:])


def spawn_daemon(
    argv: Sequence[str], *, log_path: Path, pid_path: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, output appended to ``log_path``, pid to ``pid_path``."""
    with log_path.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    pid_path.write_text(f"{process.pid}\n")
    return process


async def wait_ready(
    name: str,
    probe: Callable[[], Awaitable[None]],
    *,
    alive: Callable[[], bool],
    within_s: float,
    logs: Sequence[Path],
) -> None:
    """Retry ``probe`` until it succeeds; fail fast if the process dies, or after ``within_s``."""
    deadline = time.monotonic() + within_s
    last: BaseException | None = None
    while True:
        if not alive():
            raise StackError(f"{name} exited during startup; last log lines: {tail(logs)}")
        try:
            await asyncio.wait_for(probe(), timeout=max(1.0, min(10.0, within_s / 3)))
            return
        except Exception as exc:
            last = exc
        if time.monotonic() >= deadline:
            reason = f"{type(last).__name__}: {last}" if last else "no answer"
            raise StackError(
                f"{name} did not answer within {within_s:.0f}s ({reason}); "
                f"last log lines: {tail(logs)}"
            )
        await asyncio.sleep(0.25)


async def wait_daemon_ready(
    name: str,
    probe: Callable[[], Awaitable[None]],
    pid: int,
    *,
    within_s: float,
    logs: Sequence[Path],
) -> None:
    """:func:`wait_ready` for a daemon we know by its ``pid``."""
    await wait_ready(name, probe, alive=lambda: pid_alive(pid), within_s=within_s, logs=logs)


_POLICY_RC_D: Final = Path("/usr/sbin/policy-rc.d")


def apt_install(packages: Sequence[str], *, reason: str, log_path: Path) -> None:
    """``apt-get install -y packages`` as root, without letting Debian start their services.

    A temporary ``policy-rc.d`` (exit 101) keeps postinst scripts from starting the
    distribution's own PostgreSQL cluster or Redis server on the default ports.
    """
    wanted = " ".join(packages)
    if not is_root():
        raise StackError(
            f"{reason}: run `sudo apt-get install -y {wanted}` (not root, cannot install it)"
        )
    if shutil.which("apt-get") is None:
        raise StackError(f"{reason} and apt-get is missing: install {wanted} by hand")
    log.info("installing %s with apt-get (first run on this machine)", wanted)
    ensure_dir(log_path.parent)
    installed_policy = False
    if not _POLICY_RC_D.exists():
        _POLICY_RC_D.write_text("#!/bin/sh\n# paystream stack: no service starts\nexit 101\n")
        _POLICY_RC_D.chmod(_POLICY_RC_D.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP)
        installed_policy = True
    try:
        with log_path.open("ab") as out:
            for argv in (
                ["apt-get", "update"],
                [
                    "apt-get",
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "-o",
                    "DPkg::Lock::Timeout=300",
                    *packages,
                ],
            ):
                result = subprocess.run(
                    ["env", "DEBIAN_FRONTEND=noninteractive", *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
                if result.returncode != 0:
                    raise StackError(
                        f"`{' '.join(argv)}` failed (exit {result.returncode}); "
                        f"last lines of {log_path}: {tail([log_path])}"
                    )
    finally:
        if installed_policy:
            _POLICY_RC_D.unlink(missing_ok=True)
