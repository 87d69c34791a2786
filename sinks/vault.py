"""The card vault in PostgreSQL (table ``payment_methods``, migration 004) and its chores.

A row keeps, in the clear, only what may be shown or searched: token, merchant, user,
brand, BIN (first six), last four, expiry, issuer, display name and a keyed fingerprint
(:mod:`domain.vault_crypto`). The PAN and the holder name are AES-256-GCM envelopes
bound to (merchant, token, field); ``key_id`` names the key of both envelopes and of
the fingerprint. The CVV never reaches this module. Deleting a payment method wipes
its envelopes and fingerprint (the row stays, without card data, as a record).

One active card per (merchant, user, card): tokenizing a card again returns the
existing token (and updates its expiry: a reissued card keeps its number). The
fingerprint lookup tries every key of the ring, so this holds during a key rotation.

``paystream vault reencrypt [--batch-size N] [--merchant-id ID]`` moves every live row
not under the active key to it, in batches, each row in its own savepoint; it is
idempotent and prints its counts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg

from domain.cards import Card
from domain.vault_crypto import DecryptionError, KeyRing, new_token, record_aad
from settings import Settings

log = logging.getLogger("paystream.vault")

QUERY_TIMEOUT_S: Final = 2.0
DEFAULT_BATCH_SIZE: Final = 500
MAX_LIST: Final = 100
"""At most this many payment methods are listed per user (``has_more`` says if cut)."""

# Queries that answer merchants return only the columns a merchant may see: never a
# ciphertext, the fingerprint, the BIN or the key id.
_FIND_LIVE: Final = """
SELECT token, merchant_id, user_id, type, brand, last4, expiry_month, expiry_year, issuer,
       display_name, created_at
FROM payment_methods
WHERE merchant_id = $1 AND user_id = $2 AND fingerprint = ANY($3::text[]) AND deleted_at IS NULL
ORDER BY created_at LIMIT 1
"""
_INSERT: Final = """
INSERT INTO payment_methods (token, merchant_id, user_id, type, brand, last4, bin, expiry_month,
    expiry_year, issuer, fingerprint, pan_ciphertext, holder_name_ciphertext, key_id,
    display_name)
