-- ecshop schema v7 (SQLite): consumption tax per product (prices include it), the
-- order's tax lines (one per tax class, computed once per order), its delivery date and
-- time slot, and the outbox: mail to buyers, written in the transaction of the order
-- change that causes it and sent after the commit. (Version 6 is the sessions table.)
ALTER TABLE products ADD COLUMN tax_class TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE order_lines ADD COLUMN tax_class TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE orders ADD COLUMN delivery_json TEXT NULL;

CREATE TABLE IF NOT EXISTS order_taxes (
    order_number TEXT NOT NULL REFERENCES orders (number),
    tax_class TEXT NOT NULL,
    rate INTEGER NOT NULL CHECK (rate BETWEEN 0 AND 100),
    amount INTEGER NOT NULL CHECK (amount >= 0),
    tax INTEGER NOT NULL CHECK (tax >= 0),
    PRIMARY KEY (order_number, tax_class)
);

CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    order_number TEXT NULL REFERENCES orders (number),
    recipient TEXT NOT NULL,
    data_json TEXT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'stopped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT NULL,
    created_at REAL NOT NULL,
    sent_at REAL NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
