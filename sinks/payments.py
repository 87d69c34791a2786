"""Payments in PostgreSQL: creation, every status transition, and the event outbox.

PostgreSQL is the single writer of a payment's status. A transition locks the row,
asks the pure lifecycle (:mod:`domain.lifecycle`) what the operation does, writes the
new status with ``sequence + 1`` and, in the same transaction, records the change in
``payment_status_history`` together with the encoded ``PaymentStatusChanged`` event.
That history is the transactional outbox: whoever made the change publishes the
event right after commit and marks it published; a relay publishes whatever a crash
left behind. No status change without its event; consumers deduplicate by
(payment_id, sequence).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from domain.events import PaymentRequested, PaymentStatusChanged
from domain.lifecycle import Moved, Operation, Outcome, PaymentState, Unchanged
from domain.status import PaymentStatus
from schemas.codec import REGISTRY
from schemas.records import SCHEMA_NAMES, decode, encode

EVENT_SCHEMA = SCHEMA_NAMES[PaymentStatusChanged]
_EVENT_FIELDS = frozenset(f.name for f in dataclasses.fields(PaymentStatusChanged))

CHANGEABLE_COLUMNS = frozenset(
    {
        "provider",
        "external_txn_id",
        "rrn",
        "approval_code",
        "failure_code",
        "failure_message",
        "fraud_score",
        "processed_at",
        "cancellation_reason",
    }
)
"""Columns a transition may set besides status and sequence."""


class PaymentNotFoundError(LookupError):
    """No such payment (or not this merchant's: callers answer 404 for both)."""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An encoded status event waiting to be (or just) published."""

    payment_id: str
    sequence: int
    body: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """What a transition did: the payment as it now is, and the event to publish."""

    event: PaymentStatusChanged
    decision: Moved | Unchanged
    outbox: OutboxEvent | None
    """Set when the status moved: publish it, then :func:`mark_published`."""

    @property
    def moved(self) -> bool:
        """True when this call changed the payment."""
        return isinstance(self.decision, Moved)


def _headers(version: int) -> list[tuple[str, bytes]]:
    return [("schema", EVENT_SCHEMA.encode()), ("schema-version", str(version).encode())]


def event_from_row(row: Mapping[str, Any], **overrides: Any) -> PaymentStatusChanged:
    """The payment row as a status event snapshot (``overrides`` win)."""
    fields: dict[str, Any] = {
        "payment_id": row["payment_id"],
        "merchant_id": row["merchant_id"],
        "user_id": row["user_id"],
        "sequence": row["sequence"],
        "status": row["status"],
        "previous_status": None,
        "amount_paisa": row["amount_paisa"],
        "fees_paisa": row["fees_paisa"],
        "currency": row["currency"].strip(),
        "payment_method": row["payment_method"],
        "payment_details": _json(row["payment_details"]),
        "description": row["description"],
        "callback_url": row["callback_url"],
        "metadata": _json(row["metadata"]),
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        "occurred_at": row["updated_at"],
        "processed_at": row["processed_at"],
        "provider": row["provider"],
        "external_txn_id": row["external_txn_id"],
        "rrn": row["rrn"],
        "approval_code": row["approval_code"],
        "failure_code": row["failure_code"],
        "failure_message": row["failure_message"],
        "fraud_score": row["fraud_score"],
        "request_id": row["request_id"],
        "refunded_paisa": row["refunded_paisa"],
        "operation": None,
    }
    fields.update(overrides)
    return PaymentStatusChanged(**fields)


def _json(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        return dict(json.loads(value))
    return dict(value or {})


def state_from_row(row: Mapping[str, Any]) -> PaymentState:
    """The lifecycle state of a payment row."""
    return PaymentState(
        status=PaymentStatus(row["status"]),
        amount_paisa=row["amount_paisa"],
        refunded_paisa=row["refunded_paisa"],
        refund_reserved_paisa=row["refund_reserved_paisa"],
        sequence=row["sequence"],
    )


async def _record_change(
    conn: asyncpg.Connection, event: PaymentStatusChanged, operation: str
) -> OutboxEvent:
    body, headers = encode(event)
    version = int(dict(headers)["schema-version"])
    await conn.execute(
        "INSERT INTO payment_status_history (payment_id, sequence, status, previous_status,"
        " occurred_at, operation, event_schema, event_version, event_body)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        event.payment_id,
        event.sequence,
        event.status,
        event.previous_status,
        event.occurred_at,
        operation,
        EVENT_SCHEMA,
        version,
        body,
    )
    return OutboxEvent(event.payment_id, event.sequence, body, headers)


async def create_pending(
    conn: asyncpg.Connection,
    request: PaymentRequested,
    now: datetime,
    pii: Mapping[str, str] | None = None,
) -> TransitionResult:
    """Store an accepted payment as PENDING (sequence 1, submitted) with its event.

    ``pii`` holds the encrypted personal-data fields of the metadata (the request's
    own metadata is already masked). Idempotent on ``payment_id``: a second call
    returns the stored payment unchanged.
    """
    event = PaymentStatusChanged.first(
        request, PaymentStatus.PENDING, now, operation=Operation.SUBMIT.value
    )
    async with conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO payments (payment_id, merchant_id, user_id, status, sequence,"
            " amount_paisa, fees_paisa, currency, payment_method, payment_details, description,"
            " callback_url, metadata, request_id, created_at, expires_at, updated_at, pii)"
            " VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9::jsonb, $10, $11, $12::jsonb, $13,"
            " $14, $15, $16, $17::jsonb) ON CONFLICT (payment_id) DO NOTHING RETURNING 1",
            request.payment_id,
            request.merchant_id,
            request.user_id,
            PaymentStatus.PENDING.value,
            request.amount_paisa,
            request.fees_paisa,
            request.currency,
            request.payment_method,
            dict(request.payment_details),
            request.description,
            request.callback_url,
            dict(request.metadata),
            request.request_id,
            request.created_at,
            request.expires_at,
            now,
            dict(pii or {}),
        )
        if inserted is None:
            row = await locked_payment(conn, request.payment_id)
            return TransitionResult(event_from_row(row), Unchanged("already created"), None)
        outbox = await _record_change(conn, event, Operation.SUBMIT.value)
    return TransitionResult(event, Moved(PaymentStatus.PENDING), outbox)


async def locked_payment(
    conn: asyncpg.Connection, payment_id: str, merchant_id: str | None = None
) -> asyncpg.Record:
    """The payment row, locked until the transaction ends (scoped to ``merchant_id``)."""
    row = await conn.fetchrow("SELECT * FROM payments WHERE payment_id = $1 FOR UPDATE", payment_id)
    if row is None or (merchant_id is not None and row["merchant_id"] != merchant_id):
        raise PaymentNotFoundError(payment_id)
    return row


async def transition(
    conn: asyncpg.Connection,
    payment_id: str,
    operation: Operation,
    outcome: Outcome,
    *,
    now: datetime,
    merchant_id: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> TransitionResult:
    """Apply one lifecycle operation to a payment, atomically, with its event.

    ``merchant_id`` scopes the lookup (a foreign payment is "not found"). Raises
    :class:`domain.lifecycle.InvalidTransitionError` for refused merchant operations.
    """
    extra = dict(changes or {})
    unknown = set(extra) - CHANGEABLE_COLUMNS
    if unknown:
        raise ValueError(f"a transition cannot set {sorted(unknown)}")
    async with conn.transaction():
        row = await locked_payment(conn, payment_id, merchant_id)
        state, decision = state_from_row(row).apply(operation, outcome)
        if isinstance(decision, Unchanged):
            return TransitionResult(event_from_row(row), decision, None)
        return await write_change(conn, row, state, operation, now, extra)


async def write_change(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    state: PaymentState,
    operation: Operation,
    now: datetime,
    extra: dict[str, Any],
) -> TransitionResult:
    """Write ``state`` (and ``extra`` columns) to the locked ``row`` and record the event."""
    assignments = [
        "status = $2",
        "sequence = $3",
        "refunded_paisa = $4",
        "refund_reserved_paisa = $5",
        "updated_at = $6",
    ]
    values: list[Any] = [
        row["payment_id"],
        state.status.value,
        state.sequence,
        state.refunded_paisa,
        state.refund_reserved_paisa,
        now,
    ]
    for column, value in sorted(extra.items()):
        values.append(value)
        assignments.append(f"{column} = ${len(values)}")
    await conn.execute(
        f"UPDATE payments SET {', '.join(assignments)} WHERE payment_id = $1",
        *values,
    )
    event = event_from_row(
        row,
        **{column: value for column, value in extra.items() if column in _EVENT_FIELDS},
        status=state.status.value,
        previous_status=row["status"],
        sequence=state.sequence,
        refunded_paisa=state.refunded_paisa,
        occurred_at=now,
        operation=operation.value,
    )
    outbox = await _record_change(conn, event, operation.value)
    return TransitionResult(event, Moved(state.status), outbox)


async def mark_published(conn: asyncpg.Connection, events: Sequence[OutboxEvent]) -> None:
    """Record that these events are in Kafka."""
    if not events:
        return
    await conn.execute(
        "UPDATE payment_status_history SET published_at = now()"
        " WHERE (payment_id, sequence) IN (SELECT * FROM unnest($1::text[], $2::int[]))"
        " AND published_at IS NULL",
        [e.payment_id for e in events],
        [e.sequence for e in events],
    )


async def unpublished(
    conn: asyncpg.Connection,
    *,
    payment_id: str | None = None,
    older_than_s: float = 0.0,
    limit: int = 500,
) -> list[OutboxEvent]:
    """Events not yet published, oldest first (per payment in sequence order).

    Inside a transaction the rows are locked (``SKIP LOCKED``) so that several relays
    never publish the same rows at once.
    """
    rows = await conn.fetch(
        "SELECT payment_id, sequence, event_version, event_body FROM payment_status_history"
        " WHERE published_at IS NULL AND event_body IS NOT NULL"
        " AND ($1::text IS NULL OR payment_id = $1)"
        " AND recorded_at <= now() - make_interval(secs => $2)"
        " ORDER BY recorded_at, payment_id, sequence LIMIT $3 FOR UPDATE SKIP LOCKED",
        payment_id,
        older_than_s,
        limit,
    )
    return [
        OutboxEvent(
            r["payment_id"], r["sequence"], bytes(r["event_body"]), _headers(r["event_version"])
        )
        for r in rows
    ]


def decode_outbox(event: OutboxEvent) -> PaymentStatusChanged:
    """The status event an outbox row carries."""
    decoded = decode(event.body, event.headers, REGISTRY)
    assert isinstance(decoded, PaymentStatusChanged)
    return decoded


async def get_payment(
    conn: asyncpg.Connection, payment_id: str, merchant_id: str | None = None
) -> asyncpg.Record:
    """One payment row (scoped to ``merchant_id`` when given)."""
    row = await conn.fetchrow("SELECT * FROM payments WHERE payment_id = $1", payment_id)
    if row is None or (merchant_id is not None and row["merchant_id"] != merchant_id):
        raise PaymentNotFoundError(payment_id)
    return row
