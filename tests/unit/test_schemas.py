"""Every schema round-trips; a newer schema version still reads records of the old one."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.events import (
    FraudDecision,
    PaymentRequested,
    PaymentScreened,
    PaymentStatusChanged,
    RefundRequested,
    WebhookEvent,
)
from domain.status import PaymentStatus
from schemas.codec import REGISTRY, SCHEMA_DIR, SCHEMA_HEADER, VERSION_HEADER, load_registry
from schemas.errors import SerializationError, UnknownSchemaError
from schemas.records import SCHEMA_NAMES, decode, encode
from schemas.topics import build_topics

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 1, 15, 10, 15, tzinfo=UTC)

REQUEST = PaymentRequested(
    payment_id="PAY_01JD3Q0000ABCDEFGHJKMNPQRS",
    merchant_id="123e4567-e89b-12d3-a456-426614174001",
    user_id="123e4567-e89b-12d3-a456-426614174000",
    amount_paisa=10_000,
    fees_paisa=0,
    currency="INR",
    payment_method="UPI",
    payment_details={"vpa": "user@paytm"},
    description="Payment for order #12345",
    callback_url="https://merchant.example/webhook",
    metadata={"order_id": "12345"},
    created_at=NOW,
    expires_at=NOW + timedelta(minutes=15),
    request_id="req_1",
)
CHANGE = PaymentStatusChanged.first(REQUEST, PaymentStatus.PENDING, NOW, fraud_score=3)
SAMPLES = [
    REQUEST,
    PaymentScreened(REQUEST, FraudDecision("ALLOW", 3, ["velocity_ok"], NOW)),
    CHANGE,
    CHANGE.next(PaymentStatus.SUCCESS, NOW, processed_at=NOW, rrn="123456789012"),
    WebhookEvent("evt_1", "payment.success", NOW, "m1", "payment", REQUEST.payment_id, 2, "{}"),
    RefundRequested(
        "rfnd_1", REQUEST.payment_id, "m1", 5_000, "INR", "UPI", "upi_core", "TXN1", "damaged", NOW
    ),
]


def test_every_schema_file_has_a_record_class() -> None:
    assert sorted(SCHEMA_NAMES.values()) == REGISTRY.names()


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_round_trip(record: object) -> None:
    body, headers = encode(record)  # type: ignore[arg-type]
    assert dict(headers)[SCHEMA_HEADER] == SCHEMA_NAMES[type(record)].encode()
    name = SCHEMA_NAMES[type(record)]
    assert dict(headers)[VERSION_HEADER] == str(REGISTRY.latest(name).version).encode()
    assert decode(body, headers) == record


def test_money_stays_integer_paisa_through_the_codec() -> None:
    body, headers = encode(REQUEST)
    decoded = decode(body, headers)
    assert isinstance(decoded, PaymentRequested)
    assert decoded.amount_paisa == 10_000
    assert type(decoded.amount_paisa) is int


def test_next_version_reads_records_written_with_the_old_one(tmp_path: Path) -> None:
    body, headers = encode(REQUEST)  # written by this build (v1)
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path)
    shutil.copy(FIXTURES / "payment_requested.v2.avsc", tmp_path)
    newer = load_registry(tmp_path)
    assert newer.latest("paystream.PaymentRequested").version == 2
    name, record = newer.decode(body, headers)
    assert name == "paystream.PaymentRequested"
    assert record["amount_paisa"] == 10_000
    assert record["channel"] == "api"  # the v2 default fills the new field
    assert record["risk_hints"] is None
    # and the screened record, which embeds the request, still decodes under v2 too
    screened_body, screened_headers = encode(SAMPLES[1])  # type: ignore[arg-type]
    _, screened = newer.decode(screened_body, screened_headers)
    assert screened["request"]["payment_id"] == REQUEST.payment_id


def test_missing_headers_are_a_serialization_error() -> None:
    body, _ = encode(REQUEST)
    with pytest.raises(SerializationError):
        decode(body, [])


def test_unknown_schema_version_is_refused() -> None:
    body, _ = encode(REQUEST)
    with pytest.raises(UnknownSchemaError):
        decode(body, [(SCHEMA_HEADER, b"paystream.PaymentRequested"), (VERSION_HEADER, b"9")])


def test_truncated_body_is_a_serialization_error() -> None:
    body, headers = encode(REQUEST)
    with pytest.raises(SerializationError):
        decode(body[: len(body) // 2], headers)


def test_topic_registry_uses_configured_names_and_schemas_that_exist() -> None:
    topics = build_topics("acme.payments", "acme.webhooks")
    assert [t.name for t in topics.all()] == [
        "payments.requests",
        "payments.screened",
        "acme.payments",
        "acme.webhooks",
        "refunds.requests",
        "payments.deadletter",
    ]
    for spec in topics.all():
        assert spec.schema in [*REGISTRY.names(), ""]


def test_status_events_written_as_v1_still_decode_after_v2() -> None:
    import dataclasses
    import io

    import fastavro

    name = "paystream.PaymentStatusChanged"
    v1 = REGISTRY.get(name, 1)
    record = dataclasses.asdict(CHANGE)
    del record["refunded_paisa"], record["operation"]
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, v1.parsed, record)
    decoded = decode(buffer.getvalue(), [(SCHEMA_HEADER, name.encode()), (VERSION_HEADER, b"1")])
    assert isinstance(decoded, PaymentStatusChanged)
    assert decoded.refunded_paisa == 0
    assert decoded.operation is None
    assert decoded.payment_id == CHANGE.payment_id
