"""``paystream db-seed``: sample payments for a demo merchant, through the real pipeline.

Seeding does exactly what the ingress does for each sample: stores the payment as
PENDING in PostgreSQL and puts its request on ``payments.requests``, so the running
workers take it through screening and the sandbox provider like any other payment
(the outcomes appear once ``make run`` is up). It prints a token for the demo merchant.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from domain.ids import new_payment_id, new_request_id
from ingress.auth import mint_token
from ingress.parsing import build_payment_requested, parse_create_payment
from ingress.producer import PaymentProducer
from schemas.records import encode
from schemas.topics import build_topics
from settings import Settings
from sinks import payments
from sinks.db import create_pool

DEMO_MERCHANT_ID = "123e4567-e89b-12d3-a456-426614174001"
SAMPLES = [
    ("success@upi", 10_000, "Order #1001"),
    ("success@upi", 49_900, "Order #1002"),
    ("buyer@okhdfcbank", 125_050, "Order #1003"),
    ("failure@upi", 20_000, "Order #1004 (declined by the sandbox)"),
]


async def _seed(settings: Settings) -> list[str]:
    producer = PaymentProducer(settings)
    await producer.start()
    pool = await create_pool(settings, min_size=1, max_size=2)
    topic = build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks)
    ids: list[str] = []
    try:
        for index, (vpa, amount, description) in enumerate(SAMPLES):
            command = parse_create_payment(
                {
                    "user_id": f"demo-user-{index + 1}",
                    "amount_paisa": amount,
                    "currency": "INR",
                    "payment_method": "UPI",
                    "payment_details": {"vpa": vpa},
                    "description": description,
                },
                DEMO_MERCHANT_ID,
            )
            event = build_payment_requested(
                command,
                merchant_id=DEMO_MERCHANT_ID,
                payment_id=new_payment_id(),
                request_id=new_request_id(),
                now=datetime.now(UTC),
                expiry_s=settings.payment_expiry_s,
                fee_schedule=settings.fee_schedule,
            )
            async with pool.acquire() as conn:  # PostgreSQL first, as the ingress does
                await payments.create_pending(conn, event, event.created_at)
            body, headers = encode(event)
            await producer.send(topic.payment_requests.name, event.payment_id, body, headers)
            ids.append(event.payment_id)
    finally:
        await producer.stop()
        await pool.close()
    return ids


def main(settings: Settings) -> int:
    """Queue the sample payments and print their ids and a demo-merchant token."""
    ids = asyncio.run(_seed(settings))
    print(f"queued {len(ids)} sample payments for merchant {DEMO_MERCHANT_ID}:")
    for payment_id in ids:
        print(f"  {payment_id}")
    print("token (1 h):", mint_token(settings, DEMO_MERCHANT_ID))
    return 0
