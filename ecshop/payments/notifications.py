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
from dataclasses import asdict, is_dataclass
from typing import Any

from ecshop.errors import IllegalTransition, NotFound, SignatureError
from ecshop.orders import (
    ACCEPTED,
    CANCELLED,
    NEEDS_ATTENTION,
    PAID,
    PENDING,
    SHIPPED,
    OrderService,
    load,
)
from ecshop.store import DuplicateKey, Store

log = logging.getLogger("ecshop.payments")

SUCCEEDED = "payment.succeeded"
FAILED = "payment.failed"
REFUNDED = "refund.succeeded"


def _payload(event: Any) -> str:
    raw = getattr(event, "raw", None)
    if isinstance(raw, (bytes, bytearray)):
        return raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        return raw
    if is_dataclass(event) and not isinstance(event, type):
        return json.dumps({k: v for k, v in asdict(event).items() if k != "raw"}, default=str)
    return json.dumps(str(event))


class PaymentService:
    def __init__(self, store: Store, orders: OrderService, hooks: Any) -> None:
        self.store = store
        self.orders = orders
        self.hooks = hooks

    def check(self, event: Any) -> dict[str, Any]:
        """The order an event is about, after checking amount and currency against it.

        Raises:
            NotFound: no such order.
            SignatureError: the amount or currency does not match the order (400).
        """
        with self.store.read() as tx:
            order = load(tx, str(event.order))
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
        if event.type not in (SUCCEEDED, FAILED, REFUNDED):
            raise SignatureError(f"unknown event type {event.type!r}")
        return order

    def journal(self, gateway: str, event: Any) -> bool:
        """Record the event once; False when this event id was already journaled."""
        try:
            with self.store.tx() as tx:
                tx.execute(
                    "INSERT INTO payments_journal (gateway, event_id, order_number, type, amount, currency, "
                    "payment_id, payload_json, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (gateway, str(event.id), str(event.order), event.type, int(event.amount), event.currency,
                     event.payment_id, _payload(event), time.time()),
                )  # fmt: skip
        except DuplicateKey:
            return False
        return True

    def receive(self, gateway: str, event: Any) -> str:
        """Check, journal and apply one verified event; return what happened."""
        self.check(event)
        if not self.journal(gateway, event):
            return "duplicate"
        self.hooks.do_action("payment_notification", event)
        return self.apply(gateway, event)

    def apply(self, gateway: str, event: Any) -> str:
        """Apply a journaled event to its order (idempotent) and mark it applied."""
        outcome = self._apply(event, actor=f"gateway:{gateway}")
        with self.store.tx() as tx:
            tx.execute(
                "UPDATE payments_journal SET outcome = ?, applied_at = ? WHERE gateway = ? AND event_id = ?",
                (outcome, time.time(), gateway, str(event.id)),
            )
        return outcome

    def _apply(self, event: Any, *, actor: str) -> str:
        number = str(event.order)
        with self.store.read() as tx:
            status = load(tx, number)["status"]
        try:
            if event.type == SUCCEEDED:
                if status not in (PENDING, CANCELLED, ACCEPTED):
                    return f"ignored:{status}"
                change = self.orders.mark_paid(
                    number, amount=int(event.amount), payment_id=event.payment_id, actor=actor,
                    reason=f"{event.type} {event.id}",
                )  # fmt: skip
                return change.to_status
            if event.type == FAILED:
                if status != PENDING:
                    return f"ignored:{status}"
                self.orders.cancel(number, actor=actor, reason=f"declined ({event.id})",
                                   allowed_from=frozenset({PENDING}))  # fmt: skip
                return "declined"
            if event.type == REFUNDED:
                if status not in (PAID, SHIPPED, NEEDS_ATTENTION):
                    return f"ignored:{status}"
                return "refund_confirmed"
        except IllegalTransition as exc:  # a concurrent change won the race
            log.info("event %s on %s: %s", event.id, number, exc.message)
            return "ignored:race"
        except NotFound:
            return "ignored:unknown_order"
        return "ignored"

    def unapplied(self, limit: int = 500) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            return tx.query(
                "SELECT gateway, event_id, order_number, type, amount, currency, payment_id "
                "FROM payments_journal WHERE applied_at IS NULL ORDER BY id LIMIT ?",
                (limit,),
            )
