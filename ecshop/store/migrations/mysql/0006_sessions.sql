-- ecshop schema v6 (MySQL/MariaDB): storefront sessions kept server-side. The row is
-- found by the SHA-256 of the cookie's random id, so the table alone opens no session.
-- data_json holds the cart, the checkout form and one-shot messages; member_id is for
-- accounts.
CREATE TABLE IF NOT EXISTS sessions (
    id_hash CHAR(64) PRIMARY KEY,
    csrf_token CHAR(64) NOT NULL,
    member_id VARCHAR(64) NULL,
    data_json MEDIUMTEXT NOT NULL,
    created_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL,
    expires_at DOUBLE NOT NULL,
    KEY sessions_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
