"""Create the pipeline's topics from the registry (idempotent): ``paystream topics``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.topics import build_topics
from settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every registry topic that is missing; returns the names created now."""
    registry = build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec.name for spec in registry.all() if spec.name not in existing]
        if missing:
            # another process may create them first: that is fine
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(name, settings.kafka_partitions, settings.kafka_replication_factor)
                        for name in missing
                    ]
                )
        return missing
    finally:
        await admin.close()


def main(settings: Settings) -> int:
    """``paystream topics``: create missing topics and say which."""
    created = asyncio.run(ensure_topics(settings))
    print(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))
    return 0
