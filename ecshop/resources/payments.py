"""Payment endpoints called by gateways and returning customers. Never shed, open in
maintenance mode: a payment in flight must always be able to land."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl

import falcon

from ecshop.errors import NotFound, ShopError
from ecshop.money import format_money
from ecshop.orders import PENDING, fees_of, load
from ecshop.payments import callback
from ecshop.payments.callback import FORM, NotificationOutcome, NotificationRequest
from ecshop.resources._declare import Answer, declare, ok, path, query
from ecshop.resources._http import read_body, send_json
from ecshop.resources._shapes import RECEIVED, RETURNED
from ecshop.resources.context import request_id
from ecshop.resources.orders import ORDER_NUMBER, ORDER_TOKEN, authorized_order

GATEWAY_PATH = (path("gateway", {"type": "string", "minLength": 1, "maxLength": 64}),)
RETURN_PARAMS = (*GATEWAY_PATH, query("order", ORDER_NUMBER, required=True), *ORDER_TOKEN)
RETURN_ANSWERS = (Answer(200, "the order's state", {"type": "string"}, "text/html"),
                  ok(RETURNED, "the order's state, to a client that asks for JSON"))  # fmt: skip


NOTIFY_MEDIA = ("application/json", FORM)
NOTIFY_ANSWERS = (
    ok(RECEIVED, "journaled (and applied): the default JSON reply"),
    Answer(200, "journaled: the reply the gateway's provider expects, such as the literal OK",
           {"type": "string"}, "text/plain"),
    Answer(400, "refused (signature, timestamp, amount…): the provider's retry or alert fires"),
    Answer(503, "not recorded (database busy): the provider retries"),
)  # fmt: skip


class Notify:
    """``POST /payments/{gateway}/notify``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=GATEWAY_PATH, raw_body=NOTIFY_MEDIA, answers=NOTIFY_ANSWERS)
    def on_post(self, req: falcon.Request, resp: falcon.Response, gateway: str) -> None:
        """A gateway notification: verified, journaled once, then applied; the gateway
        words the reply (a 2xx only after the journal commit)."""
        gw = self.shop.gateways.get(gateway)
        if gw is None:
            raise NotFound(f"no payment gateway {gateway!r}", gateway=gateway)
        try:
            body = read_body(req, self.shop.config.max_body)
        except ShopError as exc:
            outcome = NotificationOutcome.from_error(exc, request_id=request_id(req))
        else:
            outcome = callback.receive(self.shop.payments, gateway, gw, NotificationRequest(
                headers=dict(req.headers.items()), body=body, method=req.method,
                query_pairs=tuple(parse_qsl(req.query_string, keep_blank_values=True)),
                request_id=request_id(req)))  # fmt: skip
        answer = callback.reply(gateway, gw, outcome)
        resp.status = answer.status
        resp.content_type = answer.content_type
        for name, value in answer.headers.items():
            resp.set_header(name, value)
        resp.data = answer.data


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Order {number}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}</head>
<body><main>
{banner}<h1>Order <span id="order-number">{number}</span></h1>
<p id="order-status" data-status="{status}">{message}</p>
{charges}<p id="order-total" data-amount="{amount}">Total: {total}</p>
</main></body></html>
"""
#: shown above the order when its gateway takes test payments
TEST_BANNER = '<p id="test-mode" role="alert"><strong>TEST MODE — no real money</strong></p>\n'


MESSAGES = {
    "paid": "Thank you: your payment was received.",
    "accepted": "Thank you: your order was accepted.",
    "pending_payment": "Your payment is being processed. This page refreshes by itself.",
    "cancelled": "This order was cancelled; nothing was charged.",
    "needs_attention": "Your payment was received; we will contact you about your order.",
    "shipped": "Your order has shipped.",
    "refunded": "This order was refunded.",
}


def charges_html(order: dict[str, Any], fees: list[dict[str, Any]]) -> str:
    """The order's shipping and fee lines for the return page (escaped)."""
    rows = [("shipping", "Shipping", int(order["shipping"]))] if int(order["shipping"]) else []
    rows += [("fee", str(f["name"]), int(f["amount"])) for f in fees]
    if not rows:
        return ""
    items = "".join(
        f'<li class="{kind}" data-amount="{amount}">{html.escape(name)}: '
        f"{html.escape(format_money(amount, str(order['currency'])))}</li>"
        for kind, name, amount in rows
    )
    return f'<ul id="order-charges">{items}</ul>\n'


class Return:
    """``GET /payments/{gateway}/return``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=RETURN_PARAMS, answers=RETURN_ANSWERS)
    def on_get(self, req: falcon.Request, resp: falcon.Response, gateway: str) -> None:
        """The customer is back from the gateway: show the order's real state.

        The return URL carries ``ticket``, a short-lived value signed for the order;
        the order's access token (``token`` or ``X-Order-Token``) is taken too.
        """
        number = req.get_param("order") or ""
        ticket = req.get_param("ticket")
        if ticket is not None:
            order = self.shop.flow.returning_order(number, ticket)
        else:
            order = authorized_order(self.shop, req, number)
        if order["status"] == PENDING and order["gateway"] == gateway:
            # NOTE: the notification may still be on its way: ask the gateway now.
            self.shop.flow.settle(order)
            with self.shop.store.read() as tx:
                order = load(tx, number)
        status = order["status"]
        test_mode = bool(getattr(self.shop.plugins.found.get(order["gateway"]), "test_mode", False))
        if req.client_accepts_json and not req.client_accepts("text/html"):
            send_json(resp, {"number": number, "status": status, "test_mode": test_mode})
            return
        with self.shop.store.read() as tx:
            fees = fees_of(tx, number)
        resp.content_type = falcon.MEDIA_HTML
        resp.text = PAGE.format(
            number=html.escape(number), status=html.escape(status),
            message=html.escape(MESSAGES.get(status, status)),
            charges=charges_html(order, fees), amount=int(order["total"]),
            total=html.escape(format_money(int(order["total"]), order["currency"])),
            refresh='<meta http-equiv="refresh" content="3">' if status == PENDING else "",
            banner=TEST_BANNER if test_mode else "",
        )  # fmt: skip
