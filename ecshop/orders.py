"""The order state machine: every transition is one transaction with an event row
(and, where the buyer is told of it, the mail in the outbox: :mod:`ecshop.outbox`).

Every legal transition is in :data:`MOVES`, named by its cause (docs/architecture.md,
"Orders"). A captured payment is never dropped, so a payment that arrives for an order
already cancelled (declined first, cancelled by the customer while the gateway
captured) takes it to ``paid`` or ``needs_attention`` too.

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

from ecshop import metrics
from ecshop.errors import IllegalTransition, InsufficientStock, NotFound
from ecshop.outbox import enqueue, mail_kind
from ecshop.store import DuplicateKey, Store, Tx
from ecshop.tax import render_taxes

PENDING = "pending_payment"
ACCEPTED = "accepted"
PAID = "paid"
SHIPPED = "shipped"
CANCELLED = "cancelled"
NEEDS_ATTENTION = "needs_attention"
REFUNDED = "refunded"
STATUSES = (PENDING, ACCEPTED, PAID, SHIPPED, CANCELLED, NEEDS_ATTENTION, REFUNDED)


@dataclass(frozen=True)
class Move:
    """One legal transition: the status it leads to and the statuses it may start from."""

    to: str
    sources: frozenset[str]


def _move(to: str, *sources: str) -> Move:
    return Move(to, frozenset(sources))


# Every legal transition of an order, by what causes it: the one table every caller
# (checkout, notifications, reconciler, admin, customer) goes through.
MOVES: dict[str, Move] = {
    # an offline method (bank transfer, cash on delivery) takes the order; stock stays
    # held for the method's pay window
    "accept_offline": _move(ACCEPTED, PENDING),
    # the gateway captured the money: never dropped, even for an order given up on
    "capture": _move(PAID, PENDING, ACCEPTED, CANCELLED),
    # ... and when its units were sold again meanwhile
    "capture_without_stock": _move(NEEDS_ATTENTION, PENDING, ACCEPTED, CANCELLED),
    # the admin saw the money arrive outside a gateway: only while it can still arrive
    "mark_paid": _move(PAID, PENDING, ACCEPTED),
    # the admin found stock for a paid order that had none
    "fulfil_backorder": _move(PAID, NEEDS_ATTENTION),
    "decline": _move(CANCELLED, PENDING),
    # the pay window ended with no payment (the gateway said so, or offline)
    "expire": _move(CANCELLED, PENDING, ACCEPTED),
    "customer_cancel": _move(CANCELLED, PENDING, ACCEPTED),
    "admin_cancel": _move(CANCELLED, PENDING, ACCEPTED, PAID),
    "ship": _move(SHIPPED, PAID),
    "refund": _move(REFUNDED, PAID, SHIPPED, NEEDS_ATTENTION),
}

# The state graph the moves make (for documentation and tests).
TRANSITIONS: dict[str, frozenset[str]] = {
    status: frozenset(m.to for m in MOVES.values() if status in m.sources) for status in STATUSES
}


def may(move: str, status: str) -> bool:
    """True when ``move`` is legal from ``status``."""
    return status in MOVES[move].sources


ORDER_COLUMNS = (
    "number, access_token, status, stock_state, gateway, currency, subtotal, shipping, total, "
    "customer_json, hold_expires_at, payment_id, paid_amount, refunded_amount, version, "
    "created_at, updated_at, delivery_json, member_id"
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
        "SELECT line_no, sku, name, unit_price, qty, line_total, tax_class FROM order_lines "
        "WHERE order_number = ? ORDER BY line_no",
        (number,),
    )


def fees_of(tx: Tx, number: str) -> list[dict[str, Any]]:
    """The order's fee lines, in the order they were added."""
    return [
        {"name": r["name"], "amount": int(r["amount"]), "taxable": bool(r["taxable"])}
        for r in tx.query(
            "SELECT name, amount, taxable FROM order_fees WHERE order_number = ? ORDER BY line_no",
            (number,),
        )
    ]


