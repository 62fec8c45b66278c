-- ecshop schema v10 (SQLite): the admin's list of orders, newest first, read a page at a
-- time after a (created_at, number) cursor (ecshop.order_search).
CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at, number);
