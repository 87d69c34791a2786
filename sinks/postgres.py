"""PostgreSQL writers: the payment snapshot upsert and the provider-attempt journal.

Every write is idempotent. A payment row only moves forward: an event whose
``sequence`` is not greater than the stored one changes nothing, so replays,
duplicates and out-of-order deliveries are harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from domain.events import PaymentStatusChanged
from domain.ports import ChargeResult, ProviderOutcome

_UPSERT_PAYMENT = """
INSERT INTO payments AS p (
    payment_id, merchant_id, user_id, status, sequence, amount_paisa, fees_paisa, currency,
    payment_method, payment_details, description, callback_url, metadata, provider,
    external_txn_id, rrn, approval_code, failure_code, failure_message, fraud_score,
    request_id, created_at, expires_at, processed_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13::jsonb, $14, $15, $16,
        $17, $18, $19, $20, $21, $22, $23, $24, now())
ON CONFLICT (payment_id) DO UPDATE SET
    status = EXCLUDED.status, sequence = EXCLUDED.sequence, fees_paisa = EXCLUDED.fees_paisa,
    provider = EXCLUDED.provider, external_txn_id = EXCLUDED.external_txn_id,
    rrn = EXCLUDED.rrn, approval_code = EXCLUDED.approval_code,
    failure_code = EXCLUDED.failure_code, failure_message = EXCLUDED.failure_message,
    fraud_score = EXCLUDED.fraud_score, processed_at = EXCLUDED.processed_at, updated_at = now()
WHERE p.sequence < EXCLUDED.sequence
RETURNING p.payment_id
"""

_INSERT_HISTORY = """
INSERT INTO payment_status_history (payment_id, sequence, status, previous_status, occurred_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (payment_id, sequence) DO NOTHING
"""


async def apply_status_change(conn: asyncpg.Connection, event: PaymentStatusChanged) -> bool:
    """Upsert the payment snapshot and record the change; True if it moved the row forward."""
    async with conn.transaction():
        moved = await conn.fetchval(
            _UPSERT_PAYMENT,
            event.payment_id,
            event.merchant_id,
            event.user_id,
            event.status,
            event.sequence,
            event.amount_paisa,
            event.fees_paisa,
            event.currency,
            event.payment_method,
            json.dumps(event.payment_details),
            event.description,
            event.callback_url,
            json.dumps(event.metadata),
            event.provider,
            event.external_txn_id,
            event.rrn,
            event.approval_code,
            event.failure_code,
            event.failure_message,
            event.fraud_score,
            event.request_id,
            event.created_at,
            event.expires_at,
            event.processed_at,
        )
        await conn.execute(
            _INSERT_HISTORY,
            event.payment_id,
            event.sequence,
            event.status,
            event.previous_status,
            event.occurred_at,
        )
    return moved is not None


FINAL_ATTEMPT_OUTCOMES = frozenset({ProviderOutcome.APPROVED.value, ProviderOutcome.DECLINED.value})


@dataclass(frozen=True, slots=True)
class Attempt:
    """A provider attempt as journaled before the call (and completed after it)."""

    payment_id: str
    attempt_no: int
    provider: str
    idempotency_key: str
    outcome: str
    created_now: bool
    result: ChargeResult | None = None
    """The provider's recorded answer, when the attempt already has a final one."""


async def begin_attempt(
    conn: asyncpg.Connection, payment_id: str, attempt_no: int, provider: str, idempotency_key: str
) -> Attempt:
    """Journal an attempt BEFORE calling the provider; returns the existing one on replay.

    ``created_now`` is False when an earlier run journaled this attempt (a crash or a
    redelivery): the caller must then reuse its recorded final ``result`` or inquire,
    never charge blindly.
    """
    inserted = await conn.fetchval(
        "INSERT INTO payment_attempts (payment_id, attempt_no, provider, idempotency_key)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (payment_id, attempt_no) DO NOTHING"
        " RETURNING 1",
        payment_id,
        attempt_no,
        provider,
        idempotency_key,
    )
    if inserted is not None:
        return Attempt(payment_id, attempt_no, provider, idempotency_key, "SENDING", True)
    row = await conn.fetchrow(
        "SELECT * FROM payment_attempts WHERE payment_id = $1 AND attempt_no = $2",
        payment_id,
        attempt_no,
    )
    result = None
    if row["outcome"] in FINAL_ATTEMPT_OUTCOMES:
        result = ChargeResult(
            outcome=ProviderOutcome(row["outcome"]),
            provider=row["provider"],
            external_txn_id=row["external_txn_id"],
            rrn=row["rrn"],
            approval_code=row["approval_code"],
            decline_code=row["decline_code"],
            decline_message=row["decline_message"],
        )
    return Attempt(
        payment_id,
        attempt_no,
        row["provider"],
        row["idempotency_key"],
        row["outcome"],
        False,
        result,
    )


async def finish_attempt(
    conn: asyncpg.Connection, payment_id: str, attempt_no: int, result: ChargeResult
) -> None:
    """Record what the provider said about an attempt (enough to rebuild its event)."""
    await conn.execute(
        "UPDATE payment_attempts SET outcome = $3, external_txn_id = $4, rrn = $5,"
        " approval_code = $6, decline_code = $7, decline_message = $8, updated_at = now()"
        " WHERE payment_id = $1 AND attempt_no = $2",
        payment_id,
        attempt_no,
        result.outcome.value,
        result.external_txn_id,
        result.rrn,
        result.approval_code,
        result.decline_code,
        result.decline_message,
    )
