-- ecshop schema v3 (MySQL/MariaDB): stock_holds_sku (sku, state) is a prefix of
-- stock_holds_sku_expiry (sku, state, expires_at), which serves every query it served
-- (and the foreign key on sku); one index fewer to update on each reserve.
DROP INDEX stock_holds_sku ON stock_holds;
