-- Every status change is now decided and written in PostgreSQL (row lock, transition
-- table, sequence + 1) and recorded in payment_status_history together with the
-- encoded event: the history doubles as the transactional outbox that the relay
-- publishes to payments.events. Refunds get their own table.

ALTER TABLE payments
    ADD COLUMN refunded_paisa        bigint NOT NULL DEFAULT 0 CHECK (refunded_paisa >= 0),
    ADD COLUMN refund_reserved_paisa bigint NOT NULL DEFAULT 0 CHECK (refund_reserved_paisa >= 0),
    ADD COLUMN capture_method        text   NOT NULL DEFAULT 'automatic',
    ADD COLUMN cancellation_reason   text,
    ADD CONSTRAINT payments_refunds_within_amount
        CHECK (refunded_paisa + refund_reserved_paisa <= amount_paisa);

ALTER TABLE payment_status_history
    ADD COLUMN operation      text,
    ADD COLUMN event_schema   text,
    ADD COLUMN event_version  integer,
    ADD COLUMN event_body     bytea,
    ADD COLUMN published_at   timestamptz;

-- changes recorded before the outbox existed were already published by their agents
UPDATE payment_status_history SET published_at = recorded_at WHERE published_at IS NULL;

CREATE INDEX payment_status_history_unpublished
    ON payment_status_history (recorded_at) WHERE published_at IS NULL;

CREATE INDEX payments_open_by_expiry
    ON payments (expires_at) WHERE status IN ('CREATED', 'REQUIRES_ACTION', 'AUTHORIZED');

CREATE TABLE refunds (
    refund_id          text PRIMARY KEY,
    payment_id         text        NOT NULL REFERENCES payments (payment_id),
    merchant_id        text        NOT NULL,
    amount_paisa       bigint      NOT NULL CHECK (amount_paisa > 0),
    currency           char(3)     NOT NULL,
    status             text        NOT NULL DEFAULT 'PENDING'
                                   CHECK (status IN ('PENDING', 'PROCESSED', 'FAILED')),
    reason             text        NOT NULL DEFAULT '',
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    provider           text,
    external_refund_id text,
    failure_code       text,
    failure_message    text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    processed_at       timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refunds_payment ON refunds (payment_id, created_at);
CREATE INDEX refunds_merchant_created ON refunds (merchant_id, created_at DESC, refund_id DESC);
