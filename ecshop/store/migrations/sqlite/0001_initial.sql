-- ecshop schema v1 (SQLite). Times are unix seconds (REAL); money is integer minor units.
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY CHECK (length(sku) BETWEEN 1 AND 64),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price INTEGER NOT NULL CHECK (price >= 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    active INTEGER NOT NULL DEFAULT 1,
    deleted_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

-- on_hand: units in the warehouse, not yet shipped (the truth).
-- available: sellable units, kept by the SQL stock engine (the Redis engine keeps its own).
CREATE TABLE IF NOT EXISTS stock (
    sku TEXT PRIMARY KEY REFERENCES products (sku),
    on_hand INTEGER NOT NULL CHECK (on_hand >= 0),
    available INTEGER NOT NULL CHECK (available >= 0),
    version INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);

-- Every change of on_hand, with its reason: the audit trail.
CREATE TABLE IF NOT EXISTS stock_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL REFERENCES stock (sku),
    delta INTEGER NOT NULL,
    on_hand_after INTEGER NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    ref TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS stock_changes_sku ON stock_changes (sku, id);

-- Holds and sales of the SQL stock engine (state: held | committed).
CREATE TABLE IF NOT EXISTS stock_holds (
    token TEXT NOT NULL,
    sku TEXT NOT NULL REFERENCES stock (sku),
    qty INTEGER NOT NULL CHECK (qty > 0),
    state TEXT NOT NULL,
    expires_at REAL NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (token, sku)
);
CREATE INDEX IF NOT EXISTS stock_holds_expiry ON stock_holds (state, expires_at);
CREATE INDEX IF NOT EXISTS stock_holds_sku ON stock_holds (sku, state);

-- stock_state: what the order holds in the stock engine:
-- held | committed | released | shipped | none (paid but no stock: needs_attention)
CREATE TABLE IF NOT EXISTS orders (
    number TEXT PRIMARY KEY,
    access_token TEXT NOT NULL,
    status TEXT NOT NULL,
    stock_state TEXT NOT NULL,
    gateway TEXT NOT NULL,
    currency TEXT NOT NULL,
    subtotal INTEGER NOT NULL,
    shipping INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL CHECK (total >= 0),
    customer_json TEXT NOT NULL,
    hold_expires_at REAL,
    payment_id TEXT,
    paid_amount INTEGER NOT NULL DEFAULT 0,
    refunded_amount INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_status ON orders (status, created_at);
CREATE INDEX IF NOT EXISTS orders_stock_state ON orders (stock_state);

CREATE TABLE IF NOT EXISTS order_lines (
    order_number TEXT NOT NULL REFERENCES orders (number),
    line_no INTEGER NOT NULL,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    unit_price INTEGER NOT NULL,
    qty INTEGER NOT NULL CHECK (qty > 0),
    line_total INTEGER NOT NULL,
    PRIMARY KEY (order_number, line_no)
);
CREATE INDEX IF NOT EXISTS order_lines_sku ON order_lines (sku);

CREATE TABLE IF NOT EXISTS order_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_number TEXT NOT NULL REFERENCES orders (number),
    from_status TEXT,
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    data_json TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS order_events_order ON order_events (order_number, id);

-- Every verified gateway event, once per (gateway, event_id).
CREATE TABLE IF NOT EXISTS payments_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway TEXT NOT NULL,
    event_id TEXT NOT NULL,
    order_number TEXT NOT NULL,
    type TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    payment_id TEXT,
    payload_json TEXT NOT NULL,
    outcome TEXT,
    received_at REAL NOT NULL,
    applied_at REAL,
    UNIQUE (gateway, event_id)
);
CREATE INDEX IF NOT EXISTS payments_journal_order ON payments_journal (order_number, id);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    ref TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Leases for one-leader-at-a-time jobs (the reconciler).
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);

-- Shop-wide switches shared by every worker and host (maintenance mode).
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
