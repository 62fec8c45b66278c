"""Bulk edits of products: one price for all, prices up or down by a percentage (rounded
half up to a whole minor unit: whole yen), or active / inactive, over a fixed set.

An edit is planned first (:func:`plan`: every product's old and new value), shown to the
admin, and applied only as planned (:func:`apply`): if one of the products changed in
between, none is changed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ecshop import catalog
from ecshop.errors import ValidationError
from ecshop.schema import MAX_PRICE
from ecshop.store import Store

#: each action and the product field it changes
ACTIONS = {"price_set": "price", "price_percent": "price", "activate": "active",
           "deactivate": "active"}  # fmt: skip
#: the most products one bulk edit may touch
MAX_PRODUCTS = 500
MIN_PERCENT, MAX_PERCENT = Decimal(-99), Decimal(1000)
_PERCENT = re.compile(r"[+-]?[0-9]{1,4}(?:\.[0-9]{1,2})?")


def parse_value(action: str, text: str) -> int | Decimal | bool:
    """The value an action takes from the form: a price (whole minor units), a
    percentage (``-10``, ``+5``, ``7.5``), or none for active / inactive.

    Raises:
        ValidationError: an unknown action (``field="action"``) or a bad value
            (``field="value"``).
    """
    if action not in ACTIONS:
        raise ValidationError("choose what to change", field="action")
    if action in ("activate", "deactivate"):
        return action == "activate"
    text = text.strip().replace(",", "").removesuffix("%").strip()
    if action == "price_set":
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_PRICE:
            raise ValidationError("the price must be a whole number of 0 or more", field="value")
        return int(text)
    if not _PERCENT.fullmatch(text) or not MIN_PERCENT <= Decimal(text) <= MAX_PERCENT:
        raise ValidationError(
            f"the percentage must be a number from {MIN_PERCENT} to {MAX_PERCENT}", field="value"
        )
    return Decimal(text)


def new_price(old: int, percent: Decimal) -> int:
    """``old`` moved by ``percent``, rounded half up to a whole minor unit."""
    moved = Decimal(old) * (100 + percent) / 100
    return min(int(moved.quantize(Decimal(1), rounding=ROUND_HALF_UP)), MAX_PRICE)


def plan(
    rows: Iterable[Mapping[str, Any]], action: str, value: int | Decimal | bool
) -> tuple[list[dict[str, Any]], int]:
    """What the edit does to each product: ``sku``, ``name``, ``field``, ``old`` and
    ``new``, for the products it changes; and how many it leaves as they are.

    Raises:
        ValidationError: an archived product is among ``rows``, or more than
            :data:`MAX_PRODUCTS` would change.
    """
    field = ACTIONS[action]
    lines: list[dict[str, Any]] = []
    same = 0
    for row in rows:
        if row.get("archived"):
            raise ValidationError(f"{row['sku']} is archived and cannot be changed", field="sku")
        old = catalog.render(row)[field]
        new = new_price(int(old), Decimal(value)) if action == "price_percent" else value
        if new == old:
            same += 1
            continue
        lines.append({"sku": row["sku"], "name": row["name"], "field": field, "old": old,
                      "new": new})  # fmt: skip
    if len(lines) > MAX_PRODUCTS:
        raise ValidationError(
            f"this would change {len(lines)} products; one bulk edit changes at most "
            f"{MAX_PRODUCTS}: narrow the search", field="scope",
        )  # fmt: skip
    return lines, same


def apply(
    store: Store, lines: Iterable[Mapping[str, Any]], *, currency: str,
    tax_classes: Collection[str] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Apply a plan: every product changes from its ``old`` to its ``new`` value, or,
    when one no longer has its ``old`` value, none does.

    Raises:
        Conflict: a product changed since the plan (``changed`` lists them).
    """
    changes = {line["sku"]: {line["field"]: line["new"]} for line in lines}
    expected = {line["sku"]: {line["field"]: line["old"]} for line in lines}
    return catalog.update_many(store, changes, expected=expected, currency=currency,
                               tax_classes=tax_classes)  # fmt: skip
