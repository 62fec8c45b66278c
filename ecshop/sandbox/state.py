"""The sandbox gateway's memory: payments, refunds, events and pending deliveries in SQLite.

One connection, guarded by a lock, serves the HTTP threads and the delivery worker. Each
settle or refund and the event it raises are written in one transaction, together with
the event's first queued delivery, so a restarted gateway knows every payment and
resumes every delivery that had not finished.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ecshop.errors import Conflict
from ecshop.sandbox.schema import (
    CAPTURED,
    EVENT_FAILED,
    EVENT_REFUNDED,
    EVENT_SUCCEEDED,
    EXPIRED,
    FAILED,
    PARTIALLY_REFUNDED,
    PENDING,
    REFUNDED,
    SCHEMA,
    SUCCEEDED,
    UNKNOWN,
    Fate,
    NotCaptured,
    QueuedDelivery,
    RefundTooLarge,
    SessionExpired,
    UnknownOrder,
)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _payment_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "order": row["order_no"],
        "status": row["status"],
        "amount": row["amount"],
        "currency": row["currency"],
        "payment_id": row["payment_id"],
        "refunded_amount": row["refunded_amount"],
    }


class SandboxState:
    """The gateway's SQLite file. Thread-safe; every public method is one transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- payments -------------------------------------------------------------------
    def _row(self, conn: sqlite3.Connection, order: str) -> sqlite3.Row | None:
        cur = conn.execute("SELECT * FROM payments WHERE order_no = ?", (order,))
        row: sqlite3.Row | None = cur.fetchone()
        return row

    def _upsert_pending(
        self, conn: sqlite3.Connection, link: Mapping[str, Any], now: float
    ) -> None:
        """Create the payment as ``pending``, or refresh the terms of one not yet captured."""
        row = self._row(conn, link["order"])
        terms = (link["merchant"], link["amount"], link["currency"], link["notify_url"])
        if row is None:
            conn.execute(
                "INSERT INTO payments (order_no, merchant, amount, currency, status, notify_url,"
                " return_url, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    link["order"],
                    *terms[:3],
                    PENDING,
                    link["notify_url"],
                    link["return_url"],
                    now,
                    now,
                ),
            )
        elif row["status"] not in CAPTURED:
            conn.execute(
                "UPDATE payments SET merchant = ?, amount = ?, currency = ?, notify_url = ?,"
                " return_url = ?, updated = ? WHERE order_no = ?",
                (*terms, link["return_url"], now, link["order"]),
            )

    def open_link(self, link: Mapping[str, Any]) -> dict[str, Any]:
        """The customer opened a verified pay link: the payment exists, at least as pending."""
        with self._tx() as conn:
            self._upsert_pending(conn, link, time.time())
            row = self._row(conn, link["order"])
        assert row is not None
        return _payment_view(row)

    def settle(
        self, link: Mapping[str, Any], action: str, fate: Callable[[], Fate]
    ) -> tuple[dict[str, Any], str | None]:
        """Pay or decline a verified link; capture at most once per order.

        Returns:
            The payment after the action, and the id of the event it raised (None when
            the action changed nothing: a second pay, or a decline after pay).
        """
        now = time.time()
        with self._tx() as conn:
            self._upsert_pending(conn, link, now)
            row = self._row(conn, link["order"])
            assert row is not None
            event_id = None
            if row["status"] == EXPIRED:
                raise SessionExpired(
                    f"the payment session of order {link['order']!r} has expired",
                    order=link["order"],
                )
            if action == "pay" and row["status"] not in CAPTURED:
                payment_id = _new_id("pay")
                conn.execute(
                    "UPDATE payments SET status = ?, payment_id = ?, updated = ?"
                    " WHERE order_no = ?",
                    (SUCCEEDED, payment_id, now, link["order"]),
                )
                event_id = self._raise_event(
                    conn, row, EVENT_SUCCEEDED, row["amount"], payment_id, fate, now
                )
            elif action == "decline" and row["status"] == PENDING:
                conn.execute(
                    "UPDATE payments SET status = ?, updated = ? WHERE order_no = ?",
                    (FAILED, now, link["order"]),
                )
                event_id = self._raise_event(
                    conn, row, EVENT_FAILED, row["amount"], None, fate, now
                )
            row = self._row(conn, link["order"])
        assert row is not None
        return _payment_view(row), event_id

    def expire(self, order: str) -> dict[str, Any]:
        """End an order's payment session unless it was captured or declined: a later
        pay attempt (link or form) is refused. Answers the final status; idempotent."""
        now = time.time()
        with self._tx() as conn:
            row = self._row(conn, order)
            if row is None:
                # NOTE: a session never opened is expired too, so its link stays dead.
                conn.execute(
                    "INSERT INTO payments (order_no, merchant, amount, currency, status, notify_url,"
                    " return_url, created, updated) VALUES (?, '', 0, '', ?, '', '', ?, ?)",
                    (order, EXPIRED, now, now),
                )
            elif row["status"] == PENDING:
                conn.execute(
                    "UPDATE payments SET status = ?, updated = ? WHERE order_no = ?",
                    (EXPIRED, now, order),
                )
            row = self._row(conn, order)
        assert row is not None
        return _payment_view(row)

    def payment(self, order: str) -> dict[str, Any]:
        """The status of one order's payment; ``unknown`` for an order never seen."""
        with self._lock:
            row = self._row(self._conn, order)
        if row is None:
            return {
                "order": order,
                "status": UNKNOWN,
                "amount": None,
                "currency": None,
                "payment_id": None,
                "refunded_amount": 0,
            }
        return _payment_view(row)

    def _page(
        self, table: str, filters: Mapping[str, Any], limit: int, after: int
    ) -> tuple[list[sqlite3.Row], int | None]:
        """Rows of ``table`` after cursor ``after`` by ``seq``, and the next cursor.

        ``filters`` maps a column (a constant of this module) to a value, a list of
        values, or None for no filter.
        """
        sql = f"SELECT * FROM {table} WHERE seq > ?"
        params: list[Any] = [after]
        for column, value in filters.items():
            if isinstance(value, list | tuple):
                if value:
                    sql += f" AND {column} IN ({','.join('?' * len(value))})"
                    params += list(value)
            elif value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit + 1)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (int(rows[-1]["seq"]) if more else None)

    def payments(
        self, statuses: Sequence[str], limit: int, after: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of payments in the order they were first seen, optionally by status."""
        rows, cursor = self._page("payments", {"status": list(statuses)}, limit, after)
        hidden = "refunded_amount"
        return [{k: v for k, v in _payment_view(r).items() if k != hidden} for r in rows], cursor

    # -- refunds --------------------------------------------------------------------
    def refund(
        self,
        order: str,
        amount: int,
        fate: Callable[[], Fate],
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        """Refund part or all of a captured payment.

        Returns:
            The refund record, and the id of the ``refund.succeeded`` event (None when an
            earlier refund with the same idempotency key is returned instead).

        Raises:
            UnknownOrder: the gateway never saw this order (404).
            NotCaptured: the order's payment was never captured (409).
            RefundTooLarge: the amount is more than what is left to refund (400).
            Conflict: the idempotency key was used for another refund (409).
        """
        now = time.time()
        with self._tx() as conn:
            if idempotency_key:
                cur = conn.execute(
                    "SELECT * FROM refunds WHERE idempotency_key = ?", (idempotency_key,)
                )
                earlier = cur.fetchone()
                if earlier is not None:
                    if earlier["order_no"] != order or earlier["amount"] != amount:
                        raise Conflict(
                            "this idempotency key was used for a different refund",
                            idempotency_key=idempotency_key,
                        )
                    return self._refund_view(conn, earlier), None
            row = self._row(conn, order)
            if row is None:
                raise UnknownOrder(f"no payment for order {order!r}", order=order)
            if row["status"] not in CAPTURED:
                raise NotCaptured(
                    f"the payment for order {order!r} was not captured (status {row['status']})",
                    order=order,
                    status=row["status"],
                )
            left = row["amount"] - row["refunded_amount"]
            if amount > left:
                raise RefundTooLarge(
                    f"refund of {amount} exceeds the {left} left to refund",
                    order=order,
                    refundable=left,
                )
            refunded = row["refunded_amount"] + amount
            status = REFUNDED if refunded >= row["amount"] else PARTIALLY_REFUNDED
            conn.execute(
                "UPDATE payments SET refunded_amount = ?, status = ?, updated = ?"
                " WHERE order_no = ?",
                (refunded, status, now, order),
            )
            refund_id = _new_id("re")
            conn.execute(
                "INSERT INTO refunds (id, order_no, amount, idempotency_key, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (refund_id, order, amount, idempotency_key or None, now),
            )
            event_id = self._raise_event(
                conn, row, EVENT_REFUNDED, amount, row["payment_id"], fate, now, refund_id
            )
            record = conn.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()
            return self._refund_view(conn, record), event_id

    def _refund_view(self, conn: sqlite3.Connection, refund: sqlite3.Row) -> dict[str, Any]:
        row = self._row(conn, refund["order_no"])
        assert row is not None
        return {
            "id": refund["id"],
            "order": refund["order_no"],
            "amount": refund["amount"],
            "currency": row["currency"],
            "payment_id": row["payment_id"],
            "status": row["status"],
            "refunded_amount": row["refunded_amount"],
            "created": int(refund["created"]),
        }

    # -- events and deliveries ----------------------------------------------------------
    def _raise_event(
        self,
        conn: sqlite3.Connection,
        payment: sqlite3.Row,
        type_: str,
        amount: int,
        payment_id: str | None,
        fate: Callable[[], Fate],
        now: float,
        refund_id: str | None = None,
    ) -> str:
        chosen = fate()
        event_id = _new_id("evt")
        body: dict[str, Any] = {
            "id": event_id,
            "type": type_,
            "order": payment["order_no"],
            "amount": amount,
            "currency": payment["currency"],
            "payment_id": payment_id,
            "created": int(now),
        }
        if refund_id is not None:
            body["refund_id"] = refund_id
        conn.execute(
            "INSERT INTO events (id, order_no, type, notify_url, body, created)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, payment["order_no"], type_, payment["notify_url"], json.dumps(body), now),
        )
        conn.execute(
            "INSERT INTO queue (event_id, attempt, due_at, drop_it, dup_it) VALUES (?, 1, ?, ?, ?)",
            (event_id, now + chosen.delay, int(chosen.drop), int(chosen.dup)),
        )
        return event_id

    def due(self, now: float, exclude: Sequence[int], limit: int = 200) -> list[QueuedDelivery]:
        """Queued deliveries whose time has come, earliest first, leaving out ``exclude``."""
        sql = (
            "SELECT q.*, e.order_no, e.type, e.notify_url, e.body FROM queue q"
            " JOIN events e ON e.id = q.event_id WHERE q.due_at <= ?"
        )
        params: list[Any] = [now]
        if exclude:
            sql += f" AND q.id NOT IN ({','.join('?' * len(exclude))})"
            params += list(exclude)
        sql += " ORDER BY q.due_at, q.id LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [
            QueuedDelivery(
                id=r["id"],
                event_id=r["event_id"],
                attempt=r["attempt"],
                due_at=r["due_at"],
                drop_it=bool(r["drop_it"]),
                dup_it=bool(r["dup_it"]),
                duplicate=bool(r["duplicate"]),
                order=r["order_no"],
                type=r["type"],
                notify_url=r["notify_url"],
                body=r["body"].encode("utf-8"),
            )
            for r in rows
        ]

    def next_due(self, exclude: Sequence[int] = ()) -> float | None:
        """When the earliest queued delivery is due, leaving out ``exclude``; None when
        there is none."""
        sql, params = "SELECT MIN(due_at) FROM queue", list(exclude)
        if exclude:
            sql += f" WHERE id NOT IN ({','.join('?' * len(exclude))})"
        with self._lock:
            value = self._conn.execute(sql, params).fetchone()[0]
        return None if value is None else float(value)

    def pending_count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0])

    def record_attempt(
        self,
        item: QueuedDelivery,
        outcome: str,
        *,
        http_status: int | None = None,
        error: str | None = None,
        retry_at: float | None = None,
        duplicate_at: float | None = None,
    ) -> None:
        """Log one attempt, then retry it at ``retry_at`` or take it off the queue.

        ``duplicate_at`` queues a second copy of the same event (a duplicate delivery).
        """
        now = time.time()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO deliveries (event_id, order_no, type, attempt, outcome, http_status,"
                " dropped, duplicate, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item.event_id,
                    item.order,
                    item.type,
                    item.attempt,
                    outcome,
                    http_status,
                    int(outcome == "dropped"),
                    int(item.duplicate),
                    error,
                    now,
                ),
            )
            if retry_at is None:
                conn.execute("DELETE FROM queue WHERE id = ?", (item.id,))
            else:
                conn.execute(
                    "UPDATE queue SET attempt = attempt + 1, due_at = ?, drop_it = 0 WHERE id = ?",
                    (retry_at, item.id),
                )
            if duplicate_at is not None:
                conn.execute(
                    "INSERT INTO queue (event_id, attempt, due_at, duplicate) VALUES (?, 1, ?, 1)",
                    (item.event_id, duplicate_at),
                )

    def deliveries(
        self, *, order: str | None, event_id: str | None, limit: int, after: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of recorded delivery attempts, oldest first."""
        filters = {"order_no": order, "event_id": event_id}
        rows, cursor = self._page("deliveries", filters, limit, after)
        items = [
            {
                "seq": r["seq"],
                "event_id": r["event_id"],
                "type": r["type"],
                "order": r["order_no"],
                "attempt": r["attempt"],
                "outcome": r["outcome"],
                "http_status": r["http_status"],
                "dropped": bool(r["dropped"]),
                "duplicate": bool(r["duplicate"]),
                "error": r["error"],
                "at": r["at"],
            }
            for r in rows
        ]
        return items, cursor

    def events(
        self, *, order: str | None, limit: int, after: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of raised events (the notification bodies), oldest first."""
        rows, cursor = self._page("events", {"order_no": order}, limit, after)
        return [json.loads(r["body"]) for r in rows], cursor
