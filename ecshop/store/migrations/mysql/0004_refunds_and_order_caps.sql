-- ecshop schema v4 (MySQL/MariaDB): a product may cap the units of one order; every
-- refund is recorded once under the gateway's own refund id, whoever started it (the
-- shop, or the merchant in the gateway's dashboard), so a refund notification and the
-- shop's own record of the same refund count once.
ALTER TABLE products ADD COLUMN max_per_order INT NULL CHECK (max_per_order IS NULL OR max_per_order > 0);

CREATE TABLE IF NOT EXISTS order_refunds (
    gateway VARCHAR(64) NOT NULL,
    refund_id VARCHAR(191) NOT NULL,
    order_number VARCHAR(32) NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    origin VARCHAR(16) NOT NULL,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (gateway, refund_id),
    KEY order_refunds_order (order_number),
    CONSTRAINT order_refunds_order FOREIGN KEY (order_number) REFERENCES orders (number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- the gateway's refund id of a journaled refund.succeeded, so a replay matches it too
ALTER TABLE payments_journal ADD COLUMN refund_id VARCHAR(191) NULL;
