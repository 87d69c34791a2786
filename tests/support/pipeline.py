"""Helpers for tests that drive the running service: processes, HTTP, database, Kafka."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from schemas.records import decode
from settings import Settings
from streams.runner import ServiceProcess, wait_http_ok

TERMINAL_OR_FINAL = {"SUCCESS", "FAILED", "CANCELLED", "EXPIRED", "REFUNDED"}


@dataclass
class Service:
    """Simulator, one worker and one ingress, started as real processes."""

    settings: Settings
    log_dir: Path
    env: dict[str, str]
    simulator: ServiceProcess = field(init=False)
    worker: ServiceProcess = field(init=False)
    ingress: ServiceProcess = field(init=False)
    worker_starts: int = 0

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.settings.server_port}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.simulator_port}"

    def start(self) -> Service:
        self.simulator = ServiceProcess(
            "simulator", ["simulator"], self.env, self.log_dir / "simulator.log"
        ).start()
        self.start_worker()
        self.ingress = ServiceProcess(
            "ingress", ["ingress"], self.env, self.log_dir / "ingress.log"
        ).start()
        try:
            wait_http_ok(f"{self.simulator_url}/health", 30, self.simulator)
            wait_http_ok(f"{self.api}/health", 30, self.ingress)
            self.assert_running()
        except BaseException:
            self.stop()  # never leave processes behind to answer the next run's probes
            raise
        return self

    def assert_running(self) -> None:
        """Fail at once (not after a timeout) when a service process has died."""
        for process in (self.simulator, self.worker, self.ingress):
            code = process.wait(0.01) if process.proc is not None else None
            assert code is None, f"{process.name} exited with {code}; see {self.log_dir}"

    def start_worker(self) -> ServiceProcess:
        self.worker_starts += 1
        self.worker = ServiceProcess(
            f"worker-{self.worker_starts}",
            ["worker", "--metrics-port", "0"],
            self.env,
            self.log_dir / f"worker-{self.worker_starts}.log",
        ).start()
        return self.worker

    def stop(self) -> None:
        for process in (self.ingress, self.worker, self.simulator):
            process.stop(grace_s=30)


def service_env(**overrides: str) -> dict[str, str]:
    """The test process's environment (the Makefile's test profile) plus ``overrides``."""
    return {**os.environ, **overrides}


async def create_payment(
    http: aiohttp.ClientSession, api: str, token: str, vpa: str, amount_paisa: int = 10_000
) -> dict[str, Any]:
    """POST a UPI payment and return the 201 body (fails the test on any other status)."""
    body = {
        "user_id": "123e4567-e89b-12d3-a456-426614174000",
        "amount_paisa": amount_paisa,
        "currency": "INR",
        "payment_method": "UPI",
        "payment_details": {"vpa": vpa},
        "description": "Payment for order #12345",
        "metadata": {"order_id": "12345"},
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    async with http.post(f"{api}/api/v1/payments", json=body, headers=headers) as response:
        payload = await response.json()
        assert response.status == 201, payload
        return payload


async def wait_terminal(
    pool: asyncpg.Pool,
    payment_ids: Iterable[str],
    timeout_s: float = 90.0,
    service: Service | None = None,
) -> dict[str, asyncpg.Record]:
    """Wait until every payment's row is in a final status; returns the rows by id."""
    wanted = list(payment_ids)
    deadline = time.monotonic() + timeout_s
    rows: dict[str, asyncpg.Record] = {}
    while time.monotonic() < deadline:
        fetched = await pool.fetch("SELECT * FROM payments WHERE payment_id = ANY($1)", wanted)
        rows = {row["payment_id"]: row for row in fetched}
        if len(rows) == len(wanted) and all(
            row["status"] in TERMINAL_OR_FINAL for row in rows.values()
        ):
            return rows
        await asyncio.sleep(0.25)
        if service is not None:
            service.assert_running()
    done = sum(1 for row in rows.values() if row["status"] in TERMINAL_OR_FINAL)
    raise AssertionError(f"only {done}/{len(wanted)} payments final after {timeout_s:.0f} s")


async def simulator_charges(http: aiohttp.ClientSession, simulator_url: str) -> dict[str, int]:
    """Charges per payment (merchant_ref) in the simulator's own ledger: the oracle."""
    async with http.get(f"{simulator_url}/sim/ledger") as response:
        ledger = await response.json()
    return {ref: int(count) for ref, count in ledger["charges_per_merchant_ref"].items()}


async def read_topic_since(
    settings: Settings, topic: str, since_ms: int, want: int, timeout_s: float = 30.0
) -> list[tuple[dict[str, bytes], Any]]:
    """Decode the messages of ``topic`` written since ``since_ms`` (stop at ``want``)."""
    # no group: the consumer is assigned every partition of the topic when it starts
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = sorted(consumer.assignment())
        assert partitions, f"topic {topic} has no partitions (does it exist?)"
        offsets = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            found = offsets.get(tp)
            consumer.seek(tp, found.offset if found else ends[tp])
        out: list[tuple[dict[str, bytes], Any]] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < want and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for message in messages:
                    headers = dict(message.headers)
                    out.append((headers, decode(message.value, list(message.headers))))
        return out
    finally:
        await consumer.stop()


async def consumer_lag(settings: Settings, group_id: str, topics: list[str]) -> int:
    """Messages not yet committed by ``group_id`` on ``topics`` (0: all processed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in partitions)
    finally:
        await consumer.stop()
        await admin.close()


def payload_json(record: Any) -> dict[str, Any]:
    """The ``data`` of a WebhookEvent as a dict."""
    return json.loads(record.data)
