"""Pure-Python twin of ``ecshop/_stockcore.pyx``: same API, same results.

Used when the compiled module is missing or ``ECSHOP_PUREPYTHON=1`` is set.
"""

from __future__ import annotations

from collections.abc import Iterable

from ecshop.errors import ValidationError

MAX_LINES = 100
MAX_QTY = 10_000
MAX_SKU_LEN = 64
COMPILED = False


def canonicalize_lines(lines: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Merge duplicate SKUs, sort by SKU and check every quantity.

    Raises:
        ValidationError: an empty cart, a bad SKU, a quantity that is not a positive
            integer, or more than ``MAX_LINES`` lines / ``MAX_QTY`` units of a SKU.
    """
    merged: dict[str, int] = {}
    for sku, qty in lines:
        if not isinstance(sku, str) or not 0 < len(sku) <= MAX_SKU_LEN:
            raise ValidationError(f"sku must be a string of 1 to {MAX_SKU_LEN} characters")
        if type(qty) is not int or qty <= 0:
            raise ValidationError(f"qty of {sku} must be a positive integer", sku=sku)
        total = merged.get(sku, 0) + qty
        if total > MAX_QTY:
            raise ValidationError(f"qty of {sku} is over the limit of {MAX_QTY}", sku=sku)
        merged[sku] = total
    if not merged:
        raise ValidationError("the cart has no lines")
    if len(merged) > MAX_LINES:
        raise ValidationError(f"the cart has more than {MAX_LINES} lines")
    return sorted(merged.items())
