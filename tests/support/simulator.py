"""Helpers for tests that drive the UPI Core sandbox simulator over a real loopback socket.

A test module imports the fixtures it uses (``session``, ``upi`` and the autouse
``_needs_stack`` and ``_fresh_simulator``) and makes its own ``sim_url`` with
``simulator_url(seed=...)``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from domain.ids import attempt_idempotency_key, new_payment_id
from domain.ports import ChargeRequest
from providers.simulator import SimulatorConfig, create_simulator_app
from providers.upi_core import UpiCoreProvider

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 2.0


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free loopback port; returns the runner and its base URL."""
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def simulator_url(seed: int) -> Any:
    """A module fixture ``sim_url``: an in-process sandbox seeded with ``seed``."""

    @pytest.fixture(scope="module")
    async def sim_url() -> AsyncIterator[str]:
        runner, url = await serve(
            create_simulator_app(SimulatorConfig(latency_ms=0, timeout_sleep_ms=600, seed=seed))
        )
        yield url
        await runner.cleanup()

    return sim_url


@pytest.fixture(autouse=True)
def _needs_stack() -> None:
    """Overrides the folder-wide stack check: these tests need only the simulator,
    which they start themselves on a real loopback socket (Kafka/PG/Redis unused)."""


@pytest.fixture(scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture(autouse=True)
async def _fresh_simulator(sim_url: str, session: aiohttp.ClientSession) -> None:
    async with session.post(f"{sim_url}/sim/reset") as response:
        assert response.status == 200


@pytest.fixture
def upi(sim_url: str, session: aiohttp.ClientSession) -> UpiCoreProvider:
    return UpiCoreProvider(session, sim_url, TIMEOUT_S)


def charge_request(
    vpa: str,
    *,
    amount: int = 10_000,
    payment_id: str | None = None,
    description: str = "integration test",
) -> ChargeRequest:
    """A first-attempt UPI charge of ``vpa`` (a fresh payment unless ``payment_id``)."""
    payment_id = payment_id or new_payment_id()
    return ChargeRequest(
        payment_id=payment_id,
        attempt_no=1,
        idempotency_key=attempt_idempotency_key(payment_id, 1),
        amount_paisa=amount,
        currency="INR",
        payment_method="UPI",
        payment_details={"vpa": vpa},
        description=description,
    )


async def configure(session: aiohttp.ClientSession, sim_url: str, **knobs: Any) -> None:
    async with session.post(f"{sim_url}/sim/config", json=knobs) as response:
        assert response.status == 200, await response.text()


async def ledger(session: aiohttp.ClientSession, sim_url: str) -> dict[str, Any]:
    async with session.get(f"{sim_url}/sim/ledger") as response:
        assert response.status == 200
        book: dict[str, Any] = await response.json()
        return book


def free_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def simulator_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``python -m providers.simulator`` on a free port, once it logged that it listens;
    yields the process and its base URL, and kills it on the way out if still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "providers.simulator",
        "--port",
        "0",
        "--latency-ms",
        "0",
        cwd=REPO,
        env={**os.environ, "PAYSTREAM_LOG_LEVEL": "INFO"},
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        port = None
        async with asyncio.timeout(15):
            while port is None:
                line = await process.stderr.readline()
                assert line, "simulator exited before listening"
                record = json.loads(line)
                if record.get("message") == "simulator listening":
                    port = int(record["port"])
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def assert_stops_on_sigterm(process: asyncio.subprocess.Process) -> None:
    """SIGTERM ends the simulator process cleanly (exit 0) within 10 s."""
    assert process.stderr is not None
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        await process.stderr.read()
        assert await process.wait() == 0
