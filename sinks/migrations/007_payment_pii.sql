-- Customer personal data from a payment's metadata (customer_email, customer_phone,
-- email, phone), encrypted at field level (AES-256-GCM, key id inside, bound to the
-- payment). The metadata column, Kafka and the API only ever carry masked values.
ALTER TABLE payments ADD COLUMN pii jsonb NOT NULL DEFAULT '{}'::jsonb;
