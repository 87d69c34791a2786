"""Refunds in PostgreSQL: reserve on request, settle on the provider's answer.

A refund request locks its payment row and reserves the amount out of what is still
refundable (captured - refunded - reserved, see :class:`domain.lifecycle.PaymentState`),
so concurrent requests can never refund more than was captured. Settling moves the
reservation into ``refunded_paisa`` (and the payment to PARTIALLY_REFUNDED or
REFUNDED, with its event in the outbox) or, for a failed refund, releases it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from domain.ids import new_id
from domain.lifecycle import Operation
from domain.views import isoformat
from sinks.payments import (
    PaymentNotFoundError,
    TransitionResult,
    locked_payment,
    state_from_row,
    write_change,
)


class RefundNotFoundError(LookupError):
    """No such refund (or not this merchant's)."""


REFUND_COLUMNS = (
    "refund_id, payment_id, merchant_id, amount_paisa, currency, status, reason, metadata,"
    " provider, external_refund_id, failure_code, failure_message, created_at, processed_at"
)


def new_refund_id() -> str:
    """A new refund id (``rfnd_...``, time-sortable and unguessable)."""
    return new_id("rfnd")


async def create_refund(
    conn: asyncpg.Connection,
    *,
    payment_id: str,
    merchant_id: str,
    amount_paisa: int | None,
    reason: str,
    metadata: Mapping[str, str],
    now: datetime,
) -> tuple[asyncpg.Record, asyncpg.Record]:
    """Reserve and record a refund; returns (refund row, payment row).

    ``amount_paisa=None`` refunds everything still refundable. Raises
    :class:`PaymentNotFoundError`, or the lifecycle's 409/422 errors.
    """
    async with conn.transaction():
        payment = await locked_payment(conn, payment_id, merchant_id)
        state = state_from_row(payment)
        amount = state.refundable_paisa if amount_paisa is None else amount_paisa
        reserved = state.reserve_refund(amount)
        await conn.execute(
            "UPDATE payments SET refund_reserved_paisa = $2, updated_at = $3 WHERE payment_id = $1",
            payment_id,
            reserved.refund_reserved_paisa,
            now,
        )
        refund = await conn.fetchrow(
            "INSERT INTO refunds (refund_id, payment_id, merchant_id, amount_paisa, currency,"
            " reason, metadata, provider, created_at, updated_at)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {REFUND_COLUMNS}",
            new_refund_id(),
            payment_id,
            merchant_id,
            amount,
            payment["currency"].strip(),
            reason,
            dict(metadata),
            payment["provider"],
            now,
        )
    return refund, payment


async def settle_refund(
    conn: asyncpg.Connection,
    refund_id: str,
    *,
    processed: bool,
    now: datetime,
    external_refund_id: str | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> TransitionResult | None:
    """Record a refund's final outcome; returns the payment transition when it moved.

    Idempotent: a refund that is no longer PENDING is left as it is (None).
    """
    async with conn.transaction():
        refund = await conn.fetchrow(
            "SELECT payment_id, amount_paisa, status FROM refunds WHERE refund_id = $1",
            refund_id,
        )
        if refund is None:
            raise RefundNotFoundError(refund_id)
        payment = await locked_payment(conn, refund["payment_id"])
        status = await conn.fetchval(
            "SELECT status FROM refunds WHERE refund_id = $1 FOR UPDATE", refund_id
        )
        if status != "PENDING":
            return None
        state, moved = state_from_row(payment).settle_refund(
            refund["amount_paisa"], processed=processed
        )
        await conn.execute(
            "UPDATE refunds SET status = $2, external_refund_id = $3, failure_code = $4,"
            " failure_message = $5, processed_at = $6, updated_at = $6 WHERE refund_id = $1",
            refund_id,
            "PROCESSED" if processed else "FAILED",
            external_refund_id,
            failure_code,
            failure_message,
            now,
        )
        if moved is None:
            await conn.execute(
                "UPDATE payments SET refund_reserved_paisa = $2, updated_at = $3"
                " WHERE payment_id = $1",
                refund["payment_id"],
                state.refund_reserved_paisa,
                now,
            )
            return None
        return await write_change(conn, payment, state, Operation.REFUND, now, {})


async def get_refund(
    conn: asyncpg.Connection, refund_id: str, merchant_id: str | None = None
) -> asyncpg.Record:
    """One refund (scoped to ``merchant_id`` when given)."""
    row = await conn.fetchrow(
        f"SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_id = $1",
        refund_id,
    )
    if row is None or (merchant_id is not None and row["merchant_id"] != merchant_id):
        raise RefundNotFoundError(refund_id)
    return row


async def list_refunds(
    conn: asyncpg.Connection,
    merchant_id: str,
    *,
    payment_id: str | None,
    limit: int,
    starting_after: str | None,
) -> list[asyncpg.Record]:
    """A merchant's refunds, newest first, after the cursor ``starting_after``."""
    return list(
        await conn.fetch(
            f"SELECT {REFUND_COLUMNS} FROM refunds WHERE merchant_id = $1"
            " AND ($2::text IS NULL OR payment_id = $2)"
            " AND ($3::text IS NULL OR refund_id < $3)"
            " ORDER BY refund_id DESC LIMIT $4",
            merchant_id,
            payment_id,
            starting_after,
            limit,
        )
    )


async def stale_pending(
    conn: asyncpg.Connection, older_than_s: float, limit: int = 100
) -> list[asyncpg.Record]:
    """PENDING refunds not touched for ``older_than_s``: to be (re)executed."""
    return list(
        await conn.fetch(
            "SELECT r.refund_id, r.payment_id, r.merchant_id, r.amount_paisa, r.currency, r.reason,"
            " p.payment_method, p.provider, p.external_txn_id FROM refunds r"
            " JOIN payments p USING (payment_id) WHERE r.status = 'PENDING'"
            " AND r.updated_at <= now() - make_interval(secs => $1) ORDER BY r.updated_at LIMIT $2",
            older_than_s,
            limit,
        )
    )


async def touch(conn: asyncpg.Connection, refund_id: str, now: datetime) -> None:
    """Note that a PENDING refund was (re)queued, so the janitor waits before the next try."""
    await conn.execute(
        "UPDATE refunds SET updated_at = $2 WHERE refund_id = $1 AND status = 'PENDING'",
        refund_id,
        now,
    )


def refund_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The merchant-facing JSON of a refund."""
    return {
        "refund_id": row["refund_id"],
        "payment_id": row["payment_id"],
        "amount_paisa": row["amount_paisa"],
        "currency": row["currency"].strip(),
        "status": row["status"],
        "reason": row["reason"],
        "metadata": dict(row["metadata"] or {}),
        "provider": row["provider"],
        "external_refund_id": row["external_refund_id"],
        "failure": (
            {"code": row["failure_code"], "message": row["failure_message"]}
            if row["failure_code"]
            else None
        ),
        "created_at": isoformat(row["created_at"]),
        "processed_at": isoformat(row["processed_at"]),
    }


__all__ = [
    "PaymentNotFoundError",
    "RefundNotFoundError",
    "create_refund",
    "get_refund",
    "list_refunds",
    "refund_view",
    "settle_refund",
    "stale_pending",
    "touch",
]
