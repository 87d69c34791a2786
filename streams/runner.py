"""``paystream run``: the whole service in the foreground, for ``make run``.

Starts the provider simulator, N workers and M ingress replicas as child processes
(each with its own event loop), prints where it serves, and on Ctrl-C or SIGTERM
stops them in reverse order, SIGTERM first and SIGKILL after a grace period. If a
child dies, the others are stopped and the exit code says so. The same
:class:`ServiceProcess` runs the service in the end-to-end tests and benchmarks.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from settings import Settings

GRACE_S = 30.0


@dataclass
class ServiceProcess:
    """One supervised child process running a ``paystream`` subcommand."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str] | None = None
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    def start(self) -> ServiceProcess:
        """Start ``python -m cli <command>``; output goes to ``log_path`` if given."""
        argv = [sys.executable, "-m", "cli", *self.command]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            argv,
            env=dict(self.env) if self.env is not None else None,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
        )
        return self

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        """Send ``signum`` if the process runs."""
        if self.alive and self.proc is not None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s; returns the exit code or None if still running."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float = GRACE_S) -> float:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; returns seconds taken to exit."""
        started = time.monotonic()
        self.signal(signal.SIGTERM)
        if self.wait(grace_s) is None and self.proc is not None:
            print(f"{self.name} did not stop in {grace_s:.0f} s; killing it", file=sys.stderr)
            self.proc.kill()
            self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive and self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def wait_http_ok(url: str, timeout_s: float = 60.0, process: ServiceProcess | None = None) -> None:
    """Poll ``url`` until it answers 2xx; raise ``TimeoutError`` (or if ``process`` dies)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.proc is not None and not process.alive:
            raise RuntimeError(f"{process.name} exited with {process.proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if 200 <= response.status < 300:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer 2xx within {timeout_s:.0f} s ({last})")


def service_processes(settings: Settings, workers: int, ingress: int) -> list[ServiceProcess]:
    """The processes of one paystream deployment, in start order."""
    children = [ServiceProcess("simulator", ["simulator"])]
    for index in range(workers):
        port = settings.metrics_port + 1 + index if settings.enable_metrics else 0
        children.append(
            ServiceProcess(f"worker-{index + 1}", ["worker", "--metrics-port", str(port)])
        )
    # ingress replicas share SERVER_PORT (SO_REUSEPORT): the kernel spreads connections
    children += [ServiceProcess(f"ingress-{i + 1}", ["ingress"]) for i in range(ingress)]
    return children


def main(settings: Settings, argv: list[str] | None = None) -> int:
    """Run simulator, workers and ingress until interrupted."""
    parser = argparse.ArgumentParser(prog="paystream run")
    parser.add_argument("--workers", type=int, default=settings.workers)
    parser.add_argument("--ingress", type=int, default=settings.ingress_replicas)
    args = parser.parse_args(argv or [])
    children = service_processes(settings, max(1, args.workers), max(1, args.ingress))
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for child in children:
        child.start()
    exit_code = 0
    try:
        wait_http_ok(f"http://127.0.0.1:{settings.server_port}/health", 60, children[-1])
        print(
            f"paystream is running: API on http://localhost:{settings.server_port}"
            f" ({args.ingress} ingress, {args.workers} worker(s)); Ctrl-C stops it.",
            flush=True,
        )
    except (TimeoutError, RuntimeError) as exc:
        print(f"paystream did not start: {exc}", file=sys.stderr)
        stopping, exit_code = True, 1
    while not stopping:
        for child in children:
            if not child.alive:
                code = child.proc.returncode if child.proc else "?"
                print(f"{child.name} exited with {code}; stopping", file=sys.stderr)
                stopping, exit_code = True, 1
                break
        time.sleep(0.5)
    for child in reversed(children):
        child.signal(signal.SIGTERM)
    for child in reversed(children):
        child.stop()
    return exit_code
