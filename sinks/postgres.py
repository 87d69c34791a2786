"""PostgreSQL: the provider-attempt journal, written before every provider call.

Payments themselves are written by :mod:`sinks.payments`.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from domain.ports import ChargeResult, ProviderOutcome

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
