"""The storefront's pages: catalog with search and paging, product page, language
switch and the cart (kept in the server-side session).

Every page is rendered from ``ecshop/templates`` (or the theme folder) and carries no
inline script or style, so it is served under a strict Content-Security-Policy; every
form carries the session's CSRF token (:mod:`ecshop.resources._page`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import falcon

from ecshop import cart as carts
from ecshop import catalog
from ecshop.errors import NotFound
from ecshop.render import LANGUAGES
from ecshop.resources._declare import declare, path, query
from ecshop.resources._page import (
    FORM,
    HTML_ANSWER,
    LANG_COOKIE,
    SEE_OTHER,
    local_path,
    page_language,
    render,
    see_other,
)
from ecshop.schema import SKU

PAGE_SIZE = 24
SEARCH = query("q", {"type": "string", "maxLength": 100}, description="words to look for")
AFTER = query("after", {"type": "string", "maxLength": 255}, description="the next page's cursor")
QTY_MAX = 1_000_000


def _int(value: str | None, default: int = 0) -> int:
    """A form's quantity: digits only (else ``default``), a huge one taken as the most."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return default
    return min(int(text[:9]), QTY_MAX) if len(text) <= 9 else QTY_MAX


class PageResource:
    """A page of the shop: the shop's services and the renderer."""

    uses_session = True

    def __init__(self, shop: Any, renderer: Any) -> None:
        self.shop = shop
        self.renderer = renderer

    def tr(self, req: falcon.Request, message: str, **values: Any) -> str:
        return str(self.renderer.gettext(page_language(req), message, **values))

    def render(self, req: falcon.Request, resp: falcon.Response, template: str,
               context: dict[str, Any], status: int = 200) -> None:  # fmt: skip
        render(self.renderer, req, resp, template, context, status)


class Catalog(PageResource):
    """``GET /``."""

    @declare(params=(SEARCH, AFTER), answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The catalog: a page of products, searched by name or SKU."""
        words = (req.context.params["q"] or "").strip()
        rows, next_after = catalog.search_products(
            self.shop.store, query=words, limit=PAGE_SIZE, after=req.context.params["after"]
        )
        free = carts.available(self.shop.stock, [r["sku"] for r in rows])
        for row in rows:  # the rows are this request's own
            row["available"] = free[row["sku"]]
        more = "/?" + urlencode({"q": words, "after": next_after}) if next_after else None
        self.render(req, resp, "catalog.html", {"products": rows, "q": words,
                                                 "next_page": more})  # fmt: skip


class Product(PageResource):
    """``GET /products/{sku}``."""

    @declare(params=(path("sku", SKU),), answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """One product: description, price, availability and the add-to-cart form."""
        row = catalog.get_product(self.shop.store, sku)
        free = carts.available(self.shop.stock, [sku])[sku]
        limit = carts.limit_of(row, free, self.shop.config.max_qty_per_line)
        picture = self.shop.extras["media"].url_for(sku)
        self.render(req, resp, "product.html", {"product": {**row, "available": free},
                                                "limit": limit, "picture": picture})  # fmt: skip


class Language:
    """``GET /lang/{code}``: the page language, kept in the ``lang`` cookie."""

    @declare(params=(path("code", {"type": "string", "enum": list(LANGUAGES)}),
                     query("next", {"type": "string", "maxLength": 2000})),
             answers=(SEE_OTHER,), page=True)  # fmt: skip
    def on_get(self, req: falcon.Request, resp: falcon.Response, code: str) -> None:
        """Switch the language and go back to the page."""
        resp.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, path="/",
                        secure=req.scheme == "https", http_only=True, same_site="Lax")  # fmt: skip
        see_other(resp, local_path(req.context.params["next"]))


class Cart(PageResource):
    """``GET /cart``, ``POST /cart/add``, ``POST /cart/update``."""

    def view(self, req: falcon.Request) -> carts.CartView:
        session = req.context.session
        shown = carts.view(self.shop.store, self.shop.stock, dict(session.get(carts.KEY, {})),
                           currency=self.shop.config.currency,
                           max_qty=self.shop.config.max_qty_per_line)  # fmt: skip
        if shown.changes or shown.as_cart() != session.get(carts.KEY, {}):
            session.set(carts.KEY, shown.as_cart())
        for what, name, qty in shown.changes:
            session.flash(self._change_text(req, what, name, qty), "warning")
        return shown

    def _change_text(self, req: falcon.Request, what: str, name: str, qty: int) -> str:
        if what == "reduced":
            return self.tr(req, "Only %(qty)s of %(name)s can be bought now: your cart was changed.",
                           qty=qty, name=name)  # fmt: skip
        if what == "sold_out":
            return self.tr(req, "%(name)s has sold out and was taken out of your cart.", name=name)
        return self.tr(req, "A product is no longer sold and was taken out of your cart.")

    @declare(answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The cart: its lines, quantities and subtotal."""
        shown = self.view(req)
        self.render(req, resp, "cart.html", {"cart": shown})

    def _put(self, req: falcon.Request, sku: str, qty: int, *, add: bool) -> None:
        session = req.context.session
        cart = dict(session.get(carts.KEY, {}))
        product = carts.products(self.shop.store, [sku]).get(sku)
        if product is None:
            raise NotFound(f"no product with sku {sku!r}", sku=sku)
        free = carts.available(self.shop.stock, [sku])[sku]
        limit = carts.limit_of(product, free, self.shop.config.max_qty_per_line)
        wanted = qty + (int(cart.get(sku, 0)) if add else 0)
        kept = carts.put(cart, sku, wanted, limit)
        session.set(carts.KEY, cart)
        if kept < wanted:
            session.flash(self.tr(req, "Only %(qty)s of %(name)s can be bought now.",
                                  qty=kept, name=product["name"]), "warning")  # fmt: skip
        elif add:
            session.flash(self.tr(req, "%(name)s was added to your cart.", name=product["name"]))

    def _sku(self, req: falcon.Request) -> str:
        sku = req.context.form.get("sku", "")
        if not 0 < len(sku) <= 64:
            raise NotFound("no such product", sku=sku[:64])
        return sku

    @declare(raw_body=FORM, answers=(SEE_OTHER,), page=True)
    def on_post_add(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Put units of a product into the cart (clamped to what can be bought)."""
        self._put(req, self._sku(req), max(1, min(_int(req.context.form.get("qty"), 1), QTY_MAX)),
                  add=True)  # fmt: skip
        see_other(resp, "/cart")

    @declare(raw_body=FORM, answers=(SEE_OTHER,), page=True)
    def on_post_update(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Change a line's quantity (0, or the remove button, takes it out; a quantity
        that is not a number leaves the line as it was)."""
        sku = self._sku(req)
        kept = int(req.context.session.get(carts.KEY, {}).get(sku, 0))
        qty = 0 if "remove" in req.context.form else _int(req.context.form.get("qty"), kept)
        self._put(req, sku, qty, add=False)
        see_other(resp, "/cart")
