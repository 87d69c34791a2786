"""``paystream run``: the whole service in the foreground, for ``make run``.

Starts the provider simulator, N workers and M ingress processes as child
processes (so each gets its own event loop and core), prints where it serves, and
on Ctrl-C or SIGTERM stops them in reverse order, each with SIGTERM then a grace
period. If any child dies, the others are stopped and the exit code says so.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from settings import Settings

GRACE_S = 30.0


@dataclass
class Child:
    """A supervised child process."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None


def _children(settings: Settings, workers: int, ingress: int) -> list[Child]:
    exe = [sys.executable, "-m", "cli"]
    children = [Child("simulator", [*exe, "simulator"])]
    for index in range(workers):
        port = settings.metrics_port + 1 + index if settings.enable_metrics else 0
        children.append(Child(f"worker-{index + 1}", [*exe, "worker", "--metrics-port", str(port)]))
    # ingress replicas share SERVER_PORT (SO_REUSEPORT): the kernel spreads connections
    children += [Child(f"ingress-{i + 1}", [*exe, "ingress"]) for i in range(ingress)]
    return children


def _stop(children: list[Child]) -> None:
    for child in reversed(children):
        if child.proc and child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for child in reversed(children):
        if child.proc is None:
            continue
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{child.name} did not stop in {GRACE_S:.0f} s; killing it", file=sys.stderr)
            child.proc.kill()


def main(settings: Settings, argv: list[str] | None = None) -> int:
    """Run simulator, workers and ingress until interrupted."""
    parser = argparse.ArgumentParser(prog="paystream run")
    parser.add_argument("--workers", type=int, default=settings.workers)
    parser.add_argument("--ingress", type=int, default=settings.ingress_replicas)
    args = parser.parse_args(argv or [])
    children = _children(settings, max(1, args.workers), max(1, args.ingress))
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for child in children:
        child.proc = subprocess.Popen(child.argv)  # noqa: S603 (our own interpreter and module)
    print(
        f"paystream is running: API on http://localhost:{settings.server_port}"
        f" ({args.ingress} ingress, {args.workers} worker(s)); Ctrl-C stops it.",
        flush=True,
    )
    exit_code = 0
    while not stopping:
        for child in children:
            if child.proc and child.proc.poll() is not None:
                print(
                    f"{child.name} exited with {child.proc.returncode}; stopping", file=sys.stderr
                )
                exit_code = 1
                stopping = True
                break
        time.sleep(0.5)
    _stop(children)
    return exit_code
