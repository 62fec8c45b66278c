"""Checkout, the customer's order view and cancel, and the admin order API."""

from __future__ import annotations

import hmac
import json
import time
from contextlib import nullcontext
from typing import Any

import falcon

from ecshop import order_admin
from ecshop.audit import TOKEN, Actor
from ecshop.checkout import CART
from ecshop.errors import NotFound
from ecshop.order_admin import OrderDesk
from ecshop.orders import (
    PENDING,
    STATUSES,
    fees_of,
    lines_of,
    load,
    taxes_of,
)
from ecshop.reconcile import UNREACHABLE
from ecshop.resources._declare import PAGING, declare, header, ok, page_of, path, query
from ecshop.resources._http import send_json
from ecshop.resources._shapes import ORDER, ORDER_DETAIL, PLACED
from ecshop.schema import POSITIVE_MONEY, TEXT, obj
from ecshop.schema import TOKEN as TOKEN_SCHEMA
from ecshop.store import Tx

ORDER_NUMBER = {"type": "string", "minLength": 1, "maxLength": 64,
                "description": "an order number"}  # fmt: skip
NUMBER_PATH = (path("number", ORDER_NUMBER),)
#: The order's access token, in the query (``token=``) or the ``X-Order-Token`` header;
#: a missing, empty or wrong one is the same 404 as an unknown order.
ACCESS_TOKEN = {"type": "string", "maxLength": 255}
ORDER_TOKEN = (
    query("token", ACCESS_TOKEN, description="the order's access_token"),
    header("X-Order-Token", ACCESS_TOKEN, description="the order's access_token"),
)
IDEMPOTENCY_KEY = header("Idempotency-Key", TOKEN_SCHEMA,
                         description="the same key and body return the same order")  # fmt: skip
REFUND = obj({}, {"amount": POSITIVE_MONEY, "reason": TEXT})


def iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(ts)))


