"""Applying gateway events: verified, journaled once per event id, applied idempotently.

The journal row is committed before the gateway gets its 2xx; applying the event comes
after and is safe to repeat (the reconciler re-applies journal rows never applied).
Events may arrive in any order: a ``payment.failed`` after ``payment.succeeded``
changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

from ecshop.errors import GatewayError, IllegalTransition, NotFound, SignatureError
from ecshop.orders import NEEDS_ATTENTION, PAID, OrderService, load, may
from ecshop.payments.base import PaymentEvent, PaymentStatus, refund_through
from ecshop.store import DuplicateKey, Store, Tx

log = logging.getLogger("ecshop.payments")

SUCCEEDED = "payment.succeeded"
FAILED = "payment.failed"
REFUNDED = "refund.succeeded"
CAPTURED_STATES = frozenset({"succeeded", "refunded", "partially_refunded"})


def event_from_status(order: Mapping[str, Any], status: PaymentStatus) -> PaymentEvent | None:
    """The event a gateway's status answer stands for, or None while it is not final.

    Money captured (even if refunded since) is ``payment.succeeded`` with the gateway's
    amount and currency, so the usual checks apply; a decline is ``payment.failed``.
    The id depends only on the order and the outcome, so the return page and the
    reconciler asking about the same order journal one event between them.
    """
    number = str(order["number"])
    if status.status in CAPTURED_STATES:
        return PaymentEvent(f"status:{number}:succeeded", SUCCEEDED, number, int(status.amount or 0),
                            str(status.currency), status.payment_id, int(time.time()))  # fmt: skip
    if status.status == "failed":
        return PaymentEvent(f"status:{number}:failed", FAILED, number, int(order["total"]),
                            str(order["currency"]), status.payment_id, int(time.time()))  # fmt: skip
    return None


def check_against_order(event: Any, order: Mapping[str, Any]) -> None:
    """Check a verified event's type, amount and currency against its order.

    Raises:
        SignatureError: the event does not fit the order (400).
    """
    if event.type not in (SUCCEEDED, FAILED, REFUNDED):
        raise SignatureError(f"unknown event type {event.type!r}")
    if event.currency != order["currency"]:
        raise SignatureError(
            f"currency {event.currency} does not match order {order['number']} ({order['currency']})"
        )
    if event.type == SUCCEEDED and int(event.amount) != int(order["total"]):
        raise SignatureError(
            f"amount {event.amount} does not match order {order['number']} total {order['total']}"
        )
    if event.type == REFUNDED and not 0 < int(event.amount) <= int(order["total"]):
        raise SignatureError(f"refund amount {event.amount} is not within the order total")


def _check_order(gateway: str, event: Any, order: Mapping[str, Any]) -> None:
    """Refuse an event about an order of another gateway, or that does not fit it.

    Raises:
        SignatureError: 400.
    """
    if order["gateway"] != gateway:
        log.warning("event %s from gateway %s names order %s of gateway %s: refused",
                    event.id, gateway, order["number"], order["gateway"])  # fmt: skip
        raise SignatureError(
            f"order {order['number']} is not paid through {gateway}", gateway=gateway
        )
    check_against_order(event, order)


class _NotAtOnce(Exception):
    """The notification is not a capture of a live hold: nothing written, take the
    journal-then-apply path."""


def _same_capture(order: Mapping[str, Any], event: Any) -> bool:
    """True when the order already recorded this capture (a second capture, with
    another payment id, is money that must not be dropped)."""
    if not int(order["paid_amount"] or 0):
        return False
    recorded, reported = order["payment_id"], getattr(event, "payment_id", None)
    return recorded is None or reported is None or recorded == reported


def _refund_id(event: Any) -> str | None:
    value = getattr(event, "refund_id", None)
    return str(value)[:191] if value else None


def _payload(event: Any) -> str:
    raw = getattr(event, "raw", None)
    if isinstance(raw, (bytes, bytearray)):
        return raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        return raw
    if is_dataclass(event) and not isinstance(event, type):
        return json.dumps({k: v for k, v in asdict(event).items() if k != "raw"}, default=str)
    return json.dumps(str(event))


def _journal_row(tx: Tx, gateway: str, event: Any, *, outcome: str | None = None) -> None:
    """Write the event's journal row; with ``outcome``, as applied already (its apply
    commits in the same transaction, whose next statement reports a duplicate: the row
    is sent with it). Without, at once (group commit's pieces must fail in their own
    savepoint)."""
    now = time.time()
    write = tx.defer if outcome else tx.execute
    write(
        "INSERT INTO payments_journal (gateway, event_id, order_number, type, amount, currency, "
        "payment_id, refund_id, payload_json, received_at, outcome, applied_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (gateway, str(event.id), str(event.order), event.type, int(event.amount), event.currency,
         event.payment_id, _refund_id(event), _payload(event), now, outcome,
         now if outcome else None),
    )  # fmt: skip


class PaymentService:
    def __init__(self, store: Store, orders: OrderService, hooks: Any,
                 gateways: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        self.store = store
        self.orders = orders
        self.hooks = hooks
        self.gateways: Mapping[str, Any] = gateways if gateways is not None else {}

    def check(self, gateway: str, event: Any) -> dict[str, Any]:
        """The order an event is about, after checking it against the order: the same
        gateway, amount and currency.

        Raises:
            NotFound: no such order.
            SignatureError: the event does not fit the order (400).
        """
        with self.store.read() as tx:
            order = load(tx, str(event.order))
        _check_order(gateway, event, order)
        return order

    def journal(self, gateway: str, event: Any) -> bool:
        """Record the event once; False when this event id was already journaled for
        this order.

        Raises:
            SignatureError: the event id was journaled for another order or another
                kind of event (a replayed id, never a duplicate to drop silently).
        """

        try:
            # PERF: like a checkout's order, the journal row may share its durable commit
            # with concurrent requests of this process (group commit); it is durable
            # before this returns either way.
            self.store.grouped(lambda tx: _journal_row(tx, gateway, event))
        except DuplicateKey:
            with self.store.read() as tx:
                first = tx.one(
                    "SELECT order_number, type, amount FROM payments_journal WHERE gateway = ? AND event_id = ?",
                    (gateway, str(event.id)),
                )  # fmt: skip
            if first is not None and (
                (first["order_number"], first["type"], int(first["amount"]))
                != (str(event.order), event.type, int(event.amount))
            ):
                log.warning("event id %s of gateway %s was journaled for order %s (%s %s) and is "
                            "now presented for order %s (%s %s): refused", event.id, gateway,
                            first["order_number"], first["type"], first["amount"], event.order,
                            event.type, event.amount)  # fmt: skip
                raise SignatureError(
                    f"event {event.id} was already received for another order", event=str(event.id)
                ) from None
            return False
        return True

    def receive(self, gateway: str, event: Any) -> str:
        """Check, journal and apply one verified event; return what happened."""
        paid = self._capture_at_once(gateway, event)
        if paid is not None:
            return paid
        self.check(gateway, event)
        if not self.journal(gateway, event):
            return "duplicate"
        self.hooks.do_action("payment_notification", event)
        return self.apply(gateway, event)

    def _capture_at_once(self, gateway: str, event: Any) -> str | None:
        """The common notification, a capture of a pending order whose hold is live, in
        one durable commit: the journal row (already marked applied), the order checked
        and paid, its hold sold, its event row and mail. None, with nothing written, for
        any other case (a duplicate, a gone hold, a concurrent change), which then
        takes the journal-then-apply path.

        PERF: one transaction where the check, the journal, the transition and the
        outcome took four. It is skipped while a plugin listens to
        ``payment_notification``, which is fired between the journal commit and the
        apply.

        Raises:
            NotFound, SignatureError: as :meth:`check` (nothing written).
        """
        if event.type != SUCCEEDED or self.hooks.has_action("payment_notification"):
            return None

        def guard(order: dict[str, Any]) -> None:
            _check_order(gateway, event, order)
            if (order["stock_state"] != "held" or not may("capture", order["status"])
                    or _same_capture(order, event)):  # fmt: skip
                raise _NotAtOnce()

        try:
            change = self.orders.capture_held(
                str(event.order), amount=int(event.amount), payment_id=event.payment_id,
                actor=f"gateway:{gateway}", reason=f"{event.type} {event.id}",
                first=lambda tx: _journal_row(tx, gateway, event, outcome=PAID), guard=guard,
            )  # fmt: skip
        except (_NotAtOnce, DuplicateKey, IllegalTransition):
            return None
        return None if change is None else change.to_status

    def apply(self, gateway: str, event: Any) -> str:
        """Apply a journaled event to its order (idempotent) and mark it applied."""
        outcome = self._apply(gateway, event, actor=f"gateway:{gateway}")
        self.store.grouped(lambda tx: tx.execute(
            "UPDATE payments_journal SET outcome = ?, applied_at = ? WHERE gateway = ? AND event_id = ?",
            (outcome, time.time(), gateway, str(event.id)),
        ))  # fmt: skip
        return outcome

    def _apply(self, gateway: str, event: Any, *, actor: str) -> str:
        number = str(event.order)
        with self.store.read() as tx:
            order = load(tx, number)
        status = order["status"]
        try:
            if event.type == SUCCEEDED:
                if not may("capture", status):
                    return f"ignored:{status}"
                if _same_capture(order, event):
                    # NOTE: the status answer and the webhook name one capture under two
                    # event ids; the order was paid (and maybe refunded and cancelled)
                    # since. Applying it again would re-take stock for refunded money.
                    return "ignored:already_paid"
                change = self.orders.mark_paid(
                    number, amount=int(event.amount), payment_id=event.payment_id, actor=actor,
                    reason=f"{event.type} {event.id}",
                )  # fmt: skip
                if change.to_status == NEEDS_ATTENTION:
                    return self.refund_unsellable(gateway, change.order)
                return change.to_status
            if event.type == FAILED:
                if not may("decline", status):
                    return f"ignored:{status}"
                self.orders.cancel(
                    number, move="decline", actor=actor, reason=f"declined ({event.id})"
                )
                return "declined"
            if event.type == REFUNDED:
                return self.orders.record_refund(
                    number, int(event.amount), gateway=gateway,
                    refund_id=_refund_id(event) or f"event:{event.id}", origin="gateway",
                    actor=actor, reason=f"{event.type} {event.id}",
                )  # fmt: skip
        except IllegalTransition as exc:  # a concurrent change won the race
            log.info("event %s on %s: %s", event.id, number, exc.message)
            return "ignored:race"
        except NotFound:
            return "ignored:unknown_order"
        return "ignored"

    def refund_unsellable(self, gateway: str, order: Mapping[str, Any]) -> str:
        """Give the money back for an order paid after its units were confirmed free and
        sold again: refunded through its gateway, with an event row and the
        ``late_payment_refunded`` action (the customer is told). Where the gateway cannot
        refund, the order stays ``needs_attention`` for the admin."""
        number, amount = str(order["number"]), int(order["paid_amount"])
        gw = self.gateways.get(gateway)
        if gw is None or getattr(gw, "offline", False) or amount <= 0:
            return NEEDS_ATTENTION
        try:
            result = refund_through(gw, number, amount, currency=str(order["currency"]),
                                    order_total=int(order["total"]))  # fmt: skip
        except GatewayError as exc:
            log.warning("order %s: paid with no stock left, and the refund failed: %s; "
                        "it needs the admin", number, exc.message)  # fmt: skip
            return NEEDS_ATTENTION
        outcome = self.orders.record_refund(
            number, amount, gateway=gateway, refund_id=str(result.id), origin="shop",
            actor="system", reason="refunded: paid after its hold ended and the units were sold again",
        )  # fmt: skip
        with self.store.read() as tx:
            self.hooks.do_action("late_payment_refunded", load(tx, number))
        return "refunded" if outcome == "refunded" else NEEDS_ATTENTION

    def unapplied(self, *, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """Journaled events not yet applied, in journal order, the next ``limit`` after id ``after``."""
        with self.store.read() as tx:
            return tx.query(
                "SELECT id, gateway, event_id, order_number, type, amount, currency, payment_id, refund_id "
                "FROM payments_journal WHERE applied_at IS NULL AND id > ? ORDER BY id LIMIT ?",
                (after, limit),
            )
