"""``make bench``: pipeline throughput and latency, with raw baselines from the same run.

(a) raw: aiokafka produce -> consume round trip on the same broker, same concurrency;
(b) pipeline: N UPI payments POSTed by a concurrent client until every one is
    final in PostgreSQL (latency = POST sent -> final row written).
Prints both and the ratio pipeline/raw. Nothing is asserted: this machine is noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
import uuid

import aiohttp
import asyncpg

from bench.baselines import kafka_relay
from bench.stats import Summary, summarize
from ingress.auth import mint_token
from settings import Settings, load_settings
from sinks.db import create_pool
from streams.runner import service_processes, wait_http_ok

FINAL = ("SUCCESS", "FAILED")


async def _pipeline(settings: Settings, count: int, concurrency: int) -> tuple[Summary, Summary]:
    # one merchant per concurrent slot: each stays under the per-merchant rate limit
    # (PAYSTREAM_RATE_LIMIT_*), so the figures measure the pipeline, not the limiter's refusals
    run = uuid.uuid4()
    tokens = [mint_token(settings, f"bench-{run}-{slot}") for slot in range(concurrency)]
    api = f"http://127.0.0.1:{settings.server_port}/api/v1/payments"
    sent_at: dict[str, float] = {}
    accept_latency: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    pool = await create_pool(settings, min_size=1, max_size=2)
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector) as http:

        async def post(index: int) -> None:
            body = {
                "user_id": f"user-{index % 500}",
                "amount_paisa": 10_000 + index,
                "currency": "INR",
                "payment_method": "UPI",
                "payment_details": {"vpa": f"buyer{index}@okbank"},
            }
            headers = {
                "Authorization": f"Bearer {tokens[index % concurrency]}",
                "Idempotency-Key": str(uuid.uuid4()),
            }
            async with gate:
                wall, started = time.time(), time.perf_counter()
                async with http.post(api, json=body, headers=headers) as response:
                    payload = await response.json()
                accept_latency.append(time.perf_counter() - started)
            if response.status != 201:
                raise RuntimeError(f"POST answered {response.status}: {payload}")
            sent_at[payload["payment_id"]] = wall

        started = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(count)))
        accepted_s = time.perf_counter() - started
        ids = list(sent_at)
        deadline = time.monotonic() + 300
        rows: list[asyncpg.Record] = []
        while time.monotonic() < deadline:
            rows = await pool.fetch(
                "SELECT payment_id, extract(epoch FROM updated_at) AS done FROM payments"
                " WHERE payment_id = ANY($1) AND status = ANY($2)",
                ids,
                list(FINAL),
            )
            if len(rows) == len(ids):
                break
            await asyncio.sleep(0.2)
    await pool.close()
    if len(rows) != len(ids):
        raise RuntimeError(f"only {len(rows)}/{len(ids)} payments final after 300 s")
    first = min(sent_at.values())
    last = max(float(row["done"]) for row in rows)
    e2e = [float(row["done"]) - sent_at[row["payment_id"]] for row in rows]
    return (
        summarize("ingress accept (POST -> 201)", accept_latency, accepted_s),
        summarize("pipeline POST -> final row in PG", e2e, last - first),
    )


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    settings = load_settings()

    print(
        f"host: {platform.node()} {platform.machine()} cores=2 python={platform.python_version()}"
    )
    print(f"payments={args.payments} concurrency={args.concurrency} (open the README for method)")
    raw = asyncio.run(kafka_relay(settings, args.payments, 600, args.concurrency))

    children = service_processes(settings, workers=1, ingress=1)
    for child in children:
        child.start()
    try:
        wait_http_ok(f"http://127.0.0.1:{settings.server_port}/health", 60, children[-1])
        asyncio.run(_pipeline(settings, 20, 4))  # warm-up: worker joined, pools open
        accept, pipeline = asyncio.run(_pipeline(settings, args.payments, args.concurrency))
    finally:
        for child in reversed(children):
            child.stop()
    print()
    for summary in (raw, accept, pipeline):
        print(summary.line())
    print()
    print(f"pipeline/raw throughput ratio: {pipeline.per_second / raw.per_second:.3f}")
    print(f"pipeline/raw p50 latency ratio: {pipeline.p50_ms / raw.p50_ms:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
