# cython: language_level=3
"""Compiled stock core: the hot path of the stock engine.

Mirrors ``ecshop/_stockcore_py.py`` exactly (same API, same errors) and takes its
constants from it.
"""

from ecshop._stockcore_py import MAX_LINES, MAX_QTY, MAX_SKU_LEN
from ecshop.errors import ValidationError

COMPILED = True


cpdef list canonicalize_lines(object lines):
    cdef dict merged = {}
    cdef object sku
    cdef object qty
    cdef long total
    for sku, qty in lines:
        if type(sku) is not str or not 0 < len(<str>sku) <= MAX_SKU_LEN:
            raise ValidationError(f"sku must be a string of 1 to {MAX_SKU_LEN} characters")
        if type(qty) is not int or qty <= 0:
            raise ValidationError(f"qty of {sku} must be a positive integer", sku=sku)
        if qty > MAX_QTY:
            raise ValidationError(f"qty of {sku} is over the limit of {MAX_QTY}", sku=sku)
        total = merged.get(sku, 0) + <long>qty
        if total > MAX_QTY:
            raise ValidationError(f"qty of {sku} is over the limit of {MAX_QTY}", sku=sku)
        merged[sku] = total
    if not merged:
        raise ValidationError("the cart has no lines")
    if len(merged) > MAX_LINES:
        raise ValidationError(f"the cart has more than {MAX_LINES} lines")
    return sorted(merged.items())
