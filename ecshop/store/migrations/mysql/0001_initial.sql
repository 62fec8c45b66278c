-- ecshop schema v1 (MySQL/MariaDB): InnoDB, utf8mb4 with binary collation so SKUs and
-- names round-trip byte for byte. Times are unix seconds (DOUBLE); money is BIGINT minor units.
CREATE TABLE IF NOT EXISTS schema_version (
    version INT PRIMARY KEY,
    applied_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS products (
    sku VARCHAR(64) PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    description TEXT NOT NULL,
    price BIGINT NOT NULL CHECK (price >= 0),
    currency CHAR(3) NOT NULL,
    active TINYINT(1) NOT NULL DEFAULT 1,
    deleted_at DOUBLE NULL,
    created_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS stock (
    sku VARCHAR(64) PRIMARY KEY,
    on_hand BIGINT NOT NULL CHECK (on_hand >= 0),
    available BIGINT NOT NULL CHECK (available >= 0),
    version BIGINT NOT NULL DEFAULT 0,
    updated_at DOUBLE NOT NULL,
    CONSTRAINT stock_product FOREIGN KEY (sku) REFERENCES products (sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS stock_changes (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    sku VARCHAR(64) NOT NULL,
    delta BIGINT NOT NULL,
    on_hand_after BIGINT NOT NULL,
    reason VARCHAR(255) NOT NULL,
    actor VARCHAR(255) NOT NULL,
    ref VARCHAR(255) NULL,
    created_at DOUBLE NOT NULL,
    KEY stock_changes_sku (sku, id),
    CONSTRAINT stock_changes_stock FOREIGN KEY (sku) REFERENCES stock (sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS stock_holds (
    token VARCHAR(64) NOT NULL,
    sku VARCHAR(64) NOT NULL,
    qty BIGINT NOT NULL CHECK (qty > 0),
    state VARCHAR(16) NOT NULL,
    expires_at DOUBLE NOT NULL,
    created_at DOUBLE NOT NULL,
    PRIMARY KEY (token, sku),
    KEY stock_holds_expiry (state, expires_at),
    KEY stock_holds_sku (sku, state),
    CONSTRAINT stock_holds_stock FOREIGN KEY (sku) REFERENCES stock (sku)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS orders (
    number VARCHAR(32) PRIMARY KEY,
    access_token VARCHAR(64) NOT NULL,
    status VARCHAR(24) NOT NULL,
    stock_state VARCHAR(16) NOT NULL,
    gateway VARCHAR(64) NOT NULL,
    currency CHAR(3) NOT NULL,
    subtotal BIGINT NOT NULL,
    shipping BIGINT NOT NULL DEFAULT 0,
    total BIGINT NOT NULL CHECK (total >= 0),
    customer_json TEXT NOT NULL,
    hold_expires_at DOUBLE NULL,
    payment_id VARCHAR(128) NULL,
    paid_amount BIGINT NOT NULL DEFAULT 0,
    refunded_amount BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL,
    KEY orders_status (status, created_at),
    KEY orders_stock_state (stock_state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS order_lines (
    order_number VARCHAR(32) NOT NULL,
    line_no INT NOT NULL,
    sku VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    unit_price BIGINT NOT NULL,
    qty BIGINT NOT NULL CHECK (qty > 0),
    line_total BIGINT NOT NULL,
    PRIMARY KEY (order_number, line_no),
    KEY order_lines_sku (sku),
    CONSTRAINT order_lines_order FOREIGN KEY (order_number) REFERENCES orders (number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS order_events (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    order_number VARCHAR(32) NOT NULL,
    from_status VARCHAR(24) NULL,
    to_status VARCHAR(24) NOT NULL,
    actor VARCHAR(255) NOT NULL,
    reason VARCHAR(1000) NOT NULL,
    data_json TEXT NULL,
    created_at DOUBLE NOT NULL,
    KEY order_events_order (order_number, id),
    CONSTRAINT order_events_order FOREIGN KEY (order_number) REFERENCES orders (number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS payments_journal (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    gateway VARCHAR(64) NOT NULL,
    event_id VARCHAR(191) NOT NULL,
    order_number VARCHAR(32) NOT NULL,
    type VARCHAR(64) NOT NULL,
    amount BIGINT NOT NULL,
    currency CHAR(3) NOT NULL,
    payment_id VARCHAR(128) NULL,
    payload_json TEXT NOT NULL,
    outcome VARCHAR(64) NULL,
    received_at DOUBLE NOT NULL,
    applied_at DOUBLE NULL,
    UNIQUE KEY payments_journal_event (gateway, event_id),
    KEY payments_journal_order (order_number, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope VARCHAR(32) NOT NULL,
    `key` VARCHAR(255) NOT NULL,
    request_hash CHAR(64) NOT NULL,
    ref VARCHAR(64) NOT NULL,
    created_at DOUBLE NOT NULL,
    expires_at DOUBLE NOT NULL,
    PRIMARY KEY (scope, `key`),
    KEY idempotency_keys_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS leases (
    name VARCHAR(64) PRIMARY KEY,
    holder VARCHAR(255) NOT NULL,
    expires_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS settings (
    name VARCHAR(64) PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
