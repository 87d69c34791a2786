"""The ingress's Kafka producer: idempotent, ``acks=all``, and a send that waits for the ack.

:class:`PaymentProducer` wraps one ``aiokafka.AIOKafkaProducer``. Building it does no
IO; :meth:`PaymentProducer.start` makes one connection attempt and, if the broker is
down, keeps retrying in the background, so the ingress still starts, answers
``/health`` and reports itself not ready, and answers 503 to payments until Kafka is
back. Once connected, aiokafka reconnects to brokers on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingress.errors import IngressError
from settings import Settings
from sinks.metrics import kafka_messages_produced_total

log = logging.getLogger("paystream.ingress.producer")

CLIENT_ID: Final = "paystream-ingress"
REQUEST_TIMEOUT_MS: Final = 10_000
"""Upper bound on waiting for metadata and for the broker's ack of one send."""
CONNECT_TIMEOUT_S: Final = 10.0
RECONNECT_MIN_S: Final = 1.0
RECONNECT_MAX_S: Final = 30.0


class ProducerUnavailableError(IngressError):
    """Kafka did not acknowledge (or cannot take) the message; the caller answers 503."""


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def build_kafka_producer(settings: Settings) -> AIOKafkaProducer:
    """A producer configured for payments: idempotent, acks from all in-sync replicas.

    Must be called inside the running event loop (aiokafka binds to it); does no IO.
    """
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=CLIENT_ID,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        compression_type=None,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )


class PaymentProducer:
    """Sends encoded records to Kafka and reports whether the broker took them.

    Pass ``producer`` to use an already *started* aiokafka producer that the caller
    owns (it is then neither started nor stopped here).
    """

    def __init__(self, settings: Settings, producer: AIOKafkaProducer | None = None) -> None:
        self._settings = settings
        self._producer = producer
        self._owned = producer is None
        self._last_error: str | None = None if producer is not None else "not started"
        self._reconnect: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """True once a producer has started (aiokafka handles broker reconnects after that)."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect once now; if that fails, keep retrying in the background."""
        if not self._owned or self._producer is not None:
            return
        if not await self._connect_once():
            self._reconnect = asyncio.create_task(self._reconnect_loop(), name="kafka-reconnect")

    async def _connect_once(self) -> bool:
        producer = build_kafka_producer(self._settings)
        try:
            await asyncio.wait_for(producer.start(), CONNECT_TIMEOUT_S)
        except (KafkaError, OSError, TimeoutError) as exc:
            self._last_error = _describe(exc)
            with contextlib.suppress(Exception):
                await producer.stop()
            log.warning("kafka producer cannot connect", extra={"error": self._last_error})
            return False
        self._producer = producer
        self._last_error = None
        log.info("kafka producer connected", extra={"brokers": self._settings.kafka_bootstrap})
        return True

    async def _reconnect_loop(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            await asyncio.sleep(delay)
            if await self._connect_once():
                return
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop retrying; flush and close the producer if this object owns it."""
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
            self._reconnect = None
        producer, self._producer = self._producer, None
        if producer is not None and self._owned:
            try:
                await asyncio.wait_for(producer.stop(), timeout_s)
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("kafka producer did not stop cleanly", extra={"error": _describe(exc)})
        self._last_error = "stopped"

    async def send(
        self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> Any:
        """Send one message and wait until the broker acknowledged it (``acks=all``).

        Returns aiokafka's RecordMetadata; raises :class:`ProducerUnavailableError` if
        the producer is not connected or the broker did not acknowledge in time.
        """
        producer = self._producer
        if producer is None:
            raise ProducerUnavailableError(f"kafka producer not connected ({self._last_error})")
        try:
            delivery = await producer.send(
                topic, value=value, key=key.encode("utf-8"), headers=list(headers)
            )
            metadata = await delivery
        except (KafkaError, TimeoutError) as exc:
            raise ProducerUnavailableError(
                f"kafka did not take the message: {_describe(exc)}"
            ) from exc
        kafka_messages_produced_total.labels(topic=topic).inc()
        return metadata

    async def check(self, topic: str, timeout_s: float) -> None:
        """Readiness: the cluster answers a metadata request and ``topic`` exists."""
        producer = self._producer
        if producer is None:
            raise ProducerUnavailableError(f"not connected ({self._last_error})")
        try:
            cluster = await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise ProducerUnavailableError(_describe(exc)) from exc
        if topic not in cluster.topics():
            raise ProducerUnavailableError(f"topic {topic} does not exist")
