-- ecshop schema v7 (MySQL/MariaDB): consumption tax per product (prices include it), the
-- order's tax lines (one per tax class, computed once per order), its delivery date and
-- time slot, and the outbox: mail to buyers, written in the transaction of the order
-- change that causes it and sent after the commit. (Version 6 is the sessions table.)
ALTER TABLE products ADD COLUMN tax_class VARCHAR(32) NOT NULL DEFAULT 'standard';
ALTER TABLE order_lines ADD COLUMN tax_class VARCHAR(32) NOT NULL DEFAULT 'standard';
ALTER TABLE orders ADD COLUMN delivery_json TEXT NULL;

CREATE TABLE IF NOT EXISTS order_taxes (
    order_number VARCHAR(32) NOT NULL,
    tax_class VARCHAR(32) NOT NULL,
    rate INT NOT NULL CHECK (rate BETWEEN 0 AND 100),
    amount BIGINT NOT NULL CHECK (amount >= 0),
    tax BIGINT NOT NULL CHECK (tax >= 0),
    PRIMARY KEY (order_number, tax_class),
    CONSTRAINT order_taxes_order FOREIGN KEY (order_number) REFERENCES orders (number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS outbox (
    id BIGINT NOT NULL AUTO_INCREMENT,
    kind VARCHAR(64) NOT NULL,
    order_number VARCHAR(32) NULL,
    recipient VARCHAR(320) NOT NULL,
    data_json TEXT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'stopped')),
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE NOT NULL,
    last_error TEXT NULL,
    created_at DOUBLE NOT NULL,
    sent_at DOUBLE NULL,
    PRIMARY KEY (id),
    KEY outbox_due (status, next_attempt_at),
    CONSTRAINT outbox_order FOREIGN KEY (order_number) REFERENCES orders (number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
