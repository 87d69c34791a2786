-- Merchant listings page by payment id (time-sortable), newest first.
CREATE INDEX payments_merchant_id_desc ON payments (merchant_id, payment_id DESC);
