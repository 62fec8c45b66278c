"""``GET /``: a minimal storefront page, enough to buy from the demo shop in a browser."""

from __future__ import annotations

import html
from typing import Any

import falcon

from ecshop import catalog

PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>ecshop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}}
li{{display:flex;gap:1rem;align-items:center;padding:.4rem 0;border-bottom:1px solid #ddd}}
li span.name{{flex:1}}</style></head>
<body><h1>ecshop</h1>
<p><label>Email <input id="email" type="email" value="customer@example.com"></label>
<label>Payment <select id="gateway">{gateways}</select></label></p>
<ul id="products">{items}</ul>
<p id="message" role="status"></p>
<script>
// crypto.randomUUID() exists only on HTTPS and localhost; getRandomValues everywhere.
function newKey() {{
  return Array.from(crypto.getRandomValues(new Uint8Array(16)),
                    b => b.toString(16).padStart(2, "0")).join("");
}}
async function buy(sku) {{
  const qty = parseInt(document.getElementById("qty-" + sku).value, 10);
  const resp = await fetch("/api/v1/checkout", {{method: "POST",
    headers: {{"Content-Type": "application/json", "Idempotency-Key": newKey()}},
    body: JSON.stringify({{lines: [{{sku, qty}}], customer: {{email: document.getElementById("email").value}},
                          gateway: document.getElementById("gateway").value}})}});
  const body = await resp.json();
  const msg = document.getElementById("message");
  if (!resp.ok) {{ msg.textContent = body.error.message; return; }}
  if (body.payment.redirect_url) {{ window.location = body.payment.redirect_url; return; }}
  msg.textContent = "Order " + body.number + ": " + body.status;
}}
</script></body></html>
"""

ITEM = (
    '<li data-sku="{sku}"><span class="name">{name}</span><span>{price} {currency}</span>'
    '<span>{available} left</span><input id="qty-{sku}" type="number" min="1" value="1" size="3">'
    '<button type="button" onclick="buy(\'{sku}\')" {disabled}>Buy</button></li>'
)


class Storefront:
    def __init__(self, shop: Any) -> None:
        self.shop = shop

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The storefront page."""
        rows, _ = catalog.list_products(self.shop.store, limit=200, after=None)
        levels = self.shop.stock.levels([r["sku"] for r in rows]) if rows else {}
        items = []
        for row in rows:
            available = int(levels[row["sku"]].available) if row["sku"] in levels else 0
            items.append(ITEM.format(
                sku=html.escape(row["sku"]), name=html.escape(row["name"]), price=int(row["price"]),
                currency=html.escape(row["currency"]), available=available,
                disabled="" if available > 0 else "disabled",
            ))  # fmt: skip
        gateways = "".join(
            f'<option value="{html.escape(name)}">{html.escape(getattr(gw, "title", name))}</option>'
            for name, gw in sorted(self.shop.gateways.items())
        )
        resp.content_type = falcon.MEDIA_HTML
        resp.text = PAGE.format(items="".join(items), gateways=gateways)
