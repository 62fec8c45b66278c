"""What an admin does to an order, through the admin API or the admin pages: ship,
cancel (a paid order's outstanding money goes back first), refund (in part too) and
mark paid. Both go through :class:`OrderDesk`, so an action's rules, the role it needs
and its audit line are written once.

:meth:`OrderDesk.plan` says what an action would do to an order now, without doing it:
the pages' confirmation steps and the bulk preview show it. Doing the action plans it
again, so what was confirmed a while ago is checked against the order as it is now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ecshop import audit
from ecshop.admins import NotAllowed, allowed
from ecshop.audit import Actor
from ecshop.errors import BadRequest, IllegalTransition, ShopError
from ecshop.orders import (
    NEEDS_ATTENTION,
    PAID,
    REFUNDED,
    OrderService,
    fees_of,
    lines_of,
    load,
    may,
    taxes_of,
)
from ecshop.store import Store, Tx

SHIP, CANCEL, REFUND, MARK_PAID = "ship", "cancel", "refund", "mark_paid"
#: the actions a bulk edit may make
BULK_ACTIONS = (SHIP, CANCEL)
#: the token of the admin API may do everything an owner may
OWNER = "owner"
#: what the order looks like after each action, for messages
DONE = {SHIP: "shipped", CANCEL: "cancelled", REFUND: "refunded", MARK_PAID: "marked paid"}


@dataclass(frozen=True)
class Plan:
    """What ``action`` would do to the order ``number`` now.

    ``refund`` is the money that goes back to the buyer (a refund's amount, or what a
    paid order's cancellation pays back); ``amount`` is what mark-paid records.
    """

    action: str
    number: str
    status: str
    to: str
    currency: str
    gateway: str
    outstanding: int
    refund: int = 0
    amount: int = 0
    state: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def owner_only(self) -> bool:
        """Only an owner may: money goes back to the buyer."""
        return self.refund > 0


@dataclass(frozen=True)
class Outcome:
    """One order's result in a bulk edit: done, or why not (``error`` is the code)."""

    number: str
    done: bool
    status: str = ""
    error: str = ""
    message: str = ""


def state_of(order: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of an order before and after a change."""
    return {k: order[k] for k in ("status", "stock_state", "paid_amount", "refunded_amount")}


def outstanding_of(order: dict[str, Any]) -> int:
    """Money paid on the order and not refunded yet."""
    return int(order["paid_amount"]) - int(order["refunded_amount"])


def _illegal(order: dict[str, Any], action: str, to: str) -> IllegalTransition:
    number, status = order["number"], order["status"]
    return IllegalTransition(f"order {number} is {status}: it cannot be {DONE[action]}",
                             number=number, status=status, to=to, action=action)  # fmt: skip


def plan_of(order: dict[str, Any], action: str, amount: int | None = None) -> Plan:
    """What ``action`` would do to ``order`` (a row of ``orders``).

    Raises:
        IllegalTransition: the order's status does not allow the action (409).
        BadRequest: a refund of an order with nothing left to refund, or of an amount
            under 1 or over what is left (400).
    """
    status, left = str(order["status"]), outstanding_of(order)
    base: dict[str, Any] = {
        "action": action, "number": str(order["number"]), "status": status,
        "currency": str(order["currency"]), "gateway": str(order["gateway"]),
        "outstanding": left, "state": state_of(order),
    }  # fmt: skip
    if action == SHIP:
        if not may("ship", status):
            raise _illegal(order, action, "shipped")
        return Plan(to="shipped", **base)
    if action == CANCEL:
        if not may("admin_cancel", status):
            raise _illegal(order, action, "cancelled")
        return Plan(to="cancelled", refund=left if status == PAID and left > 0 else 0, **base)
    if action == MARK_PAID:
        backorder = status == NEEDS_ATTENTION
        if not (may("fulfil_backorder", status) if backorder else may("mark_paid", status)):
            raise _illegal(order, action, "paid")
        paid = int(order["paid_amount"] if backorder else order["total"])
        return Plan(to="paid", amount=paid, **base)
    if action == REFUND:
        if left <= 0:
            raise BadRequest("nothing is left to refund on this order", refundable=0)
        money = left if amount is None else int(amount)
        if money < 1 or money > left:
            raise BadRequest(f"amount {money} is over what is left to refund ({left})"
                            if money > left else f"amount {money} is not a refund",
                            refundable=left, amount=money)  # fmt: skip
        # all that is left: the order is settled as refunded where its status allows
        to = REFUNDED if money == left and may("refund", status) else status
        return Plan(to=to, refund=money, **base)
    raise ValueError(f"unknown order action {action!r}")


def check_role(plan: Plan, role: str) -> None:
    """Raises NotAllowed (403) when ``role`` may not make ``plan`` (money going back
    needs an owner: a refund, or the cancellation of a paid order)."""
    if plan.owner_only and not allowed(role, "refund"):
        what = "refund" if plan.action == REFUND else "cancel a paid order (it refunds)"
        raise NotAllowed(f"a {role} account may not {what}: ask an owner",
                         number=plan.number, action=plan.action)  # fmt: skip


def event_actor(actor: Actor) -> str:
    """The ``actor`` of the order's event rows: ``admin`` for the API's token, else the
    account (``admin:hanako``)."""
    return "admin" if actor.via == "api" else actor.name


class OrderDesk:
    """The admin's actions on orders, each checked, made, and written to the audit log.

    Args:
        store: the order store.
        orders: the order service (transitions).
        flow: the payment flow (refunds through the order's gateway).
    """

    def __init__(self, store: Store, orders: OrderService, flow: Any) -> None:
        self.store = store
        self.orders = orders
        self.flow = flow

    def load(self, number: str) -> dict[str, Any]:
        with self.store.read() as tx:
            return load(tx, number)

    def plan(self, number: str, action: str, amount: int | None = None) -> Plan:
        """What ``action`` would do to the order now (see :func:`plan_of`).

        Raises:
            NotFound: no such order.
        """
        return plan_of(self.load(number), action, amount)

    def do(self, action: str, number: str, *, actor: Actor, role: str = OWNER,
           amount: int | None = None, reason: str = "") -> dict[str, Any]:  # fmt: skip
        """Make ``action`` on the order: the order after it.

        Raises:
            NotFound, IllegalTransition, BadRequest (see :func:`plan_of`), NotAllowed (the role
            may not; nothing changes), GatewayError (the refund failed; nothing changes).
        """
        plan = self.plan(number, action, amount)
        check_role(plan, role)
        if action == SHIP:
            order = self.orders.ship(number, actor=event_actor(actor)).order
        elif action == CANCEL:
            order = self._cancel(plan, actor)
        elif action == REFUND:
            order = self._refund(plan, actor, reason or "refund by the admin")
        else:
            order = self._mark_paid(plan, actor)
        before = {**plan.state, "refund": plan.refund} if action == REFUND else plan.state
        audit.record(self.store, actor, f"order.{action}", number, before, state_of(order))
        return order

    def _cancel(self, plan: Plan, actor: Actor) -> dict[str, Any]:
        who = event_actor(actor)
        if plan.refund:
            # NOTE: the refund is recorded without settling the order as `refunded`,
            # so the cancellation below is the transition (paid -> cancelled, restocked).
            self.flow.refund(self.load(plan.number), plan.refund, actor=who,
                             reason="cancelled by the admin", settle=False)  # fmt: skip
        try:
            return self.orders.cancel(plan.number, move="admin_cancel", actor=who,
                                      reason="cancelled by the admin").order  # fmt: skip
        except IllegalTransition:
            now = self.load(plan.number)
            # NOTE: the gateway's notification of this very refund may land first and
            # settle the order as refunded (stock back too): the cancel's aim is met.
            if not (plan.status == PAID and now["status"] == REFUNDED):
                raise
            return now

    def _refund(self, plan: Plan, actor: Actor, reason: str) -> dict[str, Any]:
        self.flow.refund(self.load(plan.number), plan.refund, actor=event_actor(actor),
                         reason=reason)  # fmt: skip
        return self.load(plan.number)

    def _mark_paid(self, plan: Plan, actor: Actor) -> dict[str, Any]:
        order = self.load(plan.number)
        backorder = plan.status == NEEDS_ATTENTION
        return self.orders.mark_paid(
            plan.number, amount=plan.amount, payment_id=order["payment_id"],
            actor=event_actor(actor), reason="marked paid by the admin",
            move="fulfil_backorder" if backorder else "mark_paid",
        ).order  # fmt: skip

    # -- bulk edits ----------------------------------------------------------------------
    def bulk_plan(self, action: str, numbers: list[str], *,
                  role: str) -> tuple[list[Plan], list[Outcome]]:  # fmt: skip
        """Which of ``numbers`` ``action`` can change now (their plans, in order) and
        which it cannot, with why."""
        plans, left_out = [], []
        for number in numbers:
            try:
                plan = self.plan(number, action)
                check_role(plan, role)
            except ShopError as exc:
                left_out.append(refused(number, exc))
                continue
            plans.append(plan)
        return plans, left_out

    def bulk_do(self, action: str, numbers: list[str], *, actor: Actor,
                role: str) -> list[Outcome]:  # fmt: skip
        """Make ``action`` on each order, one at a time: each done whole (with its own
        audit line) or not at all, and reported."""
        out = []
        for number in numbers:
            try:
                order = self.do(action, number, actor=actor, role=role)
            except ShopError as exc:
                out.append(refused(number, exc))
                continue
            out.append(Outcome(number, True, str(order["status"])))
        return out


def refused(number: str, exc: ShopError) -> Outcome:
    """An order a bulk edit leaves alone, and why."""
    return Outcome(number, False, str(exc.details.get("status", "")), exc.code, exc.message)


def record_of(tx: Tx, number: str) -> dict[str, Any]:
    """Everything the shop knows of one order, for the admin: the row, its product and
    fee lines, tax per rate, the event history, the payment journal, the refunds and
    the buyer's mail (times as epoch seconds, JSON columns parsed).

    Raises:
        NotFound: no such order.
    """
    order = load(tx, number)

    def parsed(text: Any) -> Any:
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None

    events = [{**{k: v for k, v in e.items() if k != "data_json"}, "data": parsed(e["data_json"])}
              for e in tx.query(
                  "SELECT from_status, to_status, actor, reason, data_json, created_at "
                  "FROM order_events WHERE order_number = ? ORDER BY id", (number,))]  # fmt: skip
    return {
        "order": order,
        "customer": parsed(order["customer_json"]) or {},
        "delivery": parsed(order.get("delivery_json")),
        "lines": lines_of(tx, number),
        "fees": fees_of(tx, number),
        "taxes": taxes_of(tx, number),
        "events": events,
        "payments": tx.query(
            "SELECT gateway, event_id, type, amount, currency, outcome, received_at, applied_at "
            "FROM payments_journal WHERE order_number = ? ORDER BY id", (number,)),
        "refunds": tx.query(
            "SELECT gateway, refund_id, amount, origin, created_at FROM order_refunds "
            "WHERE order_number = ? ORDER BY created_at, refund_id", (number,)),
        "mail": tx.query(
            "SELECT kind, recipient, status, attempts, last_error, created_at, sent_at "
            "FROM outbox WHERE order_number = ? ORDER BY id", (number,)),
    }  # fmt: skip
