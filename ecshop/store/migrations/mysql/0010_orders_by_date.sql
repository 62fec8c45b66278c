-- ecshop schema v10 (MySQL/MariaDB): the admin's list of orders, newest first, read a
-- page at a time after a (created_at, number) cursor (ecshop.order_search).
CREATE INDEX orders_created ON orders (created_at, number);
