"""Faust app factory: the composition root of a worker process.

``create_app(settings)`` builds the app, its topics (from :mod:`schemas.topics`),
the worker's shared resources and every agent. Nothing here does IO at
construction; connections open when the worker starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import faust
from mode import ServiceT

from schemas.topics import Topics, TopicSpec, build_topics
from settings import Settings
from streams.resources import WorkerResources


@dataclass(frozen=True, slots=True)
class PipelineTopics:
    """Faust topic objects for every topic in the registry (values are raw Avro bytes)."""

    payment_requests: faust.TopicT
    payments_screened: faust.TopicT
    payment_events: faust.TopicT
    webhooks: faust.TopicT
    refund_requests: faust.TopicT
    dead_letters: faust.TopicT


def _topic(app: faust.App, spec: TopicSpec, partitions: int) -> faust.TopicT:
    return app.topic(
        spec.name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=False,
    )


def build_pipeline_topics(app: faust.App, registry: Topics, partitions: int) -> PipelineTopics:
    """Faust topic objects built from the registry."""
    return PipelineTopics(
        payment_requests=_topic(app, registry.payment_requests, partitions),
        payments_screened=_topic(app, registry.payments_screened, partitions),
        payment_events=_topic(app, registry.payment_events, partitions),
        webhooks=_topic(app, registry.webhooks, partitions),
        refund_requests=_topic(app, registry.refund_requests, partitions),
        dead_letters=_topic(app, registry.dead_letters, partitions),
    )


class PaystreamApp(faust.App):
    """A Faust app whose shared resources start before and stop after its agents."""

    resources: WorkerResources

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        """Put the resources first: mode stops children in reverse order."""
        return [self.resources, *super().on_init_dependencies()]


def create_app(settings: Settings) -> faust.App:
    """Build the worker's Faust app with all agents registered."""
    app = PaystreamApp(
        settings.kafka_group_id,
        broker=[f"kafka://{broker}" for broker in settings.kafka_brokers],
        store="memory://",
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        producer_acks=-1,
        producer_linger_ms=2,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=100,
        broker_commit_interval=1.0,
        # a crashed worker's partitions move to the others within ~10 s, not Faust's 60 s
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        stream_wait_empty=False,
        web_enabled=False,
        datadir=str(settings.data_dir / "faust"),
    )
    topics = build_pipeline_topics(
        app,
        build_topics(settings.kafka_topic_payments, settings.kafka_topic_webhooks),
        settings.kafka_partitions,
    )
    resources = app.resources = WorkerResources(settings)

    from agents import fraud, janitor, notify, refund, route

    fraud.register(app, topics)
    route.register(app, topics, resources)
    notify.register(app, topics)
    refund.register(app, topics, resources)
    janitor.register(app, topics, resources)
    return app
