"""Customer personal data in payment metadata: encrypted in PostgreSQL, masked elsewhere."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from aiohttp.test_utils import TestClient

from domain.events import PaymentRequested
from domain.pii import reveal_pii
from domain.vault_crypto import record_aad
from ingress.auth import mint_token
from schemas.topics import build_topics
from settings import Settings
from sinks.db import create_pool
from sinks.vault import keyring_from_settings
from tests.support.pipeline import read_topic_since

EMAIL = f"pii-canary-{uuid.uuid4().hex[:8]}@example.com"
PHONE = "+919876543210"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_email_and_phone_are_encrypted_at_rest_and_masked_everywhere_else(
    client: TestClient, pool: asyncpg.Pool, settings: Settings
) -> None:
    since_ms = int(time.time() * 1000) - 1000
    merchant_id = f"pii-{uuid.uuid4()}"
    headers = {
        "Authorization": f"Bearer {mint_token(settings, merchant_id)}",
        "Idempotency-Key": str(uuid.uuid4()),
    }
    body = {
        "user_id": "u-1",
        "amount_paisa": 10_000,
        "currency": "INR",
        "payment_method": "UPI",
        "payment_details": {"vpa": "success@upi"},
        "metadata": {"order_id": "12345", "customer_email": EMAIL, "customer_phone": PHONE},
    }
    response = await client.post("/api/v1/payments", json=body, headers=headers)
    created = await response.json()
    assert response.status == 201, created
    assert created["metadata"]["order_id"] == "12345"
    assert created["metadata"]["customer_email"] != EMAIL
    assert created["metadata"]["customer_email"].endswith("@example.com")
    assert created["metadata"]["customer_phone"].endswith("3210")
    assert PHONE not in created["metadata"]["customer_phone"]

    row = await pool.fetchrow(
        "SELECT metadata, pii FROM payments WHERE payment_id = $1", created["payment_id"]
    )
    assert EMAIL not in str(row["metadata"]) and PHONE not in str(row["metadata"])
    assert EMAIL not in str(row["pii"]) and PHONE not in str(row["pii"])
    aad = record_aad("payment", merchant_id, created["payment_id"], "metadata")
    revealed = reveal_pii(row["pii"], keyring_from_settings(settings), aad)
    assert revealed == {"customer_email": EMAIL, "customer_phone": PHONE}

    topic = build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks)
    messages = await read_topic_since(settings, topic.payment_requests.name, since_ms, 10_000, 3)
    ours = [
        r for _, r in messages if isinstance(r, PaymentRequested) and r.merchant_id == merchant_id
    ]
    assert len(ours) == 1
    assert EMAIL not in repr(ours[0]) and PHONE not in repr(ours[0])
