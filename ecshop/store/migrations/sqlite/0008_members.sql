-- ecshop schema v8 (SQLite): member accounts. The email is kept lower-cased and unique;
-- the password as an argon2id hash. An order placed while logged in names its member. A
-- password reset is a single-use token kept only as its SHA-256. Login attempts are
-- counted per account and per client address (both as SHA-256 keys) to throttle guessing.
CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    address_json TEXT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

ALTER TABLE orders ADD COLUMN member_id TEXT NULL;
CREATE INDEX IF NOT EXISTS orders_member ON orders (member_id, created_at);
CREATE INDEX IF NOT EXISTS sessions_member ON sessions (member_id);

CREATE TABLE IF NOT EXISTS password_resets (
    token_hash TEXT PRIMARY KEY,
    member_id TEXT NOT NULL REFERENCES members (id),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL NULL
);
CREATE INDEX IF NOT EXISTS password_resets_member ON password_resets (member_id);

CREATE TABLE IF NOT EXISTS login_attempts (
    scope_key TEXT NOT NULL,
    attempt TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (scope_key, attempt)
);
CREATE INDEX IF NOT EXISTS login_attempts_window ON login_attempts (scope_key, at);
CREATE INDEX IF NOT EXISTS login_attempts_age ON login_attempts (at);
