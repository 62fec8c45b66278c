"""An order's totals: its lines, the fee lines plugins add, and shipping.

The ``cart_totals`` filter chain sees ``{"subtotal", "shipping", "fees", "total",
"currency", ...}``. A callback may set ``shipping`` and add fee lines (a payment fee,
gift wrapping, a discount as a negative amount); the core keeps every line an earlier
callback added, whatever a later one returns, and computes ``total`` itself, once per
step, from the subtotal, shipping and the fee lines: a ``total`` a callback returns is
not used. Keys the core does not know pass on to the next callback untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecshop.errors import BadRequest, InternalError
from ecshop.schema import MAX_NAME, MAX_PRICE

log = logging.getLogger("ecshop.totals")
HOOK = "cart_totals"
FEE_KEYS = frozenset({"name", "amount", "taxable"})


class NegativeTotal(BadRequest):
    """The discounts of an order are more than its value: a total is never below zero."""

    code = "negative_total"


def fee(name: str, amount: int, *, taxable: bool = False) -> dict[str, Any]:
    """A fee line: a positive ``amount`` (minor units) is a charge, a negative one a discount."""
    return {"name": name, "amount": amount, "taxable": taxable}


def add_fee(totals: Mapping[str, Any], name: str, amount: int, *,
            taxable: bool = False) -> dict[str, Any]:  # fmt: skip
    """``totals`` with one more fee line, for a ``cart_totals`` callback to return.

    Example::

        def gift_wrap(totals, cart):
            return add_fee(totals, "Gift wrapping", 300, taxable=True)
    """
    return {**totals, "fees": [*totals.get("fees", []), fee(name, amount, taxable=taxable)]}


@dataclass(frozen=True)
class Totals:
    """What an order costs: ``total = subtotal + shipping + sum of the fee amounts``."""

    subtotal: int
    shipping: int
    fees: list[dict[str, Any]]
    total: int
    extra: dict[str, Any] = field(default_factory=dict)


def _garbage(plugin: str, what: str) -> InternalError:
    return InternalError(f"{HOOK} of plugin {plugin!r}: {what}", hook=HOOK, plugin=plugin)


def _fee_line(item: Any, plugin: str) -> dict[str, Any]:
    """A checked copy of a fee line a callback added."""
    keys = set(item) if isinstance(item, Mapping) else set()
    if not {"name", "amount"} <= keys <= FEE_KEYS:
        raise _garbage(plugin, f"a fee line must be {{name, amount[, taxable]}}, got {item!r:.100}")
    name, amount, taxable = item["name"], item["amount"], item.get("taxable", False)
    if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_NAME:
        raise _garbage(plugin, f"a fee line's name must be 1 to {MAX_NAME} characters")
    if type(amount) is not int or abs(amount) > MAX_PRICE:
        raise _garbage(plugin, f"fee {name!r}: amount must be an integer in minor units")
    if type(taxable) is not bool:
        raise _garbage(plugin, f"fee {name!r}: taxable must be true or false")
    return fee(name.strip(), amount, taxable=taxable)


def _added(before: list[dict[str, Any]], returned: Any, plugin: str) -> list[dict[str, Any]]:
    """The fee lines in ``returned`` that were not in ``before`` (counted as a multiset)."""
    if not isinstance(returned, list):
        raise _garbage(plugin, "fees must be a list of fee lines")
    left = list(before)
    added = []
    for item in returned:
        if item in left:
            left.remove(item)
        else:
            added.append(_fee_line(item, plugin))
    return added


def _shipping(value: Any, plugin: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_PRICE:
        raise _garbage(plugin, "shipping must be a non-negative integer in minor units")
    return value


def total_of(subtotal: int, shipping: int, fees: list[dict[str, Any]]) -> int:
    """The one formula of an order's total."""
    return subtotal + shipping + sum(int(f["amount"]) for f in fees)


def keep_step(before: dict[str, Any], returned: Any, plugin: str) -> dict[str, Any]:
    """One ``cart_totals`` callback's result, as the next one sees it: earlier fee lines
    kept, the subtotal and currency the core's, the total recomputed."""
    if not isinstance(returned, Mapping):
        raise _garbage(plugin, f"returned {type(returned).__name__}, not the totals")
    fees = [*before["fees"], *_added(before["fees"], returned.get("fees", before["fees"]), plugin)]
    shipping = _shipping(returned.get("shipping", before["shipping"]), plugin)
    value = {**returned, "subtotal": before["subtotal"], "currency": before["currency"],
             "shipping": shipping, "fees": fees}  # fmt: skip
    value["total"] = total_of(before["subtotal"], shipping, fees)
    given = returned.get("total", before["total"])
    if type(given) is not int:
        raise _garbage(plugin, "total must be an integer (the shop computes it)")
    if given not in (before["total"], value["total"]):
        log.warning("%s of plugin %s set total to %r; the shop computes the total from the "
                    "lines, shipping and fee lines (add a fee line instead)", HOOK, plugin, given)  # fmt: skip
    return value


def compute(hooks: Any, cart: dict[str, Any], subtotal: int, currency: str) -> Totals:
    """The totals of ``cart`` after every ``cart_totals`` callback.

    Raises:
        InternalError: a callback returned something that is not totals (500).
        NegativeTotal: the discounts are more than the order's value (400).
    """
    start = {"subtotal": subtotal, "shipping": 0, "fees": [], "total": subtotal,
             "currency": currency}  # fmt: skip
    value = hooks.apply_filters(HOOK, start, cart, step=keep_step)
    total = total_of(subtotal, value["shipping"], value["fees"])
    if total < 0:
        discounts = sum(f["amount"] for f in value["fees"] if f["amount"] < 0)
        raise NegativeTotal(
            f"the discounts on this order ({discounts}) are more than its value "
            f"({total - discounts}): an order's total cannot be below zero",
            total=total, field="fees",
        )  # fmt: skip
    extra = {k: v for k, v in value.items() if k not in start}
    return Totals(subtotal, value["shipping"], list(value["fees"]), total, extra)
