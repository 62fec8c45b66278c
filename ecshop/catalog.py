"""The catalog: products with integer, tax-inclusive prices in the shop's currency.

Each product has a tax class (``standard`` by default, ``reduced`` for food and
newspapers in Japan; the classes are ``ECSHOP_TAX_RATES``'s): the rate its price
contains (:mod:`ecshop.tax`).

Products are never hard-deleted: orders keep pointing at them, so ``delete_product``
archives (``deleted_at``) and the storefront stops showing it.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

from ecshop.errors import Conflict, NotFound, ValidationError
from ecshop.schema import (
    COUNT,
    CURRENCY,
    DESCRIPTION,
    FLAG,
    NAME,
    PRICE,
    SKU,
    Schema,
    nullable,
    obj,
    validate,
)
from ecshop.store import DuplicateKey, Store, Tx
from ecshop.tax import DEFAULT_RATES, STANDARD

COLUMNS = (
    "sku, name, description, price, currency, active, created_at, updated_at, max_per_order, "
    "tax_class"
)
#: the most units of one product in one order (None: only the shop-wide cap)
MAX_PER_ORDER: Schema = nullable({"type": "integer", "minimum": 1, "maximum": 1_000_000,
                                  "description": "the most units of this product in one order"})  # fmt: skip
#: A tax class: one of the classes of ``ECSHOP_TAX_RATES`` (checked against them)
TAX_CLASS: Schema = {"type": "string", "pattern": r"^[a-z_][a-z0-9_]{0,31}$",
                     "description": "a tax class such as standard or reduced"}  # fmt: skip
#: What a product may be given: the admin API declares these, the importer checks rows
#: with the same field rules.
EDITABLE: dict[str, Schema] = {"name": NAME, "description": DESCRIPTION, "price": PRICE,
                               "currency": CURRENCY, "active": FLAG,
                               "max_per_order": MAX_PER_ORDER,
                               "tax_class": TAX_CLASS}  # fmt: skip
NEW_PRODUCT = obj({"sku": SKU, "name": NAME, "price": PRICE}, {**EDITABLE, "on_hand": COUNT})
PRODUCT_CHANGE = obj({}, {"sku": SKU, **EDITABLE})


def _check_fields(data: Mapping[str, Any], currency: str, *, partial: bool,
                 tax_classes: Collection[str] | None = None) -> dict[str, Any]:  # fmt: skip
    if partial and "on_hand" in data:
        raise ValidationError(
            "change stock through /api/v1/admin/stock, not the product", field="on_hand"
        )
    validate(dict(data), PRODUCT_CHANGE if partial else NEW_PRODUCT)
    if "name" in data and not data["name"].strip():
        raise ValidationError(f"name must be {NAME['description']}", field="name")
    if "currency" in data and data["currency"] != currency:
        raise ValidationError(f"currency must be the shop's currency, {currency}", field="currency")
    classes = sorted(tax_classes or DEFAULT_RATES)
    if "tax_class" in data and data["tax_class"] not in classes:
        raise ValidationError(f"tax_class must be one of {', '.join(classes)}", field="tax_class",
                              allowed=classes)  # fmt: skip
    return {k: v for k, v in data.items() if k not in ("sku", "currency")}


def render(row: Mapping[str, Any], available: int | None = None) -> dict[str, Any]:
    """A product row as the API shows it."""
    body = {
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "price": int(row["price"]),
        "currency": row["currency"],
        "active": bool(row["active"]),
        "max_per_order": None if row["max_per_order"] is None else int(row["max_per_order"]),
        "tax_class": row["tax_class"],
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
    store: Store, stock: Any, data: Mapping[str, Any], *, currency: str, actor: str,
    tax_classes: Collection[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Create a product and its stock row in one transaction.

    Raises:
        ValidationError: a field is missing or malformed, or ``tax_class`` is not one of
            ``tax_classes`` (default: standard and reduced).
        Conflict: the SKU exists (archived SKUs are not reused).
    """
    fields = _check_fields(data, currency, partial=False, tax_classes=tax_classes)
    sku = str(data["sku"])
    now = time.time()
    try:
        with store.tx() as tx:
            tx.execute(
                f"INSERT INTO products ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sku, fields["name"], fields.get("description", ""), fields["price"], currency,
                 1 if fields.get("active", True) else 0, now, now, fields.get("max_per_order"),
                 fields.get("tax_class", STANDARD)),
            )  # fmt: skip
            stock.add_sku(sku, fields.get("on_hand", 0), actor=actor)
    except DuplicateKey as exc:
        raise Conflict(f"a product with sku {sku!r} already exists", sku=sku) from exc
    return get_product(store, sku, include_inactive=True)


