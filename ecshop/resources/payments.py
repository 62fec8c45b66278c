"""Payment endpoints called by gateways and returning customers. Never shed, open in
maintenance mode: a payment in flight must always be able to land."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import falcon

from ecshop.errors import NotFound, ShopError
from ecshop.orders import PENDING, load
from ecshop.payments import callback
from ecshop.payments.callback import FORM, NotificationOutcome, NotificationRequest
from ecshop.resources._declare import Answer, declare, ok, path, query
from ecshop.resources._http import read_body, send_json
from ecshop.resources._shapes import RECEIVED, RETURNED
from ecshop.resources.checkout_pages import order_view
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
            callback.count(gateway, outcome)
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


class Return:
    """``GET /payments/{gateway}/return``."""

    def __init__(self, shop: Any, page: Any) -> None:
        self.shop = shop
        self.page = page  # renders the order's page (ecshop.resources.checkout_pages)

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
        order_view(self.page, req, resp, order, {}, refresh=True)
