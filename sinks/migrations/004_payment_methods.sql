-- The card vault: one row per tokenized payment method (sinks/vault.py).
-- In the clear only what may be shown or searched: token, BIN (first six), last four,
-- brand, expiry, issuer, display name and a keyed fingerprint (HMAC-SHA256 of the PAN).
-- The PAN and the holder name are AES-256-GCM envelopes bound to (merchant, token, field);
-- key_id names the key of both envelopes and of the fingerprint. No CVV column, ever.
-- Deleting wipes the envelopes and the fingerprint (the CHECK below enforces it).

CREATE TABLE payment_methods (
    token                   text        PRIMARY KEY CHECK (token ~ '^tok_[A-Za-z0-9_-]{24}$'),
    merchant_id             text        NOT NULL,
    user_id                 text        NOT NULL,
    type                    text        NOT NULL DEFAULT 'CARD' CHECK (type = 'CARD'),
    brand                   text        NOT NULL
        CHECK (brand IN ('VISA', 'MASTERCARD', 'AMEX', 'DINERS', 'DISCOVER', 'RUPAY')),
    last4                   text        NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    bin                     text        NOT NULL CHECK (bin ~ '^[0-9]{6}$'),
    expiry_month            smallint    NOT NULL CHECK (expiry_month BETWEEN 1 AND 12),
    expiry_year             smallint    NOT NULL CHECK (expiry_year BETWEEN 2000 AND 2199),
    issuer                  text,
    fingerprint             text,
    pan_ciphertext          text,
    holder_name_ciphertext  text,
    key_id                  text,
    display_name            text        NOT NULL CHECK (length(display_name) <= 40),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz,
    CONSTRAINT payment_methods_card_data_only_while_live CHECK (
        (deleted_at IS NULL AND pan_ciphertext IS NOT NULL AND fingerprint IS NOT NULL
            AND key_id IS NOT NULL)
        OR (deleted_at IS NOT NULL AND pan_ciphertext IS NULL AND holder_name_ciphertext IS NULL
            AND fingerprint IS NULL AND key_id IS NULL)
    )
);

-- Tokenizing the same card again for the same merchant's user returns the live token.
CREATE UNIQUE INDEX payment_methods_one_live_per_card
    ON payment_methods (merchant_id, user_id, fingerprint) WHERE deleted_at IS NULL;
-- GET /api/v1/users/{user_id}/payment-methods: newest first.
CREATE INDEX payment_methods_by_user
    ON payment_methods (merchant_id, user_id, created_at DESC, token DESC)
    WHERE deleted_at IS NULL;
-- paystream vault reencrypt: live rows not under the active key.
CREATE INDEX payment_methods_by_key ON payment_methods (key_id, token) WHERE deleted_at IS NULL;
