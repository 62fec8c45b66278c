"""The checkout pages: the address form, the review page that places the order, the
hand-off to the gateway and the order's own page.

The review shows the totals the order will be placed with (the same checkout code,
holding no stock); placing carries the session's CSRF token and an idempotency key, so
a double click makes one order. An item sold out meanwhile sends the shopper back to
the cart with the message.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlencode

import falcon

from ecshop import cart as carts
from ecshop.errors import BadRequest, InsufficientStock, NotFound, ValidationError
from ecshop.orders import fees_of, lines_of, taxes_of
from ecshop.pages import ORDER_MESSAGES, check_form, checkout_fields, customer_of
from ecshop.resources._declare import declare
from ecshop.resources._page import FORM, HTML_ANSWER, SEE_OTHER, csp, origin, see_other
from ecshop.resources.account import address_fields, saved_checkout_form
from ecshop.resources.orders import NUMBER_PATH, ORDER_TOKEN, authorized_order
from ecshop.resources.storefront import PageResource

CHECKOUT = "checkout"
PLACED = "placed"


def order_link(order: dict[str, Any]) -> str:
    return f"/orders/{order['number']}?" + urlencode({"token": order["access_token"]})


class CheckoutForm(PageResource):
    """``GET /checkout``, ``POST /checkout``: who buys, where it goes, how they pay."""

    def gateways(self) -> list[dict[str, str]]:
        return [{"name": name, "title": str(getattr(gw, "title", name))}
                for name, gw in sorted(self.shop.gateways.items())]  # fmt: skip

    def show(self, req: falcon.Request, resp: falcon.Response, form: dict[str, str],
             errors: dict[str, str], status: int = 200) -> None:  # fmt: skip
        lang_errors = {k: self.tr(req, v) for k, v in errors.items()}
        self.render(req, resp, "checkout.html", {
            "fields": checkout_fields(self.shop.hooks), "form": form, "errors": lang_errors,
            "gateways": self.gateways()}, status)  # fmt: skip

    @declare(answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The checkout form (an empty cart goes back to the cart)."""
        session = req.context.session
        if not session.get(carts.KEY):
            see_other(resp, "/cart")
            return
        form = session.get(CHECKOUT)
        if form is None:  # a member's first checkout of this session: the saved address
            member = self.shop.extras["members"].get(session.member_id)
            form = saved_checkout_form(member) if member else {}
        self.show(req, resp, dict(form), {})

    @declare(raw_body=FORM, answers=(SEE_OTHER,), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Keep the form in the session and go to the review, or show what is wrong."""
        fields = checkout_fields(self.shop.hooks)
        form = {f["name"]: req.context.form.get(f["name"], "").strip()[:1000] for f in fields}
        form["gateway"] = req.context.form.get("gateway", "")[:64]
        errors = check_form(fields, form)
        if form["gateway"] not in self.shop.gateways:
            errors["gateway"] = "Choose a payment method."
        req.context.session.set(CHECKOUT, form)
        if errors:
            self.show(req, resp, form, errors, 400)
            return
        see_other(resp, "/checkout/review")


class Review(PageResource):
    """``GET /checkout/review``, ``POST /checkout/place``."""

    rate_limited = True  # placing is a checkout (ecshop.resources.ratelimit)

    def body(self, req: falcon.Request) -> dict[str, Any] | None:
        """The checkout body of the session's cart and form (None when one is missing)."""
        session = req.context.session
        cart, form = session.get(carts.KEY) or {}, session.get(CHECKOUT)
        if not cart or not form:
            return None
        customer = customer_of(checkout_fields(self.shop.hooks), form)
        return {"lines": [{"sku": s, "qty": int(q)} for s, q in sorted(cart.items())],
                "customer": customer, "gateway": form.get("gateway", "")}  # fmt: skip

    @declare(answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """What will be ordered: lines, fees, shipping and the total; nothing is held."""
        body = self.body(req)
        if body is None:
            see_other(resp, "/checkout" if req.context.session.get(carts.KEY) else "/cart")
            return
        if body["gateway"] not in self.shop.gateways:  # switched off since the form
            req.context.session.flash(self.tr(req, "Choose a payment method."), "warning")
            see_other(resp, "/checkout")
            return
        try:
            quoted = self.shop.checkout.quote_body(body)
        except (ValidationError, NotFound) as exc:
            req.context.session.flash(exc.message, "warning")
            see_other(resp, "/cart")
            return
        self.render(req, resp, "review.html", {
            "lines": quoted.lines, "totals": quoted.totals, "taxes": quoted.taxes,
            "currency": self.shop.config.currency,
            "customer": body["customer"], "fields": checkout_fields(self.shop.hooks),
            "gateway": self.shop.gateways[body["gateway"]], "key": secrets.token_hex(16)})  # fmt: skip

    def _key(self, req: falcon.Request) -> str:
        given = req.context.form.get("idempotency_key", "")
        if not (16 <= len(given) <= 64 and given.isalnum()):
            raise BadRequest("the review page's form is incomplete: go back and try again")
        # NOTE: bound to the session, so two shoppers' keys can never meet.
        return "page:" + hashlib.sha256(f"{req.context.session.id}:{given}".encode()).hexdigest()

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post_place(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Place the order, then hand the shopper to the payment (or its instructions)."""
        session, key = req.context.session, self._key(req)
        placed = session.get(PLACED) or {}
        body = self.body(req)
        if placed.get("key") == key or body is None:
            if placed.get("key") != key:
                see_other(resp, "/cart")
                return
            self.hand_off(req, resp, placed)  # the second click of a double click
            return
        try:
            result = self.shop.checkout.place(body, gateways=self.shop.gateways,
                                              idempotency_key=key,
                                              unavailable=self.shop.plugins.unavailable,
                                              member_id=session.member_id)  # fmt: skip
        except (ValidationError, NotFound) as exc:  # a cap, a plugin's check, a gone item
            session.flash(exc.message, "warning")
            see_other(resp, "/cart")
            return
        except InsufficientStock as exc:
            sku = str(exc.details.get("sku", ""))
            name = carts.products(self.shop.store, [sku]).get(sku, {}).get("name", sku)
            session.flash(self.tr(req, "Sorry, %(name)s sold out while you were checking out; "
                                  "please check your cart.", name=name), "warning")  # fmt: skip
            see_other(resp, "/cart")
            return
        payment = self.shop.flow.start(result.order, result.lines)
        placed = {"key": key, "number": result.order["number"],
                  "token": result.order["access_token"], "payment": payment}  # fmt: skip
        session.set(PLACED, placed)
        session.pop(carts.KEY)
        self._keep_address(session)
        self.hand_off(req, resp, placed)

    def _keep_address(self, session: Any) -> None:
        """A member with no saved address keeps the one of this order."""
        members = self.shop.extras["members"]
        member = members.get(session.member_id)
        if member is None or member["address"]:
            return
        form = session.get(CHECKOUT) or {}
        members.save_address(member["id"], {f["name"]: form.get(f["name"], "")
                                            for f in address_fields(self.shop.hooks)})  # fmt: skip

    def hand_off(self, req: falcon.Request, resp: falcon.Response, placed: dict[str, Any]) -> None:
        """To the gateway's page (a redirect or a form posted on), or the order's page."""
        payment = placed["payment"]
        link = order_link({"number": placed["number"], "access_token": placed["token"]})
        if payment.get("offline"):
            see_other(resp, link)
            return
        form = payment.get("form")
        target = form["action"] if form else payment["redirect_url"]
        self.render(req, resp, "handoff.html", {"form": form, "redirect_url": target,
                                                "order_link": link, "payment": payment})  # fmt: skip
        resp.set_header("Content-Security-Policy", csp((origin(target),)))


class OrderPage(PageResource):
    """``GET /orders/{number}``: the order's state and summary (needs its token)."""

    @declare(params=(*NUMBER_PATH, *ORDER_TOKEN), answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """The order's real state, its lines, charges and total; offline instructions."""
        order = authorized_order(self.shop, req, number)
        placed = req.context.session.get(PLACED) or {}
        payment = placed.get("payment", {}) if placed.get("number") == number else {}
        order_view(self, req, resp, order, payment)


def order_view(page: PageResource, req: falcon.Request, resp: falcon.Response,
               order: dict[str, Any], payment: dict[str, Any], *, refresh: bool = False) -> None:  # fmt: skip
    """Render ``order.html`` for ``order`` (the return page shows the same)."""
    with page.shop.store.read() as tx:
        lines, fees = lines_of(tx, order["number"]), fees_of(tx, order["number"])
        taxes = taxes_of(tx, order["number"])
    gateway = page.shop.plugins.found.get(order["gateway"])
    page.render(req, resp, "order.html", {
        "order": order, "lines": lines, "fees": fees, "taxes": taxes, "payment": payment,
        "customer": json.loads(order["customer_json"]), "status_messages": ORDER_MESSAGES,
        "refresh": refresh,
        "test_mode": bool(getattr(gateway, "test_mode", False)),
        "gateway_title": str(getattr(page.shop.gateways.get(order["gateway"]), "title",
                                     order["gateway"]))})  # fmt: skip