def update_product(
    store: Store, sku: str, data: Mapping[str, Any], *, currency: str,
    tax_classes: Collection[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Change the given fields of a product (``sku`` itself cannot change)."""
    if "sku" in data and data["sku"] != sku:
        raise ValidationError("sku cannot be changed", field="sku")
    fields = _check_fields({k: v for k, v in data.items() if k != "sku"}, currency, partial=True,
                           tax_classes=tax_classes)  # fmt: skip
    if not fields:
        raise ValidationError(
            "nothing to change: give name, description, price, active, max_per_order or tax_class"
        )
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


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching itself anywhere (``%`` and ``_`` escaped)."""
    # NOTE: "!" escapes, not a backslash: MySQL reads a backslash in a literal itself.
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def search_products(
    store: Store, *, query: str, limit: int, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of live products whose name or SKU holds ``query`` (all when empty; case
    does not matter), in SKU order after the cursor ``after``, and the next cursor.

    The primary key orders and pages the rows; the LIKE filters them while the index is
    walked, so a page costs its own rows plus the ones skipped, never a sort of all.
    """
    if not query:
        return list_products(store, limit=limit, after=after)
    # NOTE: LOWER on both sides: MySQL's binary collation compares case-sensitively.
    # SQLite's LIKE ignores ASCII case already and its LOWER() knows no other, so there
    # LOWER() would only add two calls per row walked (half the time of a search).
    params: list[Any] = [_like(query.lower()), _like(query.lower())]
    name, sku = ("name", "sku") if store.dialect == "sqlite" else ("LOWER(name)", "LOWER(sku)")
    where = ("deleted_at IS NULL AND active = 1 AND "
             f"({name} LIKE ? ESCAPE '!' OR {sku} LIKE ? ESCAPE '!')")  # fmt: skip
    if after:
        where += " AND sku > ?"
        params.append(after)
    with store.read() as tx:
        rows = tx.query(
            f"SELECT {COLUMNS} FROM products WHERE {where} ORDER BY sku LIMIT ?",
            [*params, limit + 1],
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["sku"] if more else None)


#: what the admin's product list can be narrowed to
STATES = ("", "active", "inactive", "archived")


def find_products(
    store: Store, *, query: str = "", state: str = "", limit: int, after: str | None = None,
    skus: Collection[str] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """The admin's product list: every product, archived ones too (``archived`` says
    which), whose name or SKU holds ``query``, in ``state`` (``""`` for all), among
    ``skus`` when given, in SKU order after ``after``; and the next cursor."""
    where: list[str] = []
    params: list[Any] = []
    if skus is not None:
        if not skus:
            return [], None
        where.append(f"sku IN ({', '.join('?' for _ in skus)})")
        params += list(skus)
    if query:
        where.append("(LOWER(name) LIKE ? ESCAPE '!' OR LOWER(sku) LIKE ? ESCAPE '!')")
        params += [_like(query.lower()), _like(query.lower())]
    where.append({"": "1 = 1", "active": "deleted_at IS NULL AND active = 1",
                  "inactive": "deleted_at IS NULL AND active = 0",
                  "archived": "deleted_at IS NOT NULL"}[state])  # fmt: skip
    if after:
        where.append("sku > ?")
        params.append(after)
    with store.read() as tx:
        rows = tx.query(
            f"SELECT {COLUMNS}, deleted_at FROM products WHERE {' AND '.join(where)} "
            "ORDER BY sku LIMIT ?",
            [*params, limit + 1],
        )
    more = len(rows) > limit
    found = [{**r, "archived": r["deleted_at"] is not None} for r in rows[:limit]]
    return found, (found[-1]["sku"] if more else None)


def update_many(
    store: Store, changes: Mapping[str, Mapping[str, Any]], *,
    expected: Mapping[str, Mapping[str, Any]], currency: str,
    tax_classes: Collection[str] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Change several products in one transaction, each only if its current values (as
    :func:`render` shows them) are still ``expected[sku]``: all change or none does.

    Returns:
        The changed rows, in SKU order.

    Raises:
        ValidationError: a change is malformed (the same rules as :func:`update_product`).
        Conflict: a product is archived or no longer has its expected values
            (``changed`` lists their SKUs); nothing was written.
    """
    checked = {sku: _check_fields(change, currency, partial=True, tax_classes=tax_classes)
               for sku, change in changes.items()}  # fmt: skip
    changed: list[str] = []
    with store.tx() as tx:
        lock = " FOR UPDATE" if tx.dialect == "mysql" else ""
        for sku in sorted(checked):
            row = tx.one(f"SELECT {COLUMNS} FROM products WHERE sku = ? AND deleted_at IS NULL"
                         + lock, (sku,))  # fmt: skip
            now = render(row) if row else None
            if now is None or any(now[k] != v for k, v in expected.get(sku, {}).items()):
                changed.append(sku)
        if changed:
            raise Conflict(f"{len(changed)} products changed since (first: {changed[0]}); "
                           "nothing was written", changed=changed)  # fmt: skip
        at = time.time()
        for sku in sorted(checked):
            fields = dict(checked[sku])
            if "active" in fields:
                fields["active"] = 1 if fields["active"] else 0
            if not fields:
                continue
            assignments = ", ".join(f"{name} = ?" for name in fields)
            tx.execute(f"UPDATE products SET {assignments}, updated_at = ? WHERE sku = ?",
                       (*fields.values(), at, sku))  # fmt: skip
        rows = [_live(tx, sku) for sku in sorted(checked)]
    return rows
