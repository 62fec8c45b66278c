"""A cart's price before checkout, and the delivery choices a checkout may make: the
JSON face of the seams a cart page and a checkout form are built on."""

from __future__ import annotations

from typing import Any

import falcon

from ecshop.checkout import CART, CUSTOMER_SO_FAR, check_prefecture
from ecshop.resources._declare import declare, ok
from ecshop.resources._http import send_json
from ecshop.resources._shapes import DELIVERY_OPTIONS, QUOTE
from ecshop.schema import obj

#: ``POST /api/v1/quote``: the checkout body's lines, and what is known of the buyer
QUOTE_BODY = obj(
    {"lines": CART["properties"]["lines"]},
    {"customer": CUSTOMER_SO_FAR, "gateway": CART["properties"]["gateway"]},
)


class Quote:
    """``POST /api/v1/quote``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(body=QUOTE_BODY, answers=(ok(QUOTE, "what the cart costs, tax included"),))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Price a cart as checkout would (shipping, fee lines, tax per rate); nothing is
        held or written, and the prices may change before the order is placed."""
        body = req.context.body
        customer = dict(body.get("customer") or {})
        check_prefecture(customer)
        lines = [(line["sku"], line["qty"]) for line in body["lines"]]
        quote = self.shop.checkout.quote(lines, customer, body.get("gateway", ""))
        totals = quote.totals
        send_json(resp, {
            "currency": self.shop.config.currency, "subtotal": totals.subtotal,
            "shipping": totals.shipping, "fees": totals.fees, "total": totals.total,
            "taxes": quote.taxes,
            "lines": [{k: ln[k] for k in ("sku", "name", "unit_price", "qty", "line_total",
                                          "tax_class")} for ln in quote.lines],
        })  # fmt: skip


class DeliveryOptions:
    """``GET /api/v1/delivery-options``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(answers=(ok(DELIVERY_OPTIONS, "the dates and time slots offered today"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The delivery dates and time slots a checkout may choose (empty: none)."""
        send_json(resp, self.shop.checkout.delivery.options())
