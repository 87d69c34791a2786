"""End of the suite: no card number is in the clear anywhere data can land.

Runs last (file name). Tokenizes a fresh canary card through the running service,
pushes a payment with personal data through the whole pipeline, then sweeps every
PostgreSQL column, every Redis key and value, every message of every Kafka topic
(changelogs included) and every service log for the canary, for the standard test
card numbers the suite sends in requests, and for the canary customer email.
"""

from __future__ import annotations

import re
import secrets
import uuid

import aiohttp
import redis.asyncio as aioredis

from domain.cards import luhn_valid
from ingress.auth import mint_token
from settings import Settings
from sinks.db import create_pool
from tests.support.canary import kafka_hits, log_hits, pg_hits, redis_hits
from tests.support.pipeline import Service, create_payment, wait_terminal

TEST_PANS = ["4111111111111111", "5555555555554444", "378282246310005", "4012888888881881"]


def canary_pan() -> str:
    """A random Visa-shaped number that passes Luhn (never a real card)."""
    while True:
        pan = "4" + "".join(secrets.choice("0123456789") for _ in range(15))
        if luhn_valid(pan):
            return pan


async def test_no_card_number_or_personal_data_anywhere_in_the_clear(
    service: Service, settings: Settings, http: aiohttp.ClientSession
) -> None:
    pan, cvv = canary_pan(), "7" + str(secrets.randbelow(90) + 10)
    email = f"canary-{uuid.uuid4().hex[:10]}@example.com"
    merchant_id = f"canary-{uuid.uuid4()}"
    token = mint_token(settings, merchant_id)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    body = {
        "user_id": "canary-user",
        "type": "CARD",
        "details": {
            "card_number": pan,
            "expiry_month": "12",
            "expiry_year": "39",
            "cvv": cvv,
            "holder_name": "Canary Holder",
        },
    }
    async with http.post(
        f"{service.api}/api/v1/payment-methods/tokenize", json=body, headers=headers
    ) as response:
        assert response.status == 201, await response.text()
    paid = await create_payment(http, service.api, token, "success@upi")
    headers["Idempotency-Key"] = str(uuid.uuid4())
    async with http.post(
        f"{service.api}/api/v1/payments",
        headers=headers,
        json={
            "user_id": "canary-user",
            "amount_paisa": 10_000,
            "currency": "INR",
            "payment_method": "UPI",
            "payment_details": {"vpa": "success@upi"},
            "metadata": {"customer_email": email},
        },
    ) as response:
        with_email = await response.json()
        assert response.status == 201, with_email
    pool = await create_pool(settings, min_size=1, max_size=2)
    try:
        await wait_terminal(pool, [paid["payment_id"], with_email["payment_id"]], service=service)
        needles = [pan, email, *TEST_PANS]
        assert await pg_hits(pool, paid["payment_id"], None) != []  # the sweep does see data
        for needle in needles:
            assert await pg_hits(pool, needle, None) == [], needle
    finally:
        await pool.close()

    redis = aioredis.Redis(host=settings.redis_host, port=settings.redis_port, db=settings.redis_db)
    try:
        assert await redis_hits(redis, [n.encode() for n in needles], re.compile(b"(?!)")) == []
    finally:
        await redis.aclose()
    control = [paid["payment_id"].encode()]  # present everywhere: proves each sweep reads data
    assert await kafka_hits(settings, control) != []
    assert await kafka_hits(settings, [n.encode() for n in needles]) == []
    assert log_hits(settings.data_dir / "test-logs", control) != []
    assert log_hits(settings.data_dir / "test-logs", [n.encode() for n in needles]) == []
