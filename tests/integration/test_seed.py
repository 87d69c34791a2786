"""`paystream db-seed` queues its sample payments on the real requests topic."""

from __future__ import annotations

import time

from domain.events import PaymentRequested
from schemas.topics import build_topics
from settings import Settings
from sinks.seed import DEMO_MERCHANT_ID, SAMPLES, _seed
from tests.support.pipeline import read_topic_since


async def test_seed_queues_valid_sample_requests(settings: Settings) -> None:
    since_ms = int(time.time() * 1000) - 1000
    ids = await _seed(settings)
    assert len(ids) == len(SAMPLES)
    topic = build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks)
    found = {}
    for _headers, record in await read_topic_since(
        settings, topic.payment_requests.name, since_ms, 10_000, 3
    ):
        if isinstance(record, PaymentRequested) and record.payment_id in ids:
            found[record.payment_id] = record
    assert set(found) == set(ids)
    assert {r.merchant_id for r in found.values()} == {DEMO_MERCHANT_ID}
    assert sorted(r.amount_paisa for r in found.values()) == sorted(a for _, a, _ in SAMPLES)
