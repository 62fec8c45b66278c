"""The database side of stock, shared by both engines.

``on_hand`` changes only here, by a delta with a reason and a ``stock_changes`` row in
the same transaction. Also the reads that rebuild and audit an engine from the
database: the Redis engine's holds and sales are the orders with
``stock_state = 'held' | 'committed'``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ecshop.errors import InsufficientStock, NotFound, StaleStock
from ecshop.stock._types import NEVER
from ecshop.store import Tx


def for_update(tx: Tx) -> str:
    """The row-lock clause of the dialect (SQLite locks the database at BEGIN IMMEDIATE)."""
    return " FOR UPDATE" if tx.dialect == "mysql" else ""


def stock_row(tx: Tx, sku: str, *, lock: bool = False) -> dict[str, int]:
    """The ``stock`` row of a SKU (locked for update when asked).

    Raises:
        NotFound: no such SKU.
    """
    row = tx.one(
        "SELECT on_hand, available FROM stock WHERE sku = ?" + (for_update(tx) if lock else ""),
        (sku,),
    )
    if row is None:
        raise NotFound(f"no stock for sku {sku!r}", sku=sku)
    return {"on_hand": int(row["on_hand"]), "available": int(row["available"])}


def insert_sku(tx: Tx, sku: str, on_hand: int, *, actor: str) -> bool:
    """Create the stock row of a new SKU (with its audit row); False when it exists."""
    if tx.one("SELECT sku FROM stock WHERE sku = ?", (sku,)) is not None:
        return False
    now = time.time()
    tx.execute(
        "INSERT INTO stock (sku, on_hand, available, version, updated_at) VALUES (?, ?, ?, 0, ?)",
        (sku, on_hand, on_hand, now),
    )
    tx.execute(
        "INSERT INTO stock_changes (sku, delta, on_hand_after, reason, actor, ref, created_at) "
        "VALUES (?, ?, ?, 'initial', ?, NULL, ?)",
        (sku, on_hand, on_hand, actor, now),
    )
    return True


def apply_delta(
    tx: Tx,
    sku: str,
    delta: int,
    *,
    reason: str,
    actor: str,
    ref: str | None = None,
    available_too: bool = False,
) -> int:
    """Move ``on_hand`` by ``delta`` with its audit row; return the new ``on_hand``.

    With ``available_too`` (the SQL engine) ``available`` moves by the same delta and
    may not go below zero either.

    Raises:
        NotFound: no such SKU.
        InsufficientStock: the change would take ``on_hand`` (or ``available``) below 0.
    """
    row = stock_row(tx, sku, lock=True)
    after = row["on_hand"] + delta
    if after < 0 or (available_too and row["available"] + delta < 0):
        have = row["available"] if available_too else row["on_hand"]
        raise InsufficientStock([(sku, -delta, have)])
    tx.execute(
        "UPDATE stock SET on_hand = ?, version = version + 1, updated_at = ?"
        + (", available = available + ?" if available_too else "")
        + " WHERE sku = ?",
        (after, time.time(), delta, sku) if available_too else (after, time.time(), sku),
    )
    tx.execute(
        "INSERT INTO stock_changes (sku, delta, on_hand_after, reason, actor, ref, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sku, delta, after, reason, actor, ref, time.time()),
    )
    return after


def stale_check(tx: Tx, sku: str, expected_on_hand: int) -> int:
    """The current ``on_hand`` (row locked); raise when it is not the expected base.

    Raises:
        StaleStock: ``on_hand`` is no longer ``expected_on_hand``.
    """
    current = stock_row(tx, sku, lock=True)["on_hand"]
    if current != expected_on_hand:
        raise StaleStock(
            f"on_hand of {sku} is {current}, not {expected_on_hand}: reload and try again",
            sku=sku,
            on_hand=current,
            expected_on_hand=expected_on_hand,
        )
    return current


def shipped_before(tx: Tx, ref: str) -> bool:
    """True when units left under ``ref`` already (audit rows with reason ``ship``)."""
    return (
        tx.one("SELECT id FROM stock_changes WHERE ref = ? AND reason = 'ship'", (ref,)) is not None
    )


def on_hand_of(tx: Tx, skus: Iterable[str] | None) -> dict[str, int]:
    """``on_hand`` of the given SKUs (all SKUs when None)."""
    if skus is None:
        rows = tx.query("SELECT sku, on_hand FROM stock ORDER BY sku")
    else:
        wanted = sorted(set(skus))
        rows = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows += tx.query(f"SELECT sku, on_hand FROM stock WHERE sku IN ({marks})", chunk)
    return {r["sku"]: int(r["on_hand"]) for r in rows}


def sku_page(tx: Tx, *, after: str | None, limit: int) -> list[str]:
    """Up to ``limit`` SKUs after ``after``, in SKU order."""
    if after:
        rows = tx.query("SELECT sku FROM stock WHERE sku > ? ORDER BY sku LIMIT ?", (after, limit))
    else:
        rows = tx.query("SELECT sku FROM stock ORDER BY sku LIMIT ?", (limit,))
    return [r["sku"] for r in rows]


def changes_drift(tx: Tx) -> dict[str, tuple[int, int]]:
    """SKUs whose ``on_hand`` is not the sum of its audit rows: sku -> (on_hand, sum)."""
    rows = tx.query(
        "SELECT s.sku AS sku, s.on_hand AS on_hand, COALESCE(SUM(c.delta), 0) AS total "
        "FROM stock s LEFT JOIN stock_changes c ON c.sku = s.sku GROUP BY s.sku, s.on_hand"
    )
    return {
        r["sku"]: (int(r["on_hand"]), int(r["total"]))
        for r in rows
        if int(r["on_hand"]) != int(r["total"])
    }


@dataclass
class OrderHolds:
    """Holds and sales recorded in the orders table (the Redis engine's truth)."""

    held: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    expires: dict[str, float] = field(default_factory=dict)
    committed: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def per_sku(self) -> tuple[dict[str, int], dict[str, int]]:
        """Units held and sold-unshipped per SKU."""
        held: dict[str, int] = defaultdict(int)
        sold: dict[str, int] = defaultdict(int)
        for lines in self.held.values():
            for sku, qty in lines:
                held[sku] += qty
        for lines in self.committed.values():
            for sku, qty in lines:
                sold[sku] += qty
        return held, sold


def order_holds(tx: Tx, now: float) -> OrderHolds:
    """Live holds and sales (``committed``) from the orders table.

    The hold of an order still ``pending_payment`` lasts until released (its buyer may
    have paid: only the reconciler, once the gateway has said no, gives it back); any
    other hold (an offline order's pay window) is live until ``hold_expires_at``.
    """
    rows = tx.query(
        "SELECT o.number AS number, o.stock_state AS state, o.hold_expires_at AS exp, "
        "o.status AS status, "
        "l.sku AS sku, l.qty AS qty FROM orders o JOIN order_lines l ON l.order_number = o.number "
        "WHERE o.stock_state IN ('held', 'committed') ORDER BY o.number, l.sku"
    )
    found = OrderHolds()
    for r in rows:
        number = r["number"]
        if r["state"] == "held":
            if r["status"] == "pending_payment":
                found.expires[number] = NEVER
            elif r["exp"] is None or float(r["exp"]) <= now:
                continue  # an expired hold counts as released
            else:
                found.expires[number] = float(r["exp"])
            bucket = found.held
        else:
            bucket = found.committed
        lines = bucket.setdefault(number, [])
        merged = dict(lines)
        merged[r["sku"]] = merged.get(r["sku"], 0) + int(r["qty"])
        bucket[number] = sorted(merged.items())
    return found
