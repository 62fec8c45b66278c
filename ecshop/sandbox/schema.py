"""The sandbox gateway's records: statuses, event types, errors, the SQLite schema, and
the rows the delivery worker passes around.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecshop.errors import BadRequest, Conflict, NotFound

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
REFUNDED = "refunded"
PARTIALLY_REFUNDED = "partially_refunded"
UNKNOWN = "unknown"
# the shop expired the payment session: it can no longer be paid
EXPIRED = "expired"
CAPTURED = frozenset({SUCCEEDED, PARTIALLY_REFUNDED, REFUNDED})
STATUSES = frozenset({PENDING, SUCCEEDED, FAILED, REFUNDED, PARTIALLY_REFUNDED, EXPIRED})


class UnknownOrder(NotFound):
    """The gateway never saw a pay link for this order."""

    code = "unknown_order"


class NotCaptured(Conflict):
    """The order's payment was never captured, so there is nothing to refund."""

    code = "not_captured"


class SessionExpired(Conflict):
    """The shop expired this order's payment session: it cannot be paid any more."""

    code = "payment_session_expired"


class RefundTooLarge(BadRequest):
    """The refund is more than what is left of the captured amount."""

    code = "refund_exceeds_payment"


EVENT_SUCCEEDED = "payment.succeeded"
EVENT_FAILED = "payment.failed"
EVENT_REFUNDED = "refund.succeeded"

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_no TEXT NOT NULL UNIQUE,
    merchant TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_id TEXT,
    refunded_amount INTEGER NOT NULL DEFAULT 0,
    notify_url TEXT NOT NULL,
    return_url TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_status ON payments (status, seq);
CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY,
    order_no TEXT NOT NULL,
    amount INTEGER NOT NULL,
    idempotency_key TEXT UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    order_no TEXT NOT NULL,
    type TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    due_at REAL NOT NULL,
    drop_it INTEGER NOT NULL DEFAULT 0,
    dup_it INTEGER NOT NULL DEFAULT 0,
    duplicate INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_due ON queue (due_at, id);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    order_no TEXT NOT NULL,
    type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    http_status INTEGER,
    dropped INTEGER NOT NULL,
    duplicate INTEGER NOT NULL,
    error TEXT,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_order ON deliveries (order_no, seq);
"""


@dataclass(frozen=True)
class QueuedDelivery:
    """One pending attempt to deliver an event (a row of ``queue``)."""

    id: int
    event_id: str
    attempt: int
    due_at: float
    drop_it: bool
    dup_it: bool
    duplicate: bool
    order: str
    type: str
    notify_url: str
    body: bytes


@dataclass(frozen=True)
class Fate:
    """What the fault switches decided for an event's delivery, drawn when it is raised."""

    delay: float = 0.0
    drop: bool = False
    dup: bool = False
