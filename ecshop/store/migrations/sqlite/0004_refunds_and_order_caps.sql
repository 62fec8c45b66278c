-- ecshop schema v4 (SQLite): a product may cap the units of one order; every refund is
-- recorded once under the gateway's own refund id, whoever started it (the shop, or the
-- merchant in the gateway's dashboard), so a refund notification and the shop's own
-- record of the same refund count once.
ALTER TABLE products ADD COLUMN max_per_order INTEGER CHECK (max_per_order IS NULL OR max_per_order > 0);

CREATE TABLE IF NOT EXISTS order_refunds (
    gateway TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    order_number TEXT NOT NULL REFERENCES orders (number),
    amount INTEGER NOT NULL CHECK (amount > 0),
    origin TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (gateway, refund_id)
);
CREATE INDEX IF NOT EXISTS order_refunds_order ON order_refunds (order_number);

-- the gateway's refund id of a journaled refund.succeeded, so a replay matches it too
ALTER TABLE payments_journal ADD COLUMN refund_id TEXT;
