"""Map the domain's dataclasses to and from Avro records, and encode/decode messages.

This is the one codec every producer and consumer uses: the ingress and agents call
:func:`encode` to get a body plus headers and :func:`decode` to get a domain object back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from domain.events import (
    FraudDecision,
    PaymentRequested,
    PaymentScreened,
    PaymentStatusChanged,
    RefundRequested,
    WebhookEvent,
)
from schemas.codec import REGISTRY, Headers, SchemaRegistry
from schemas.errors import SerializationError, UnknownSchemaError

Record = PaymentRequested | PaymentScreened | PaymentStatusChanged | RefundRequested | WebhookEvent

SCHEMA_NAMES: dict[type[Any], str] = {
    PaymentRequested: "paystream.PaymentRequested",
    PaymentScreened: "paystream.PaymentScreened",
    PaymentStatusChanged: "paystream.PaymentStatusChanged",
    RefundRequested: "paystream.RefundRequested",
    WebhookEvent: "paystream.WebhookEvent",
}


def _screened(record: dict[str, Any]) -> PaymentScreened:
    return PaymentScreened(
        request=PaymentRequested(**record["request"]),
        decision=FraudDecision(**record["decision"]),
    )


_BUILDERS: dict[str, Callable[[dict[str, Any]], Record]] = {
    "paystream.PaymentRequested": lambda r: PaymentRequested(**r),
    "paystream.PaymentScreened": _screened,
    "paystream.PaymentStatusChanged": lambda r: PaymentStatusChanged(**r),
    "paystream.RefundRequested": lambda r: RefundRequested(**r),
    "paystream.WebhookEvent": lambda r: WebhookEvent(**r),
}


def to_record(obj: Record) -> dict[str, Any]:
    """The Avro record (a dict) for a domain object."""
    return dataclasses.asdict(obj)


def encode(
    obj: Record, registry: SchemaRegistry = REGISTRY
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Encode a domain object; returns the message body and its schema headers."""
    try:
        name = SCHEMA_NAMES[type(obj)]
    except KeyError:
        raise UnknownSchemaError(f"no schema for {type(obj).__name__}") from None
    return registry.encode(name, to_record(obj))


def decode(
    body: bytes, headers: Headers | Mapping[str, bytes], registry: SchemaRegistry = REGISTRY
) -> Record:
    """Decode a message body into its domain object, by the schema its headers name."""
    name, record = registry.decode(body, headers)
    try:
        return _BUILDERS[name](record)
    except TypeError as exc:
        raise SerializationError(f"{name} record does not fit its class: {exc}") from exc
