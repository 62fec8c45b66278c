-- ecshop schema v6 (SQLite): storefront sessions kept server-side. The row is found by
-- the SHA-256 of the cookie's random id, so the table alone opens no session. data_json
-- holds the cart, the checkout form and one-shot messages; member_id is for accounts.
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    csrf_token TEXT NOT NULL,
    member_id TEXT,
    data_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