VALUES ($1, $2, $3, 'CARD', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (merchant_id, user_id, fingerprint) WHERE deleted_at IS NULL DO NOTHING
RETURNING token, merchant_id, user_id, type, brand, last4, expiry_month, expiry_year, issuer,
          display_name, created_at
"""
_UPDATE_EXPIRY: Final = """
UPDATE payment_methods SET expiry_month = $3, expiry_year = $4, updated_at = now()
WHERE token = $1 AND merchant_id = $2 AND deleted_at IS NULL
RETURNING token, merchant_id, user_id, type, brand, last4, expiry_month, expiry_year, issuer,
          display_name, created_at
"""
_LIST: Final = """
SELECT token, merchant_id, user_id, type, brand, last4, expiry_month, expiry_year, issuer,
       display_name, created_at
FROM payment_methods
WHERE merchant_id = $1 AND user_id = $2 AND deleted_at IS NULL
ORDER BY created_at DESC, token DESC LIMIT $3
"""
_DELETE: Final = """
UPDATE payment_methods
SET deleted_at = now(), updated_at = now(), pan_ciphertext = NULL,
    holder_name_ciphertext = NULL, fingerprint = NULL, key_id = NULL
WHERE token = $1 AND merchant_id = $2 AND deleted_at IS NULL
RETURNING token
"""
_SECRETS: Final = """
SELECT token, merchant_id, brand, last4, expiry_month, expiry_year, pan_ciphertext,
       holder_name_ciphertext
FROM payment_methods WHERE token = $1 AND merchant_id = $2 AND deleted_at IS NULL
"""
_STALE_BATCH: Final = """
SELECT token, merchant_id, user_id, key_id, pan_ciphertext, holder_name_ciphertext
FROM payment_methods
WHERE deleted_at IS NULL AND key_id <> $1 AND token > $2 AND ($4::text IS NULL OR merchant_id = $4)
ORDER BY token LIMIT $3
FOR UPDATE SKIP LOCKED
"""
_MOVE_TO_ACTIVE: Final = """
UPDATE payment_methods
SET pan_ciphertext = $3, holder_name_ciphertext = $4, fingerprint = $5, key_id = $6,
    updated_at = now()
WHERE token = $1 AND key_id = $2 AND deleted_at IS NULL
"""


class VaultError(Exception):
    """Base class of the vault's storage errors."""


class VaultUnavailableError(VaultError):
    """PostgreSQL could not answer; the caller answers 503 (the message has no card data)."""


def keyring_from_settings(settings: Settings) -> KeyRing:
    """The key ring of this process: ``ENCRYPTION_KEY`` under ``PAYSTREAM_ENCRYPTION_KEY_ID``
    (active) plus ``PAYSTREAM_OLD_ENCRYPTION_KEYS`` (decrypt only)."""
    keys = {
        kid: secret.reveal().encode("utf-8") for kid, secret in settings.old_encryption_keys.items()
    }
    keys[settings.encryption_key_id] = settings.encryption_key.reveal().encode("utf-8")
    return KeyRing(settings.encryption_key_id, keys)


def pan_aad(merchant_id: str, token: str) -> bytes:
    """Associated data of a payment method's PAN envelope."""
    return record_aad("payment_method", merchant_id, token, "pan")


def holder_name_aad(merchant_id: str, token: str) -> bytes:
    """Associated data of a payment method's holder-name envelope."""
    return record_aad("payment_method", merchant_id, token, "holder_name")


@dataclass(frozen=True, slots=True)
class VaultedCard:
    """A stored card opened for a provider call. Never log it, put it in Kafka or keep it.

    ``pan`` and ``holder_name`` are hidden from ``repr``. There is no CVV: a charge
    with a stored card runs without one (or asks the payer again).
    """

    token: str
    brand: str
    last4: str
    expiry_month: int
    expiry_year: int
    pan: str = field(repr=False)
    holder_name: str | None = field(repr=False, default=None)


@dataclass(slots=True)
class ReencryptReport:
    """What ``reencrypt`` did: rows moved to the active key, and rows it could not move."""

    active_key_id: str
    reencrypted: int = 0
    failed: int = 0
    """Rows whose envelope did not open (their key is not configured, or it is damaged)."""
    conflicts: int = 0
    """Rows left alone because the same card already has a live row under the active key."""
    by_old_key: dict[str, int] = field(default_factory=dict)


def _dict(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else dict(row)


class Vault:
    """Payment methods in PostgreSQL; every call is time-bounded."""

    def __init__(self, pool: asyncpg.Pool, keyring: KeyRing) -> None:
        self._pool = pool
        self._keyring = keyring

    @property
    def keyring(self) -> KeyRing:
        """The key ring the vault seals and opens with."""
        return self._keyring

    async def _run(self, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, QUERY_TIMEOUT_S)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise VaultUnavailableError(f"postgres: {type(exc).__name__}") from exc

    async def tokenize(
        self, merchant_id: str, user_id: str, card: Card, holder_name: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Store ``card`` for the user; returns (public row, True if created now).

        The same card (by fingerprint under any key of the ring) already stored for this
        merchant's user returns its existing row, with the expiry updated.
        """
        candidates = list(self._keyring.fingerprints(card.pan).values())
        existing = await self._run(
            self._pool.fetchrow(_FIND_LIVE, merchant_id, user_id, candidates)
        )
        if existing is None:
            token = new_token()
            holder = None
            if holder_name:
                holder = self._keyring.encrypt(
                    holder_name.encode("utf-8"), holder_name_aad(merchant_id, token)
                )
            row = await self._run(
                self._pool.fetchrow(
                    _INSERT,
                    token,
                    merchant_id,
                    user_id,
                    card.brand.value,
                    card.last4,
                    card.bin,
                    card.expiry_month,
                    card.expiry_year,
                    card.issuer,
                    self._keyring.fingerprint(card.pan),
                    self._keyring.encrypt(card.pan.encode("ascii"), pan_aad(merchant_id, token)),
                    holder,
                    self._keyring.active_id,
                    card.display_name,
                )
            )
            if row is not None:
                return dict(row), True
            # a concurrent request stored the same card first: answer with its row
            existing = await self._run(
                self._pool.fetchrow(_FIND_LIVE, merchant_id, user_id, candidates)
            )
            if existing is None:
                raise VaultUnavailableError("the payment method vanished while being stored")
        row = existing
        if (row["expiry_month"], row["expiry_year"]) != (card.expiry_month, card.expiry_year):
            updated = await self._run(
                self._pool.fetchrow(
                    _UPDATE_EXPIRY, row["token"], merchant_id, card.expiry_month, card.expiry_year
                )
            )
            row = updated if updated is not None else row
        return dict(row), False

    async def list_for_user(
        self, merchant_id: str, user_id: str, limit: int = MAX_LIST
    ) -> tuple[list[dict[str, Any]], bool]:
        """The user's live payment methods, newest first; and whether more exist."""
        rows = await self._run(self._pool.fetch(_LIST, merchant_id, user_id, limit + 1))
        return [dict(r) for r in rows[:limit]], len(rows) > limit

    async def delete(self, merchant_id: str, token: str) -> bool:
        """Delete a live payment method and wipe its card data; False if none matched."""
        return await self._run(self._pool.fetchval(_DELETE, token, merchant_id)) is not None

    async def reveal_card(self, merchant_id: str, token: str) -> VaultedCard | None:
        """Open a merchant's stored card for a provider call; ``None`` if not live/theirs.

        DecryptionError if the envelope does not open (its key is not configured).
        The caller uses the PAN for the one provider request and drops it.
        """
        row = await self._run(self._pool.fetchrow(_SECRETS, token, merchant_id))
        if row is None:
            return None
        pan = self._keyring.decrypt(row["pan_ciphertext"], pan_aad(merchant_id, token))
        holder = None
        if row["holder_name_ciphertext"] is not None:
            holder = self._keyring.decrypt(
                row["holder_name_ciphertext"], holder_name_aad(merchant_id, token)
            ).decode("utf-8")
        log.info(
            "payment method opened", extra={"merchant_id": merchant_id, "payment_method": token}
        )
        return VaultedCard(
            token=token,
            brand=row["brand"],
            last4=row["last4"],
            expiry_month=row["expiry_month"],
            expiry_year=row["expiry_year"],
            pan=pan.decode("ascii"),
            holder_name=holder,
        )

    async def reencrypt(
        self, *, batch_size: int = DEFAULT_BATCH_SIZE, merchant_id: str | None = None
    ) -> ReencryptReport:
        """Move every live row not under the active key to it (optionally one merchant's).

        Batches of ``batch_size`` rows, each batch one transaction and each row a
        savepoint; one pass in token order, so rows that cannot be moved are counted,
        not retried forever. Running it again changes nothing.
        """
        ring = self._keyring
        report = ReencryptReport(active_key_id=ring.active_id)
        after = ""
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    _STALE_BATCH, ring.active_id, after, batch_size, merchant_id
                )
                for row in rows:
                    await self._reencrypt_row(conn, row, report)
            if not rows:
                return report
            after = rows[-1]["token"]

    async def _reencrypt_row(
        self, conn: asyncpg.Connection, row: Mapping[str, Any], report: ReencryptReport
    ) -> None:
        ring = self._keyring
        token, merchant = row["token"], row["merchant_id"]
        old_key = row["key_id"]
        try:
            pan = ring.decrypt(row["pan_ciphertext"], pan_aad(merchant, token))
            holder = row["holder_name_ciphertext"]
            if holder is not None:
                holder = ring.reencrypt(holder, holder_name_aad(merchant, token))
        except DecryptionError as exc:
            report.failed += 1
            log.error(
                "payment method not re-encrypted",
                extra={"payment_method": token, "key_id": old_key, "error": str(exc)},
            )
            return
        try:
            async with conn.transaction():
                await conn.execute(
                    _MOVE_TO_ACTIVE,
                    token,
                    old_key,
                    ring.encrypt(pan, pan_aad(merchant, token)),
                    holder,
                    ring.fingerprint(pan.decode("ascii")),
                    ring.active_id,
                )
        except asyncpg.UniqueViolationError:
            report.conflicts += 1
            log.warning(
                "payment method not re-encrypted: the same card is stored twice",
                extra={"payment_method": token, "key_id": old_key},
            )
            return
        report.reencrypted += 1
        report.by_old_key[old_key] = report.by_old_key.get(old_key, 0) + 1


async def _reencrypt(
    settings: Settings, batch_size: int, merchant_id: str | None
) -> ReencryptReport:
    pool = await asyncpg.create_pool(settings.database_dsn, min_size=1, max_size=2)
    try:
        return await Vault(pool, keyring_from_settings(settings)).reencrypt(
            batch_size=batch_size, merchant_id=merchant_id
        )
    finally:
        await pool.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paystream vault", description="card vault chores")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    reencrypt = sub.add_parser(
        "reencrypt", help="re-encrypt every stored card not under the active key"
    )
    reencrypt.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N")
    reencrypt.add_argument("--merchant-id", default=None, help="only this merchant's cards")
    return parser


def main(settings: Settings, argv: Sequence[str] | None = None) -> int:
    """``paystream vault reencrypt``: print counts; exit 1 if some rows could not be moved."""
    args = _parser().parse_args(list(argv or []))
    if args.batch_size < 1:
        print("paystream vault: --batch-size must be at least 1", file=sys.stderr)
        return 2
    report = asyncio.run(_reencrypt(settings, args.batch_size, args.merchant_id))
    moved = ", ".join(f"{kid}: {n}" for kid, n in sorted(report.by_old_key.items())) or "none"
    print(
        f"re-encrypted {report.reencrypted} payment method(s) to key {report.active_key_id} "
        f"(from {moved}); failed {report.failed}; skipped as duplicates {report.conflicts}"
    )
    return 1 if report.failed else 0