def taxes_of(tx: Tx, number: str) -> list[dict[str, Any]]:
    """The order's tax lines (:mod:`ecshop.tax`), highest rate first."""
    return render_taxes(tx.query(
        "SELECT tax_class, rate, amount, tax FROM order_taxes WHERE order_number = ? "
        "ORDER BY rate DESC, tax_class", (number,),
    ))  # fmt: skip


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


def _set(tx: Tx, row: dict[str, Any], status: str, stock_state: str,
         extra: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Write the new status, stock state and ``extra`` columns; the row as it now is.

    PERF: the row is not read again: the update is guarded by the version, so the new
    row is the old one with these columns, the next version and the new time."""
    now = time.time()
    fields = {"status": status, "stock_state": stock_state, **extra}
    assignments = ", ".join(f"{k} = ?" for k in fields)
    changed = tx.execute(
        f"UPDATE orders SET {assignments}, version = version + 1, updated_at = ? "
        "WHERE number = ? AND version = ?",
        (*fields.values(), now, row["number"], row["version"]),
    )
    if changed != 1:  # pragma: no cover - only under a lost lock
        raise IllegalTransition(
            f"order {row['number']} changed while being updated", number=row["number"]
        )
    return {**row, **fields, "version": int(row["version"]) + 1, "updated_at": now}


class OrderService:
    """Transitions of orders, with the stock engine kept in step."""

    def __init__(self, store: Store, stock: Any, hooks: Any, *, hold_ttl: int,
                 mail: bool = False) -> None:  # fmt: skip
        """``mail``: write the buyer's mail of each change to the outbox (ecshop.outbox)."""
        self.store = store
        self.stock = stock
        self.hooks = hooks
        self.hold_ttl = hold_ttl
        self.mail = mail

    # -- the one transition primitive ---------------------------------------------------
    def transition(
        self,
        number: str,
        move: str,
        *,
        actor: str,
        reason: str,
        stock_op: Callable[[Tx, dict[str, Any]], str] | None = None,
        extra: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        mail_data: dict[str, Any] | None = None,
        first: Callable[[Tx], None] | None = None,
        guard: Callable[[dict[str, Any]], None] | None = None,
        grouped: bool = False,
    ) -> Change:
        """Make the move ``move`` (a key of :data:`MOVES`) in one transaction with its
        event row and the buyer's mail about it (:func:`ecshop.outbox.mail_kind`, with
        ``mail_data`` for its template).

        ``first(tx)``, when given, is the caller's own write in the same transaction,
        made before the order is read (a journal row, say): it commits with the move or
        not at all. ``guard(order)``, when given, sees the locked order first and may
        raise to write nothing. ``stock_op(tx, order)`` runs inside the transaction and
        returns the new ``stock_state``. Raises :class:`IllegalTransition` when the move
        is not legal from the order's status.

        ``grouped``: the transaction may be shared with other threads' work of this
        process (:meth:`ecshop.store.Store.grouped`); this returns after its durable
        commit either way, and the actions fire only then.
        """
        to_status = MOVES[move].to

        def work(tx: Tx) -> Change:
            if first is not None:
                first(tx)
            row = load(tx, number, lock=True)
            if guard is not None:
                guard(row)
            current = row["status"]
            if not may(move, current):
                raise IllegalTransition(
                    f"order {number} cannot go from {current} to {to_status} ({move})",
                    number=number, status=current, to=to_status,
                )  # fmt: skip
            stock_state = stock_op(tx, row) if stock_op else row["stock_state"]
            order = _set(tx, row, to_status, stock_state, extra or {})
            self._mail(tx, mail_kind(move, current), order, mail_data)
            # PERF: last, so the (deferred) event row goes with the COMMIT on MySQL.
            record_event(tx, number, current, to_status, actor=actor, reason=reason, data=data)
            return Change(number, current, to_status, order)

        if grouped:
            change = self.store.grouped(work)
        else:
            with self.store.tx() as tx:
                change = work(tx)
        metrics.ORDER_TRANSITIONS.labels(
            from_status=change.from_status, move=move, to_status=to_status
        ).inc()
        self._announce(change.from_status, to_status, change.order)
        return change

    def _mail(self, tx: Tx, kind: str | None, order: dict[str, Any],
              data: dict[str, Any] | None) -> None:  # fmt: skip
        """The buyer's mail about this change, in its transaction (when mail is on)."""
        if self.mail and kind:
            enqueue(tx, kind, order, data)

    def _announce(self, old: str, status: str, order: dict[str, Any]) -> None:
        """After the commit: the status's own action, then ``order_status_changed``."""
        action = {
            PAID: "order_paid", CANCELLED: "order_cancelled", SHIPPED: "order_shipped",
            REFUNDED: "order_refunded", NEEDS_ATTENTION: "order_needs_attention",
        }.get(status)  # fmt: skip
        if action:
            self.hooks.do_action(action, order)
        if old != status:
            self.hooks.do_action("order_status_changed", old, status, order)

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
        self, number: str, *, amount: int, payment_id: str | None, actor: str, reason: str,
        move: str = "capture",
    ) -> Change:  # fmt: skip
        """Record money received (``move``: ``capture`` from a gateway, ``mark_paid`` or
        ``fulfil_backorder`` by the admin). Never drops a payment: a hold that is gone is
        re-taken if the stock is there, otherwise the order goes to ``needs_attention``
        (the caller may then refund it through its gateway). Money that came in fires
        ``payment_received`` (not ``fulfil_backorder``: that money was counted before)."""
        change = self._mark_paid(
            number, amount=amount, payment_id=payment_id, actor=actor, reason=reason, move=move
        )
        if move != "fulfil_backorder":
            self.hooks.do_action("payment_received", amount, change.order)
        return change

    def capture_held(
        self, number: str, *, amount: int, payment_id: str | None, actor: str, reason: str,
        first: Callable[[Tx], None], guard: Callable[[dict[str, Any]], None],
    ) -> Change | None:  # fmt: skip
        """A gateway's capture in its common case, in one transaction with ``first(tx)``
        (the caller's own write), after ``guard(order)`` on the locked order (it may raise
        to write nothing): the order's live hold becomes sold and the order paid. Like a
        checkout's order, it may share its durable commit with concurrent requests of
        this process (group commit).
        None, with nothing written, when the hold is gone; the caller then writes on its
        own and takes :meth:`mark_paid`, which re-takes the stock or asks for attention.

        Raises:
            IllegalTransition: the order cannot be captured (nothing written).
        """
        extra = {"paid_amount": amount, "payment_id": payment_id}
        try:
            change = self.transition(number, "capture", actor=actor, reason=reason,
                                     stock_op=self._commit_held, extra=extra, first=first,
                                     guard=guard, grouped=True)  # fmt: skip
        except _HoldGone:
            return None
        self.hooks.do_action("payment_received", amount, change.order)
        return change

    def _mark_paid(
        self, number: str, *, amount: int, payment_id: str | None, actor: str, reason: str,
        move: str,
    ) -> Change:  # fmt: skip
        extra = {"paid_amount": amount, "payment_id": payment_id}
        try:
            return self.transition(
                number, move, actor=actor, reason=reason, stock_op=self._commit_held, extra=extra
            )
        except _HoldGone:
            pass
        with self.store.read() as tx:
            lines = stock_lines(tx, number)
        self.stock.release(number)  # clear any expired remains under this token
        try:
            self.stock.reserve(number, lines, ttl=self.hold_ttl)
        except InsufficientStock as exc:
            if move == "fulfil_backorder":
                raise  # still no stock for a backordered order: say so
            return self.transition(
                number, "capture_without_stock", actor=actor,
                reason=f"{reason}; paid after the hold ended and the stock is gone",
                stock_op=lambda tx, row: "none", extra=extra,
                data={"out_of_stock": [list(i) for i in exc.items]},
            )  # fmt: skip

        def retake(tx: Tx, row: dict[str, Any]) -> str:
            if not self.stock.commit(number):  # pragma: no cover - hold just taken
                raise IllegalTransition(f"order {number}: the re-taken hold vanished")
            return "committed"

        try:
            return self.transition(
                number, move, actor=actor, stock_op=retake, extra=extra,
                reason=f"{reason}; paid after the hold ended, stock re-taken",
            )  # fmt: skip
        except IllegalTransition:
            self.stock.release(number)
            raise

    def cancel(self, number: str, *, move: str, actor: str, reason: str) -> Change:
        """Cancel (``move``: ``decline``, ``expire``, ``customer_cancel`` or
        ``admin_cancel``); held or unshipped units come back."""
        return self.transition(number, move, actor=actor, reason=reason, stock_op=self._release)

    def accept_offline(self, number: str, *, actor: str, instructions: str | None = None) -> Change:
        """An offline payment method (cash on delivery, bank transfer) takes the order.

        Its stock stays held until the admin marks it paid or its pay window (the hold's
        expiry, set at checkout) ends. The buyer's order mail carries the method's
        ``instructions`` (where to transfer the money)."""
        return self.transition(
            number, "accept_offline", actor=actor, reason="offline payment method",
            mail_data={"instructions": instructions} if instructions else None,
        )  # fmt: skip

    def ship(self, number: str, *, actor: str) -> Change:
        return self.transition(number, "ship", actor=actor, reason="shipped", stock_op=self._ship)

    def record_refund(
        self, number: str, amount: int, *, gateway: str, refund_id: str, origin: str,
        actor: str, reason: str, settle: bool = True,
    ) -> str:  # fmt: skip
        """Record a refund once per ``(gateway, refund_id)``, whoever started it.

        A full refund moves the order to ``refunded`` and gives its unshipped units back,
        unless ``settle`` is False (the caller moves the order itself). Returns
        ``refunded`` (the order moved), ``partially_refunded``, or ``duplicate`` (already
        recorded: the shop's own record and the gateway's notification of the same
        refund count once).
        """
        with self.store.tx() as tx:
            row = load(tx, number, lock=True)
            try:
                tx.execute(
                    "INSERT INTO order_refunds (gateway, refund_id, order_number, amount, origin, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (gateway, refund_id, number, amount, origin, time.time()),
                )
            except DuplicateKey:
                return "duplicate"
            current = row["status"]
            refunded = int(row["refunded_amount"]) + amount
            data = {"refund": amount, "refunded_total": refunded, "refund_id": refund_id,
                    "origin": origin}  # fmt: skip
            full = settle and refunded >= int(row["paid_amount"]) > 0 and may("refund", current)
            to_status = REFUNDED if full else current
            stock_state = self._release(tx, row) if full else row["stock_state"]
            _set(tx, row, to_status, stock_state, {"refunded_amount": refunded})
            order = load(tx, number)
            # NOTE: unsettled (an admin's cancel of a paid order), the cancellation's own
            # mail tells the buyer about the money.
            self._mail(tx, "refunded" if settle else None, order, {"refund": amount})
            record_event(tx, number, current, to_status, actor=actor, reason=reason, data=data)
        self.hooks.do_action("refund_made", amount, order)
        if not full:
            return "partially_refunded"
        metrics.ORDER_TRANSITIONS.labels(
            from_status=current, move="refund", to_status=REFUNDED
        ).inc()
        self._announce(current, REFUNDED, order)
        return "refunded"


class _HoldGone(Exception):
    """The order's hold expired or was released before the payment arrived."""
