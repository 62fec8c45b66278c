"""The order state machine: every transition is one transaction with an event row.

States (DESIGN.md): ``pending_payment → paid → shipped``, ``pending_payment →
cancelled``, ``pending_payment → needs_attention → paid | refunded``, ``paid →
cancelled`` (restock), ``paid | shipped → refunded``; offline methods ``accepted →
paid``. A captured payment is never dropped, so a payment that arrives for an order
already cancelled (expired hold, declined first, cancelled by the customer while the
gateway captured) takes it to ``paid`` or ``needs_attention`` too.

Stock follows the state, and ``orders.stock_state`` records what the order holds in the
stock engine (``held | committed | released | shipped | none``) so that the engine can
be rebuilt from the database. Engine calls run inside the transition's transaction,
before its commit: on the SQL engine they are part of it, and on Redis a failed commit
leaves drift that ``ecshop stock audit`` shows, never a sale the database does not know.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecshop.errors import IllegalTransition, InsufficientStock, NotFound
from ecshop.store import Store, Tx

PENDING = "pending_payment"
ACCEPTED = "accepted"
PAID = "paid"
SHIPPED = "shipped"
CANCELLED = "cancelled"
NEEDS_ATTENTION = "needs_attention"
REFUNDED = "refunded"
STATUSES = (PENDING, ACCEPTED, PAID, SHIPPED, CANCELLED, NEEDS_ATTENTION, REFUNDED)

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({PAID, CANCELLED, NEEDS_ATTENTION, ACCEPTED}),
    ACCEPTED: frozenset({PAID, CANCELLED}),
    PAID: frozenset({SHIPPED, CANCELLED, REFUNDED}),
    SHIPPED: frozenset({REFUNDED}),
    NEEDS_ATTENTION: frozenset({PAID, REFUNDED}),
    CANCELLED: frozenset({PAID, NEEDS_ATTENTION}),  # a late captured payment only
    REFUNDED: frozenset(),
}

ORDER_COLUMNS = (
    "number, access_token, status, stock_state, gateway, currency, subtotal, shipping, total, "
    "customer_json, hold_expires_at, payment_id, paid_amount, refunded_amount, version, "
    "created_at, updated_at"
)


@dataclass(frozen=True)
class Change:
    """What one transition did, for hooks and callers."""

    number: str
    from_status: str
    to_status: str
    order: dict[str, Any]


def load(tx: Tx, number: str, *, lock: bool = False) -> dict[str, Any]:
    """One order row (locked for update on MySQL when ``lock``)."""
    suffix = " FOR UPDATE" if lock and tx.dialect == "mysql" else ""
    row = tx.one(f"SELECT {ORDER_COLUMNS} FROM orders WHERE number = ?{suffix}", (number,))
    if row is None:
        raise NotFound(f"no order {number!r}", number=number)
    return row


def lines_of(tx: Tx, number: str) -> list[dict[str, Any]]:
    return tx.query(
        "SELECT line_no, sku, name, unit_price, qty, line_total FROM order_lines "
        "WHERE order_number = ? ORDER BY line_no",
        (number,),
    )


def stock_lines(tx: Tx, number: str) -> list[tuple[str, int]]:
    return [(r["sku"], int(r["qty"])) for r in lines_of(tx, number)]


def record_event(
    tx: Tx, number: str, from_status: str | None, to_status: str, *, actor: str, reason: str,
    data: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    tx.defer(
        "INSERT INTO order_events (order_number, from_status, to_status, actor, reason, data_json, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (number, from_status, to_status, actor, reason[:1000],
         json.dumps(data, ensure_ascii=False) if data else None, time.time()),
    )  # fmt: skip


def _set(tx: Tx, row: dict[str, Any], status: str, stock_state: str, extra: dict[str, Any]) -> None:
    fields = {"status": status, "stock_state": stock_state, **extra}
    assignments = ", ".join(f"{k} = ?" for k in fields)
    changed = tx.execute(
        f"UPDATE orders SET {assignments}, version = version + 1, updated_at = ? "
        "WHERE number = ? AND version = ?",
        (*fields.values(), time.time(), row["number"], row["version"]),
    )
    if changed != 1:  # pragma: no cover - only under a lost lock
        raise IllegalTransition(
            f"order {row['number']} changed while being updated", number=row["number"]
        )


class OrderService:
    """Transitions of orders, with the stock engine kept in step."""

    def __init__(self, store: Store, stock: Any, hooks: Any, *, hold_ttl: int) -> None:
        self.store = store
        self.stock = stock
        self.hooks = hooks
        self.hold_ttl = hold_ttl

    # -- the one transition primitive ---------------------------------------------------
    def transition(
        self,
        number: str,
        to_status: str,
        *,
        actor: str,
        reason: str,
        allowed_from: frozenset[str] | None = None,
        stock_op: Callable[[Tx, dict[str, Any]], str] | None = None,
        extra: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> Change:
        """Move an order to ``to_status`` in one transaction with its event row.

        ``stock_op(tx, order)`` runs inside the transaction and returns the new
        ``stock_state``. Raises :class:`IllegalTransition` when the move is not allowed.
        """
        with self.store.tx() as tx:
            row = load(tx, number, lock=True)
            current = row["status"]
            legal = (
                TRANSITIONS[current]
                if allowed_from is None or current in allowed_from
                else frozenset()
            )
            if to_status not in legal:
                raise IllegalTransition(
                    f"order {number} cannot go from {current} to {to_status}",
                    number=number, status=current, to=to_status,
                )  # fmt: skip
            stock_state = stock_op(tx, row) if stock_op else row["stock_state"]
            _set(tx, row, to_status, stock_state, extra or {})
            order = load(tx, number)
            # PERF: last, so the (deferred) event row goes with the COMMIT on MySQL.
            record_event(tx, number, current, to_status, actor=actor, reason=reason, data=data)
        self._announce(to_status, order)
        return Change(number, current, to_status, order)

    def _announce(self, status: str, order: dict[str, Any]) -> None:
        action = {
            PAID: "order_paid", CANCELLED: "order_cancelled", SHIPPED: "order_shipped",
            REFUNDED: "order_refunded", NEEDS_ATTENTION: "order_needs_attention",
        }.get(status)  # fmt: skip
        if action:
            self.hooks.do_action(action, order)

    # -- stock operations, each returning the new stock_state ---------------------------
    def _release(self, tx: Tx, row: dict[str, Any]) -> str:
        if row["stock_state"] == "held":
            self.stock.release(row["number"])
            return "released"
        if row["stock_state"] == "committed":
            self.stock.restock(row["number"], stock_lines(tx, row["number"]))
            return "released"
        return str(row["stock_state"])

    def _commit_held(self, tx: Tx, row: dict[str, Any]) -> str:
        if row["stock_state"] == "committed":
            return "committed"
        if row["stock_state"] == "held" and self.stock.commit(row["number"]):
            return "committed"
        raise _HoldGone()

    def _ship(self, tx: Tx, row: dict[str, Any]) -> str:
        if row["stock_state"] == "committed":
            self.stock.ship(row["number"], actor="admin")
            return "shipped"
        return str(row["stock_state"])

    # -- the transitions the shop uses -----------------------------------------------------
    def mark_paid(
        self, number: str, *, amount: int, payment_id: str | None, actor: str, reason: str
    ) -> Change:
        """Record a captured payment. Never drops it: a hold that is gone is re-taken if
        the stock is there, otherwise the order goes to ``needs_attention``."""
        extra = {"paid_amount": amount, "payment_id": payment_id}
        allowed = frozenset({PENDING, CANCELLED, ACCEPTED, NEEDS_ATTENTION})
        try:
            return self.transition(
                number, PAID, actor=actor, reason=reason, allowed_from=allowed,
                stock_op=self._commit_held, extra=extra,
            )  # fmt: skip
        except _HoldGone:
            pass
        with self.store.read() as tx:
            lines = stock_lines(tx, number)
        self.stock.release(number)  # clear any expired remains under this token
        try:
            self.stock.reserve(number, lines, ttl=self.hold_ttl)
        except InsufficientStock as exc:
            with self.store.read() as tx:
                if load(tx, number)["status"] == NEEDS_ATTENTION:
                    raise  # still no stock for a backordered order: say so
            return self.transition(
                number, NEEDS_ATTENTION, actor=actor, allowed_from=allowed,
                reason=f"{reason}; paid after the hold expired and the stock is gone",
                stock_op=lambda tx, row: "none", extra=extra,
                data={"out_of_stock": [list(i) for i in exc.items]},
            )  # fmt: skip

        def retake(tx: Tx, row: dict[str, Any]) -> str:
            if not self.stock.commit(number):  # pragma: no cover - hold just taken
                raise IllegalTransition(f"order {number}: the re-taken hold vanished")
            return "committed"

        return self.transition(
            number, PAID, actor=actor, allowed_from=allowed, stock_op=retake, extra=extra,
            reason=f"{reason}; paid after the hold expired, stock re-taken",
        )  # fmt: skip

    def cancel(
        self, number: str, *, actor: str, reason: str, allowed_from: frozenset[str] | None = None
    ) -> Change:
        return self.transition(
            number, CANCELLED, actor=actor, reason=reason,
            allowed_from=allowed_from or frozenset({PENDING, ACCEPTED, PAID}), stock_op=self._release,
        )  # fmt: skip

    def accept_offline(self, number: str, *, actor: str) -> Change:
        """An offline payment method (cash on delivery, bank transfer): stock is sold now."""
        return self.transition(
            number, ACCEPTED, actor=actor, reason="offline payment method",
            allowed_from=frozenset({PENDING}), stock_op=self._commit_held,
        )  # fmt: skip

    def ship(self, number: str, *, actor: str) -> Change:
        return self.transition(
            number,
            SHIPPED,
            actor=actor,
            reason="shipped",
            allowed_from=frozenset({PAID}),
            stock_op=self._ship,
        )

    def record_refund(self, number: str, amount: int, *, actor: str, reason: str,
                      settle: bool = True) -> Change | None:  # fmt: skip
        """Add a refund; a full refund moves the order to ``refunded`` (unshipped stock
        comes back) unless ``settle`` is False (the caller moves the order itself)."""
        with self.store.tx() as tx:
            row = load(tx, number, lock=True)
            refunded = int(row["refunded_amount"]) + amount
            if (
                not settle
                or refunded < int(row["paid_amount"])
                or row["status"] not in (PAID, SHIPPED, NEEDS_ATTENTION)
            ):
                _set(tx, row, row["status"], row["stock_state"], {"refunded_amount": refunded})
                record_event(tx, number, row["status"], row["status"], actor=actor, reason=reason,
                             data={"refund": amount, "refunded_total": refunded})  # fmt: skip
                return None
        return self.transition(
            number, REFUNDED, actor=actor, reason=reason, stock_op=self._release,
            extra={"refunded_amount": refunded}, data={"refund": amount, "refunded_total": refunded},
        )  # fmt: skip


class _HoldGone(Exception):
    """The order's hold expired or was released before the payment arrived."""
