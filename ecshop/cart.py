"""The shopper's cart, kept in the server-side session: ``{sku: qty}``.

Quantities are clamped to what can be bought: the units available now, the shop's cap
per line (``ECSHOP_MAX_QTY_PER_LINE``) and the product's own ``max_per_order``. Prices
always come from the database; the cart holds none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecshop.store import Store

KEY = "cart"


@dataclass(frozen=True)
class CartLine:
    sku: str
    name: str
    unit_price: int
    qty: int
    limit: int  # the most units of this line that can be bought now

    @property
    def line_total(self) -> int:
        return self.unit_price * self.qty


@dataclass
class CartView:
    """The cart as shown: lines at today's prices, and what changed since it was filled."""

    lines: list[CartLine]
    currency: str
    changes: list[tuple[str, str, int]] = field(default_factory=list)  # (what, name, qty)

    @property
    def subtotal(self) -> int:
        return sum(line.line_total for line in self.lines)

    @property
    def count(self) -> int:
        return sum(line.qty for line in self.lines)

    def as_cart(self) -> dict[str, int]:
        return {line.sku: line.qty for line in self.lines}


def products(store: Store, skus: list[str]) -> dict[str, dict[str, Any]]:
    """The live products among ``skus`` (one indexed query)."""
    if not skus:
        return {}
    marks = ", ".join("?" for _ in skus)
    with store.read() as tx:
        rows = tx.query(
            f"SELECT sku, name, price, currency, max_per_order FROM products WHERE sku IN ({marks}) "
            "AND deleted_at IS NULL AND active = 1", skus,
        )  # fmt: skip
    return {r["sku"]: r for r in rows}


def limit_of(product: dict[str, Any], available: int, max_qty: int) -> int:
    """The most units of ``product`` one order may take now."""
    cap = product.get("max_per_order")
    return max(0, min(available, max_qty, int(cap) if cap is not None else max_qty))


def available(stock: Any, skus: list[str]) -> dict[str, int]:
    """What can be bought now of each SKU (0 for one without stock)."""
    free = stock.available(skus) if skus else {}
    return {sku: int(free.get(sku, 0)) for sku in skus}


def view(
    store: Store, stock: Any, cart: dict[str, int], *, currency: str, max_qty: int
) -> CartView:
    """The cart at today's prices, each line clamped to what can be bought now; lines
    gone or sold out are dropped and named in ``changes``."""
    skus = sorted(cart)
    found = products(store, skus)
    free = available(stock, skus)
    result = CartView([], currency)
    for sku in skus:
        product = found.get(sku)
        if product is None:
            result.changes.append(("gone", sku, 0))
            continue
        limit = limit_of(product, free[sku], max_qty)
        qty = min(int(cart[sku]), limit)
        if qty <= 0:
            result.changes.append(("sold_out", str(product["name"]), 0))
            continue
        if qty < int(cart[sku]):
            result.changes.append(("reduced", str(product["name"]), qty))
        result.lines.append(CartLine(sku, str(product["name"]), int(product["price"]), qty, limit))
    return result


def put(cart: dict[str, int], sku: str, qty: int, limit: int) -> int:
    """Set the line of ``sku`` to ``qty`` clamped to ``limit`` (0 removes it); the
    quantity kept."""
    kept = max(0, min(qty, limit))
    if kept:
        cart[sku] = kept
    else:
        cart.pop(sku, None)
    return kept