def render_order(
    order: dict[str, Any], lines: list[dict[str, Any]], fees: list[dict[str, Any]],
    taxes: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """An order as the API shows it: its product lines, fee lines, totals, the tax
    contained per rate, and the delivery choice."""
    return {
        "number": order["number"],
        "status": order["status"],
        "gateway": order["gateway"],
        "currency": order["currency"],
        "subtotal": int(order["subtotal"]),
        "shipping": int(order["shipping"]),
        "total": int(order["total"]),
        "paid_amount": int(order["paid_amount"]),
        "refunded_amount": int(order["refunded_amount"]),
        "expires_at": iso(order["hold_expires_at"]) if order["status"] == PENDING else None,
        "created_at": iso(order["created_at"]),
        "lines": [
            {
                "sku": ln["sku"],
                "name": ln["name"],
                "unit_price": int(ln["unit_price"]),
                "qty": int(ln["qty"]),
                "line_total": int(ln["line_total"]),
                "tax_class": str(ln.get("tax_class") or "standard"),
            }
            for ln in lines
        ],
        "fees": [
            {"name": f["name"], "amount": int(f["amount"]), "taxable": bool(f["taxable"])}
            for f in fees
        ],
        "taxes": taxes,
        "delivery": json.loads(order.get("delivery_json") or "null"),
    }


def view_of(tx: Tx, order: dict[str, Any]) -> dict[str, Any]:
    """:func:`render_order` with the order's lines and fee lines read in ``tx``."""
    number = order["number"]
    return render_order(order, lines_of(tx, number), fees_of(tx, number), taxes_of(tx, number))


def session_member(shop: Any, req: falcon.Request) -> str | None:
    """The member logged in on the request's session (a page's, or the cookie's)."""
    session = getattr(req.context, "session", None)
    if session is None and "sessions" in shop.extras:
        values = req.get_cookie_values(shop.extras["session_cookie"]) or []
        session = shop.extras["sessions"].load(values[0]) if values else None
    return session.member_id if session is not None else None


def authorized_order(shop: Any, req: falcon.Request, number: str, tx: Any = None) -> dict[str, Any]:
    """The order, if the request carries the order's access token or the session of
    the member who placed it; read in ``tx`` when given (the caller reads more).

    Raises:
        NotFound: no such order, or neither token nor member fits (the same 404 for all).
    """
    token = req.get_param("token") or req.get_header("X-Order-Token") or ""
    with shop.store.read() if tx is None else nullcontext(tx) as reading:
        try:
            order = load(reading, number)
        except NotFound:
            order = None
    # NOTE: an unknown order and a wrong token answer the same 404, so order numbers
    # cannot be probed.
    if (
        order is not None
        and token
        and hmac.compare_digest(
            token.encode("utf-8", "replace"), str(order["access_token"]).encode()
        )
    ):
        return order
    if (
        order is not None
        and order.get("member_id")
        and order["member_id"] == session_member(shop, req)
    ):
        return order
    raise NotFound(f"no order {number!r} for this token", number=number)


class Checkout:
    """``POST /api/v1/checkout``."""

    rate_limited = True  # one client places only so many orders (ecshop.resources.ratelimit)

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=(IDEMPOTENCY_KEY,), body=CART,
             answers=(ok(PLACED, "placed", 201), ok(PLACED, "the same Idempotency-Key and body")))  # fmt: skip
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Place an order; it is committed before the gateway redirect is returned."""
        body = req.context.body
        result = self.shop.checkout.place(
            body,
            gateways=self.shop.gateways,
            idempotency_key=req.get_header("Idempotency-Key"),
            unavailable=self.shop.plugins.unavailable,
        )
        order = result.order
        view = render_order(order, result.lines, result.fees, result.taxes)
        view["access_token"] = order["access_token"]
        payment = self.shop.flow.start(order, result.lines)
        view["status"] = payment.pop("status", order["status"])
        view["payment"] = payment
        send_json(resp, view, falcon.HTTP_201 if result.created else falcon.HTTP_200)


class OrderStatus:
    """``GET /api/v1/orders/{number}``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=(*NUMBER_PATH, *ORDER_TOKEN), answers=(ok(ORDER, "the order"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """The order's real state (needs its access token)."""
        # PERF: one read transaction for the order and its lines, fees and taxes
        with self.shop.store.read() as tx:
            send_json(resp, view_of(tx, authorized_order(self.shop, req, number, tx)))


class OrderCancel:
    """``POST /api/v1/orders/{number}/cancel``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=(*NUMBER_PATH, *ORDER_TOKEN), answers=(ok(ORDER, "cancelled"),))
    def on_post(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """The customer cancels an unpaid order; its stock comes back."""
        authorized_order(self.shop, req, number)
        change = self.shop.orders.cancel(
            number, move="customer_cancel", actor="customer", reason="cancelled by the customer"
        )
        with self.shop.store.read() as tx:
            send_json(resp, view_of(tx, change.order))


class AdminOrderList:
    """``GET /api/v1/admin/orders``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=(*PAGING, query("status", {"type": "string", "enum": list(STATUSES)}),
                     query("attention", {"type": "string", "enum": [UNREACHABLE]},
                           description="only pending orders flagged for the admin")),
             answers=(ok(page_of(ORDER), "a page of orders"),))  # fmt: skip
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List orders by number, a page after the cursor."""
        limit, after = req.context.params["limit"], req.context.params["after"]
        status = req.context.params["status"]
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if req.context.params["attention"]:
            where.append("status = ? AND number IN (SELECT order_number FROM order_events "
                         "WHERE reason LIKE ?)")  # fmt: skip
            params += [PENDING, f"{UNREACHABLE}:%"]
        if after:
            where.append("number > ?")
            params.append(after)
        sql = "SELECT number FROM orders" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self.shop.store.read() as tx:
            numbers = [
                r["number"]
                for r in tx.query(sql + " ORDER BY number LIMIT ?", (*params, limit + 1))
            ]
            more = len(numbers) > limit
            numbers = numbers[:limit]
            items = [view_of(tx, load(tx, n)) for n in numbers]
        send_json(resp, {"items": items, "next_after": numbers[-1] if more else None})


def attention(order: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the admin must look at on a pending order: the reconciler's flag of a
    gateway that has not answered for too long (``ECSHOP_GATEWAY_UNREACHABLE_AFTER``)."""
    if order["status"] != PENDING:
        return None
    for event in reversed(events):
        data = event["data"]
        if isinstance(data, dict) and data.get("attention"):
            return {"code": data["attention"], "reason": event["reason"],
                    "since": event["created_at"]}  # fmt: skip
    return None


class AdminOrderItem:
    """``GET /api/v1/admin/orders/{number}``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=NUMBER_PATH, answers=(ok(ORDER_DETAIL, "the order"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """One order with its lines, events, payment journal and the buyer's mail."""
        with self.shop.store.read() as tx:
            order = load(tx, number)
            view = view_of(tx, order)
            view["customer"] = json.loads(order["customer_json"])
            view["payment_id"] = order["payment_id"]
            view["events"] = [
                {**e, "created_at": iso(e["created_at"]), "data": json.loads(e.pop("data_json") or "null")}
                for e in tx.query(
                    "SELECT from_status, to_status, actor, reason, data_json, created_at FROM order_events "
                    "WHERE order_number = ? ORDER BY id", (number,))
            ]  # fmt: skip
            view["attention"] = attention(order, view["events"])
            view["mail"] = [
                {**m, "created_at": iso(m["created_at"]), "sent_at": iso(m["sent_at"])}
                for m in tx.query(
                    "SELECT kind, recipient, status, attempts, last_error, created_at, sent_at "
                    "FROM outbox WHERE order_number = ? ORDER BY id", (number,))
            ]  # fmt: skip
            view["payments"] = [
                {**p, "received_at": iso(p["received_at"]), "applied_at": iso(p["applied_at"])}
                for p in tx.query(
                    "SELECT gateway, event_id, type, amount, currency, payment_id, outcome, received_at, "
                    "applied_at FROM payments_journal WHERE order_number = ? ORDER BY id", (number,))
            ]  # fmt: skip
        send_json(resp, view)


class AdminOrderAction:
    """``POST /api/v1/admin/orders/{number}/{action}``: ship, cancel, refund, mark-paid.

    The same :class:`ecshop.order_admin.OrderDesk` as the admin pages makes each one,
    with its rules and its audit line; the token may do what an owner may."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop
        self.desk = OrderDesk(shop.store, shop.orders, shop.flow)

    @declare(params=NUMBER_PATH, answers=(ok(ORDER, "the order after the change"),))
    def on_post_ship(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """Ship a paid order: on_hand decreases by the shipped quantities."""
        self._do(req, resp, order_admin.SHIP, number)

    @declare(params=NUMBER_PATH, answers=(ok(ORDER, "the order after the change"),))
    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """Cancel an unpaid, accepted or paid order (a paid one is refunded and restocked)."""
        self._do(req, resp, order_admin.CANCEL, number)

    @declare(params=NUMBER_PATH, body=REFUND, body_required=False,
             answers=(ok(ORDER, "the order after the refund"),))  # fmt: skip
    def on_post_refund(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """Refund through the gateway, in full or in part (``{"amount": n}``)."""
        body = req.context.body or {}
        self._do(req, resp, order_admin.REFUND, number, amount=body.get("amount"),
                 reason=str(body.get("reason", "")))  # fmt: skip

    @declare(params=NUMBER_PATH, answers=(ok(ORDER, "the order after the change"),))
    def on_post_mark_paid(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """Mark an offline order (cash on delivery, bank transfer) or a backordered one as paid.

        Only while money can still arrive (pending or accepted), or for a paid order that
        had no stock (needs attention); never for a cancelled order."""
        self._do(req, resp, order_admin.MARK_PAID, number)

    def _do(self, req: falcon.Request, resp: falcon.Response, action: str, number: str,
            **options: Any) -> None:  # fmt: skip
        actor = getattr(req.context, "actor", None)
        order = self.desk.do(action, number, actor=actor if isinstance(actor, Actor) else TOKEN,
                             **options)  # fmt: skip
        with self.shop.store.read() as tx:
            send_json(resp, view_of(tx, order))
