-- ecshop schema v5 (MySQL/MariaDB): an order's fee lines next to its product lines and
-- shipping (a payment fee, gift wrapping, a discount as a negative amount), in the
-- order plugins added them; total = subtotal + shipping + the fee lines' amounts.
CREATE TABLE IF NOT EXISTS order_fees (
    order_number VARCHAR(32) NOT NULL,
    line_no INT NOT NULL CHECK (line_no > 0),
    name VARCHAR(255) NOT NULL,
    amount BIGINT NOT NULL,
    taxable TINYINT NOT NULL DEFAULT 0 CHECK (taxable IN (0, 1)),
    PRIMARY KEY (order_number, line_no),
    CONSTRAINT order_fees_order FOREIGN KEY (order_number) REFERENCES orders (number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
