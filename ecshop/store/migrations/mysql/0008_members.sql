-- ecshop schema v8 (MySQL/MariaDB): member accounts. The email is kept lower-cased and
-- unique; the password as an argon2id hash. An order placed while logged in names its
-- member. A password reset is a single-use token kept only as its SHA-256. Login
-- attempts are counted per account and per client address (both as SHA-256 keys) to
-- throttle guessing.
CREATE TABLE IF NOT EXISTS members (
    id CHAR(32) NOT NULL,
    email VARCHAR(320) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    name VARCHAR(200) NOT NULL DEFAULT '',
    address_json TEXT NULL,
    created_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY members_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE orders ADD COLUMN member_id CHAR(32) NULL;
CREATE INDEX orders_member ON orders (member_id, created_at);
CREATE INDEX sessions_member ON sessions (member_id);

CREATE TABLE IF NOT EXISTS password_resets (
    token_hash CHAR(64) NOT NULL,
    member_id CHAR(32) NOT NULL,
    created_at DOUBLE NOT NULL,
    expires_at DOUBLE NOT NULL,
    used_at DOUBLE NULL,
    PRIMARY KEY (token_hash),
    KEY password_resets_member (member_id),
    CONSTRAINT password_resets_member FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS login_attempts (
    scope_key CHAR(64) NOT NULL,
    attempt CHAR(32) NOT NULL,
    at DOUBLE NOT NULL,
    PRIMARY KEY (scope_key, attempt),
    KEY login_attempts_window (scope_key, at),
    KEY login_attempts_age (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
