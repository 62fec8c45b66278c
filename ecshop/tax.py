"""Consumption tax (消費税) contained in tax-inclusive prices (内税).

Every price the shop shows and charges includes its tax: a product's ``price``, the
shipping fee and the fee lines are what the buyer pays. Each product has a tax class
(``standard`` 10%, ``reduced`` 8% by default; ``ECSHOP_TAX_RATES``). An order records,
per class, the tax-inclusive amount taxed at that rate and the tax it contains,
computed **once per rate per order** (the invoice system's rule: one rounding per rate
on a receipt, never one per line)::

    tax = round_down(amount * rate / (100 + rate))

``ECSHOP_TAX_ROUNDING`` picks the rounding: ``floor`` (切り捨て, the default and what
most Japanese shops do), ``round`` (四捨五入, half up) or ``ceil`` (切り上げ).

Shipping and the fee lines marked ``taxable`` count in the ``standard`` class; fee lines
that are not taxable (a payment fee passed on at cost, say) carry no tax. A taxable
discount (a negative taxable fee line) lowers the standard base; a base is never below
zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecshop.errors import InternalError

STANDARD = "standard"
REDUCED = "reduced"
ROUNDINGS = ("floor", "round", "ceil")
DEFAULT_RATES: dict[str, int] = {STANDARD: 10, REDUCED: 8}


class UnknownTaxClass(InternalError):
    """A product's tax class is not among the configured rates (``ECSHOP_TAX_RATES``)."""

    code = "unknown_tax_class"


@dataclass(frozen=True)
class TaxPolicy:
    """The shop's tax rates (whole percent per class) and its rounding rule."""

    rates: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_RATES))
    rounding: str = "floor"

    def rate_of(self, tax_class: str) -> int:
        """The rate of ``tax_class``.

        Raises:
            UnknownTaxClass: the class has no configured rate.
        """
        try:
            return int(self.rates[tax_class])
        except KeyError:
            raise UnknownTaxClass(
                f"tax class {tax_class!r} has no rate in ECSHOP_TAX_RATES", tax_class=tax_class
            ) from None


def contained_tax(amount: int, rate: int, rounding: str = "floor") -> int:
    """The tax contained in the tax-inclusive ``amount`` at ``rate`` percent.

    Example::

        >>> contained_tax(1100, 10), contained_tax(1080, 8), contained_tax(999, 10)
        (100, 80, 90)
    """
    numerator, denominator = amount * rate, 100 + rate
    if rounding == "ceil":
        return -(-numerator // denominator)
    if rounding == "round":
        return (2 * numerator + denominator) // (2 * denominator)
    return numerator // denominator


def _bases(
    lines: Iterable[Mapping[str, Any]], shipping: int, fees: Iterable[Mapping[str, Any]]
) -> dict[str, int]:
    """The tax-inclusive amount of each class: product lines by their class; shipping
    and taxable fee lines in the standard class."""
    bases: dict[str, int] = {}
    for line in lines:
        tax_class = str(line.get("tax_class") or STANDARD)
        bases[tax_class] = bases.get(tax_class, 0) + int(line["line_total"])
    extra = shipping + sum(int(f["amount"]) for f in fees if f.get("taxable"))
    bases[STANDARD] = bases.get(STANDARD, 0) + extra
    return bases


def tax_lines(
    policy: TaxPolicy,
    lines: Iterable[Mapping[str, Any]],
    shipping: int = 0,
    fees: Iterable[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The order's tax lines, one per class with an amount above zero, highest rate first:
    ``{"tax_class", "rate", "amount", "tax"}`` (``amount`` includes ``tax``).

    Raises:
        UnknownTaxClass: a line's class has no configured rate.
    """
    out = []
    for tax_class, amount in _bases(lines, shipping, fees).items():
        rate = policy.rate_of(tax_class)
        if amount > 0:
            out.append({"tax_class": tax_class, "rate": rate, "amount": amount,
                        "tax": contained_tax(amount, rate, policy.rounding)})  # fmt: skip
    return sorted(out, key=lambda t: (-t["rate"], t["tax_class"]))


def parse_rates(raw: str) -> dict[str, int]:
    """``standard:10,reduced:8`` as ``{"standard": 10, "reduced": 8}``.

    Raises:
        ValueError: a malformed item, a rate outside 0..100, a class named twice, two
            classes at one rate, or no ``standard`` class (shipping is taxed at it).
    """
    rates: dict[str, int] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, value = item.partition(":")
        name = name.strip().lower()
        if not sep or not name.isidentifier() or not value.strip().isdigit():
            raise ValueError(f"{item!r} is not <class>:<whole percent>, e.g. standard:10")
        rate = int(value)
        if rate > 100 or name in rates or rate in rates.values():
            raise ValueError(f"{item!r}: each class once, each at a rate of its own, 0 to 100")
        rates[name] = rate
    if STANDARD not in rates:
        raise ValueError("must name the standard class (shipping is taxed at it)")
    return rates


def render_taxes(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tax lines as the API shows them."""
    return [{"tax_class": str(r["tax_class"]), "rate": int(r["rate"]), "amount": int(r["amount"]),
             "tax": int(r["tax"])} for r in rows]  # fmt: skip
