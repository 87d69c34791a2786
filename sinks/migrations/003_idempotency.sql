-- Idempotency-Key records of the ingress (IETF draft "The Idempotency-Key HTTP Header
-- Field", Stripe's behaviour). One row per (merchant, key): claimed 'in_flight' by the
-- first request (INSERT ... ON CONFLICT), then 'completed' with the response to replay.
-- A 5xx or a crash deletes the claim, so the client may retry. Redis caches completed
-- rows; this table is the source of truth. ingress/idempotency_store.py is its only user.

CREATE TABLE idempotency_keys (
    merchant_id       text        NOT NULL,
    key               text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint       text        NOT NULL,  -- hex SHA-256 of method, path, canonical JSON body
    state             text        NOT NULL CHECK (state IN ('in_flight', 'completed')),
    owner             text        NOT NULL,  -- token of the claim; only its holder completes it
    response_status   smallint,
    response_headers  jsonb,                 -- the replayed headers: Content-Type, Location
    response_body     bytea,
    created_at        timestamptz NOT NULL DEFAULT now(),
    locked_at         timestamptz NOT NULL DEFAULT now(),  -- when the current claim was taken
    completed_at      timestamptz,
    expires_at        timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, key),
    CHECK (state = 'in_flight' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);

-- The purge of expired keys walks this index.
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
