"""Webhook endpoints in PostgreSQL (table ``webhook_endpoints``, migration 006).

The signing secret is sealed with the vault's :class:`~domain.vault_crypto.KeyRing`
(AES-256-GCM, associated data bound to the endpoint's ``webhook_id``), so a ciphertext
copied to another row does not open. Only :meth:`WebhookEndpointStore.reveal_secret`
(for delivery) ever decrypts it; every query that answers a merchant leaves the
ciphertext out.

At most ``limit`` live endpoints per merchant: creation takes a transaction-scoped
advisory lock on the merchant, counts, then inserts, so concurrent creates cannot
exceed the limit. Deleting wipes the secret and keeps the row as a record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

import asyncpg

from domain.vault_crypto import KeyRing, record_aad

QUERY_TIMEOUT_S: Final = 2.0
_LOCK_CLASS: Final = 0x7765_6268  # "webh": namespace of the per-merchant advisory lock
_PUBLIC_COLUMNS: Final = "webhook_id, merchant_id, url, events, description, status, created_at"

_LOCK_MERCHANT: Final = "SELECT pg_advisory_xact_lock($1, hashtext($2))"
_COUNT_LIVE: Final = (
    "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1 AND deleted_at IS NULL"
)
_INSERT: Final = f"""
INSERT INTO webhook_endpoints
    (webhook_id, merchant_id, url, events, description, secret_ciphertext, key_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING {_PUBLIC_COLUMNS}
"""
_LIST: Final = f"""
SELECT {_PUBLIC_COLUMNS} FROM webhook_endpoints
WHERE merchant_id = $1 AND deleted_at IS NULL
ORDER BY created_at DESC, webhook_id DESC LIMIT $2
"""
_GET: Final = f"""
SELECT {_PUBLIC_COLUMNS} FROM webhook_endpoints
WHERE webhook_id = $1 AND merchant_id = $2 AND deleted_at IS NULL
"""
_DELETE: Final = """
UPDATE webhook_endpoints
SET deleted_at = now(), updated_at = now(), secret_ciphertext = NULL, key_id = NULL
WHERE webhook_id = $1 AND merchant_id = $2 AND deleted_at IS NULL
RETURNING webhook_id
"""
_SELECT_SEALED: Final = """
SELECT secret_ciphertext FROM webhook_endpoints WHERE webhook_id = $1 AND deleted_at IS NULL
"""


class WebhookEndpointError(Exception):
    """Base class of the webhook endpoint store's errors."""


class WebhookStoreUnavailableError(WebhookEndpointError):
    """PostgreSQL could not answer; the caller answers 503."""


class WebhookLimitError(WebhookEndpointError):
    """The merchant already has the maximum number of live endpoints."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} webhook endpoints per merchant")
        self.limit = limit


def secret_aad(webhook_id: str) -> bytes:
    """Associated data of an endpoint's secret envelope: bound to its webhook_id."""
    return record_aad("webhook_endpoint", webhook_id, "secret")


class WebhookEndpointStore:
    """Webhook endpoints of merchants; every call is time-bounded."""

    def __init__(self, pool: asyncpg.Pool, keyring: KeyRing) -> None:
        self._pool = pool
        self._keyring = keyring

    async def _run(self, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, QUERY_TIMEOUT_S)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise WebhookStoreUnavailableError(f"postgres: {type(exc).__name__}") from exc

    async def create(
        self,
        *,
        webhook_id: str,
        merchant_id: str,
        url: str,
        events: Sequence[str],
        description: str,
        secret: str,
        limit: int,
    ) -> dict[str, Any]:
        """Store a new endpoint with its sealed secret; WebhookLimitError past ``limit``."""
        sealed = self._keyring.encrypt(secret.encode("utf-8"), secret_aad(webhook_id))

        async def insert() -> asyncpg.Record:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_LOCK_MERCHANT, _LOCK_CLASS, merchant_id)
                if await conn.fetchval(_COUNT_LIVE, merchant_id) >= limit:
                    raise WebhookLimitError(limit)
                return await conn.fetchrow(
                    _INSERT,
                    webhook_id,
                    merchant_id,
                    url,
                    list(events),
                    description,
                    sealed,
                    self._keyring.active_id,
                )

        return dict(await self._run(insert()))

    async def list_for_merchant(self, merchant_id: str, limit: int) -> list[dict[str, Any]]:
        """The merchant's live endpoints, newest first (at most ``limit``)."""
        rows = await self._run(self._pool.fetch(_LIST, merchant_id, limit))
        return [dict(row) for row in rows]

    async def get(self, merchant_id: str, webhook_id: str) -> dict[str, Any] | None:
        """One live endpoint of the merchant, or None (unknown, deleted or someone else's)."""
        row = await self._run(self._pool.fetchrow(_GET, webhook_id, merchant_id))
        return None if row is None else dict(row)

    async def delete(self, merchant_id: str, webhook_id: str) -> bool:
        """Delete a live endpoint and wipe its secret; False if none matched."""
        return await self._run(self._pool.fetchval(_DELETE, webhook_id, merchant_id)) is not None

    async def reveal_secret(self, webhook_id: str) -> str | None:
        """The endpoint's signing secret, for delivery only (None if deleted or unknown).

        DecryptionError if the envelope does not open (its key is not configured).
        """
        sealed = await self._run(self._pool.fetchval(_SELECT_SEALED, webhook_id))
        if sealed is None:
            return None
        return self._keyring.decrypt(sealed, secret_aad(webhook_id)).decode("utf-8")
