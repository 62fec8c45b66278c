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
from ecshop.payments.base import PaymentEvent, PaymentStatus
from ecshop.store import DuplicateKey, Store

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
        check_against_order(event, order)
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

    def unapplied(self, *, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """Journaled events not yet applied, in journal order, the next ``limit`` after id ``after``."""
        with self.store.read() as tx:
            return tx.query(
                "SELECT id, gateway, event_id, order_number, type, amount, currency, payment_id "
                "FROM payments_journal WHERE applied_at IS NULL AND id > ? ORDER BY id LIMIT ?",
                (after, limit),
            )
