-- ecshop schema v5 (SQLite): an order's fee lines next to its product lines and
-- shipping (a payment fee, gift wrapping, a discount as a negative amount), in the
-- order plugins added them; total = subtotal + shipping + the fee lines' amounts.
CREATE TABLE IF NOT EXISTS order_fees (
    order_number TEXT NOT NULL REFERENCES orders (number),
    line_no INTEGER NOT NULL CHECK (line_no > 0),
    name TEXT NOT NULL,
    amount INTEGER NOT NULL,
    taxable INTEGER NOT NULL DEFAULT 0 CHECK (taxable IN (0, 1)),
    PRIMARY KEY (order_number, line_no)
);
