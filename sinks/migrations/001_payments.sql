-- Payments, their status history and provider attempts.
-- PostgreSQL is the source of truth; rows are upserted by the sink agents from
-- payments.events, guarded by the per-payment sequence so replays change nothing.

CREATE TABLE payments (
    payment_id       text PRIMARY KEY,
    merchant_id      text        NOT NULL,
    user_id          text        NOT NULL,
    status           text        NOT NULL,
    sequence         integer     NOT NULL CHECK (sequence >= 0),
    amount_paisa     bigint      NOT NULL CHECK (amount_paisa > 0),
    fees_paisa       bigint      NOT NULL DEFAULT 0 CHECK (fees_paisa >= 0),
    currency         char(3)     NOT NULL,
    payment_method   text        NOT NULL,
    payment_details  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    description      text        NOT NULL DEFAULT '',
    callback_url     text,
    metadata         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    provider         text,
    external_txn_id  text,
    rrn              text,
    approval_code    text,
    failure_code     text,
    failure_message  text,
    fraud_score      integer,
    request_id       text,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    processed_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payments_merchant_created ON payments (merchant_id, created_at DESC, payment_id DESC);
CREATE INDEX payments_status ON payments (status) WHERE status IN ('PENDING', 'UNKNOWN', 'REQUIRES_ACTION');

-- One row per status change: the audit trail, and proof that no change is applied twice.
CREATE TABLE payment_status_history (
    payment_id       text        NOT NULL REFERENCES payments (payment_id),
    sequence         integer     NOT NULL,
    status           text        NOT NULL,
    previous_status  text,
    occurred_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, sequence)
);

-- Written BEFORE every provider call: the guard against charging twice.
CREATE TABLE payment_attempts (
    payment_id       text        NOT NULL,
    attempt_no       integer     NOT NULL CHECK (attempt_no >= 1),
    provider         text        NOT NULL,
    idempotency_key  text        NOT NULL UNIQUE,
    outcome          text        NOT NULL DEFAULT 'SENDING',
    external_txn_id  text,
    rrn              text,
    approval_code    text,
    decline_code     text,
    decline_message  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, attempt_no)
);
