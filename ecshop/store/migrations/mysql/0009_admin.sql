-- ecshop schema v9 (MySQL/MariaDB): the owner's accounts for the admin pages, and the
-- audit log of every admin change (web, API and CLI): who, when, what, before and after.
CREATE TABLE IF NOT EXISTS admin_users (
    id CHAR(32) NOT NULL,
    username VARCHAR(64) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    role VARCHAR(16) NOT NULL CHECK (role IN ('owner', 'staff')),
    totp_secret VARCHAR(64) NULL,
    created_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL,
    disabled_at DOUBLE NULL,
    PRIMARY KEY (id),
    UNIQUE KEY admin_users_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS audit_log (
    id BIGINT NOT NULL AUTO_INCREMENT,
    at DOUBLE NOT NULL,
    actor VARCHAR(100) NOT NULL,
    via VARCHAR(8) NOT NULL CHECK (via IN ('web', 'api', 'cli')),
    action VARCHAR(64) NOT NULL,
    target VARCHAR(255) NOT NULL DEFAULT '',
    before_json MEDIUMTEXT NULL,
    after_json MEDIUMTEXT NULL,
    PRIMARY KEY (id),
    KEY audit_log_at (at),
    KEY audit_log_action (action, at),
    KEY audit_log_target (target, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
