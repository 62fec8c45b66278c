"""The catalog: products with integer prices in the shop's currency.

Products are never hard-deleted: orders keep pointing at them, so ``delete_product``
archives (``deleted_at``) and the storefront stops showing it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from ecshop.errors import Conflict, NotFound, ValidationError
from ecshop.store import DuplicateKey, Store, Tx

SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_NAME = 255
MAX_DESCRIPTION = 20_000
MAX_PRICE = 10**12
COLUMNS = "sku, name, description, price, currency, active, created_at, updated_at"


def _check_sku(sku: Any) -> str:
    if not isinstance(sku, str) or not SKU_RE.match(sku):
        raise ValidationError(
            "sku must be 1 to 64 characters: letters, digits, '.', '_' or '-'", field="sku"
        )
    return sku


def _check_fields(data: Mapping[str, Any], currency: str, *, partial: bool) -> dict[str, Any]:
    allowed = {"sku", "name", "description", "price", "currency", "active", "on_hand"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError(f"unknown field: {unknown[0]}", field=unknown[0])
    out: dict[str, Any] = {}
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            raise ValidationError(
                f"name must be a non-empty string of at most {MAX_NAME} characters", field="name"
            )
        out["name"] = name
    if "description" in data:
        desc = data["description"]
        if not isinstance(desc, str) or len(desc) > MAX_DESCRIPTION:
            raise ValidationError(
                f"description must be a string of at most {MAX_DESCRIPTION} characters",
                field="description",
            )
        out["description"] = desc
    if "price" in data or not partial:
        price = data.get("price")
        if type(price) is not int or not 0 <= price <= MAX_PRICE:
            raise ValidationError(
                "price must be a non-negative integer in minor units", field="price"
            )
        out["price"] = price
    if "currency" in data:
        if data["currency"] != currency:
            raise ValidationError(
                f"currency must be the shop's currency, {currency}", field="currency"
            )
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise ValidationError("active must be true or false", field="active")
        out["active"] = data["active"]
    if "on_hand" in data:
        if partial:
            raise ValidationError(
                "change stock through /api/v1/admin/stock, not the product", field="on_hand"
            )
        on_hand = data["on_hand"]
        if type(on_hand) is not int or on_hand < 0:
            raise ValidationError("on_hand must be a non-negative integer", field="on_hand")
        out["on_hand"] = on_hand
    return out


def render(row: Mapping[str, Any], available: int | None = None) -> dict[str, Any]:
    """A product row as the API shows it."""
    body = {
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "price": int(row["price"]),
        "currency": row["currency"],
        "active": bool(row["active"]),
    }
    if available is not None:
        body["available"] = available
    return body


def _live(tx: Tx, sku: str) -> dict[str, Any]:
    row = tx.one(f"SELECT {COLUMNS} FROM products WHERE sku = ? AND deleted_at IS NULL", (sku,))
    if row is None:
        raise NotFound(f"no product with sku {sku!r}", sku=sku)
    return row


def get_product(store: Store, sku: str, *, include_inactive: bool = False) -> dict[str, Any]:
    """One product row; inactive ones only when asked (admin)."""
    with store.read() as tx:
        row = _live(tx, sku)
    if not row["active"] and not include_inactive:
        raise NotFound(f"no product with sku {sku!r}", sku=sku)
    return row


def list_products(
    store: Store, *, limit: int, after: str | None, include_inactive: bool = False
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of products in SKU order and the cursor of the next page."""
    where = ["deleted_at IS NULL"]
    params: list[Any] = []
    if not include_inactive:
        where.append("active = 1")
    if after:
        where.append("sku > ?")
        params.append(after)
    params.append(limit + 1)
    with store.read() as tx:
        rows = tx.query(
            f"SELECT {COLUMNS} FROM products WHERE {' AND '.join(where)} ORDER BY sku LIMIT ?",
            params,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["sku"] if more else None)


def create_product(
    store: Store, stock: Any, data: Mapping[str, Any], *, currency: str, actor: str
) -> dict[str, Any]:
    """Create a product and its stock row in one transaction.

    Raises:
        ValidationError: a field is missing or malformed.
        Conflict: the SKU exists (archived SKUs are not reused).
    """
    sku = _check_sku(data.get("sku"))
    fields = _check_fields(data, currency, partial=False)
    now = time.time()
    try:
        with store.tx() as tx:
            tx.execute(
                f"INSERT INTO products ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sku, fields["name"], fields.get("description", ""), fields["price"], currency,
                 1 if fields.get("active", True) else 0, now, now),
            )  # fmt: skip
            stock.add_sku(sku, fields.get("on_hand", 0), actor=actor)
    except DuplicateKey as exc:
        raise Conflict(f"a product with sku {sku!r} already exists", sku=sku) from exc
    return get_product(store, sku, include_inactive=True)


def update_product(
    store: Store, sku: str, data: Mapping[str, Any], *, currency: str
) -> dict[str, Any]:
    """Change the given fields of a product (``sku`` itself cannot change)."""
    if "sku" in data and data["sku"] != sku:
        raise ValidationError("sku cannot be changed", field="sku")
    fields = _check_fields({k: v for k, v in data.items() if k != "sku"}, currency, partial=True)
    if not fields:
        raise ValidationError("nothing to change: give name, description, price or active")
    if "active" in fields:
        fields["active"] = 1 if fields["active"] else 0
    assignments = ", ".join(f"{name} = ?" for name in fields)
    with store.tx() as tx:
        _live(tx, sku)
        tx.execute(
            f"UPDATE products SET {assignments}, updated_at = ? WHERE sku = ?",
            (*fields.values(), time.time(), sku),
        )
    return get_product(store, sku, include_inactive=True)


def delete_product(store: Store, sku: str) -> None:
    """Archive a product: hidden from the catalog and from checkout, kept for orders."""
    with store.tx() as tx:
        _live(tx, sku)
        now = time.time()
        tx.execute(
            "UPDATE products SET deleted_at = ?, active = 0, updated_at = ? WHERE sku = ?",
            (now, now, sku),
        )
