"""Shared fixtures. Integration and e2e tests run against the REAL Kafka, PostgreSQL and
Redis that ``make test`` starts; if one is missing the run fails loudly (never skips)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from settings import Settings, load_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings of the test profile (the Makefile exports its environment)."""
    return load_settings()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """Fail the run (not skip) when Kafka, PostgreSQL or Redis does not answer."""
    broker_host, broker_port = settings.kafka_brokers[0].rsplit(":", 1)
    missing = [
        f"{name} at {host}:{port}"
        for name, host, port in (
            ("Kafka", broker_host, int(broker_port)),
            ("PostgreSQL", settings.db_host, settings.db_port),
            ("Redis", settings.redis_host, settings.redis_port),
        )
        if not _port_open(host, port)
    ]
    if missing:
        pytest.fail(
            "the test stack is not running: " + ", ".join(missing) + ". Run `make test` (it "
            "starts the stack) or `make stack-up` with the test profile.",
            pytrace=False,
        )
    from sinks.migrate import _main as migrate
    from streams.topics_admin import ensure_topics

    asyncio.run(ensure_topics(settings))
    asyncio.run(migrate(settings))
    return settings
