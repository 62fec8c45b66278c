-- ecshop schema v9 (SQLite): the owner's accounts for the admin pages, and the audit log
-- of every admin change (web, API and CLI): who, when, what, before and after.
CREATE TABLE IF NOT EXISTS admin_users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'staff')),
    totp_secret TEXT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    disabled_at REAL NULL
);

CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    via TEXT NOT NULL CHECK (via IN ('web', 'api', 'cli')),
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    before_json TEXT NULL,
    after_json TEXT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, at);
CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log (target, at);
