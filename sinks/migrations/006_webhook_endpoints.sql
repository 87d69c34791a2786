-- Merchants' webhook endpoints (sinks/webhook_endpoints.py; POST/GET/DELETE /api/v1/webhooks).
-- The signing secret is an AES-256-GCM envelope of the vault's key ring, bound to the
-- webhook_id (domain/vault_crypto.py); key_id names its key, for rotation. Deleting an
-- endpoint keeps the row as a record (deliveries will refer to it) and wipes the secret.

CREATE TABLE webhook_endpoints (
    webhook_id          text        PRIMARY KEY CHECK (webhook_id ~ '^we_[0-9A-Z]{26}$'),
    merchant_id         text        NOT NULL,
    url                 text        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    events              text[]      NOT NULL CHECK (cardinality(events) >= 1),
    description         text        NOT NULL DEFAULT '' CHECK (length(description) <= 255),
    status              text        NOT NULL DEFAULT 'enabled'
        CHECK (status IN ('enabled', 'disabled')),
    secret_ciphertext   text,
    key_id              text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    CONSTRAINT webhook_endpoints_secret_only_while_live CHECK (
        (deleted_at IS NULL AND secret_ciphertext IS NOT NULL AND key_id IS NOT NULL)
        OR (deleted_at IS NOT NULL AND secret_ciphertext IS NULL AND key_id IS NULL)
    )
);

-- GET /api/v1/webhooks (newest first), the per-merchant limit, and delivery's lookup.
CREATE INDEX webhook_endpoints_by_merchant
    ON webhook_endpoints (merchant_id, created_at DESC, webhook_id DESC)
    WHERE deleted_at IS NULL;
