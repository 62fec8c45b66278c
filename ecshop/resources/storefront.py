"""``GET /``: a minimal storefront page, enough to buy from the demo shop in a browser.

The page holds no script of its own: its data is in HTML-escaped ``data-*`` attributes
and its behaviour in ``/static/storefront.js``, so it is served with a Content-Security-
Policy that allows scripts from the shop's own origin only.
"""

from __future__ import annotations

import html
from typing import Any

import falcon

from ecshop import catalog
from ecshop.money import format_money
from ecshop.resources._declare import Answer, declare
from ecshop.resources.static import StaticFiles

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>ecshop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{css}">
<script src="{js}" defer></script></head>
<body><h1>ecshop</h1>
<p><label>Email <input id="email" type="email" value="customer@example.com"></label>
<label>Payment <select id="gateway">{gateways}</select></label></p>
<ul id="products">{items}</ul>
<p id="message" role="status"></p>
</body></html>
"""

ITEM = (
    '<li data-sku="{sku}" data-price="{price}" data-available="{available}">'
    '<span class="name">{name}</span><span>{price_text}</span>'
    "<span>{available} left</span>"
    '<input id="qty-{sku}" class="qty" type="number" min="1" value="1" size="3">'
    '<button type="button" class="buy"{disabled}>Buy</button></li>'
)


def _item(row: dict[str, Any], available: int) -> str:
    return ITEM.format(
        sku=html.escape(row["sku"]), name=html.escape(row["name"]), price=int(row["price"]),
        price_text=html.escape(format_money(int(row["price"]), row["currency"])),
        available=available,
        disabled="" if available > 0 else " disabled",
    )  # fmt: skip


class Storefront:
    def __init__(self, shop: Any, static: StaticFiles) -> None:
        self.shop = shop
        self.static = static

    @declare(answers=(Answer(200, "the storefront page", {"type": "string"}, "text/html"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The storefront page."""
        rows, _ = catalog.list_products(self.shop.store, limit=200, after=None)
        levels = self.shop.stock.levels([r["sku"] for r in rows]) if rows else {}
        items = "".join(
            _item(row, int(levels[row["sku"]].available) if row["sku"] in levels else 0)
            for row in rows
        )
        gateways = "".join(
            f'<option value="{html.escape(name)}">{html.escape(str(getattr(gw, "title", name)))}</option>'
            for name, gw in sorted(self.shop.gateways.items())
        )
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Content-Security-Policy", CSP)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.text = PAGE.format(
            items=items, gateways=gateways,
            js=html.escape(self.static.url("storefront.js")),
            css=html.escape(self.static.url("storefront.css")),
        )  # fmt: skip
