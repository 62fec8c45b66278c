-- ecshop schema v2 (MySQL/MariaDB): the SQL stock engine reclaims expired holds of the
-- SKUs a reserve touches; this index finds them without reading every live hold of a SKU.
CREATE INDEX stock_holds_sku_expiry ON stock_holds (sku, state, expires_at);
-- ship() is idempotent: it looks for the audit rows of a sale that already left.
CREATE INDEX stock_changes_ref ON stock_changes (ref, reason);
