"""Money: integer minor units of an ISO 4217 currency, and their major-unit form.

The shop keeps every amount as an integer of the currency's minor unit (yen for JPY,
cents for USD, fils for KWD). :func:`to_major` and :func:`to_minor` convert by the
currency's exponent, the number of digits after the decimal point; a gateway whose
provider takes ``"12.50"`` uses them, and the shop formats amounts for people with
:func:`format_money`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ecshop.errors import ValidationError

#: ISO 4217 exponents of the codes whose minor unit is not the cent. Every other code
#: has two digits after the decimal point (:data:`DEFAULT_EXPONENT`).
EXPONENTS: dict[str, int] = {
    # no minor unit
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
    # thousandths
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # ten-thousandths
    "CLF": 4, "UYW": 4,
}  # fmt: skip
DEFAULT_EXPONENT = 2


def exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency`` (JPY 0, USD 2, KWD 3)."""
    return EXPONENTS.get(currency.upper(), DEFAULT_EXPONENT)


def to_major(amount: int, currency: str) -> Decimal:
    """``amount`` minor units as a decimal of major units: ``to_major(1250, "USD")`` is
    ``Decimal("12.50")``, ``to_major(1250, "JPY")`` is ``Decimal("1250")``."""
    return Decimal(int(amount)).scaleb(-exponent(currency))


def to_minor(value: Decimal | str | int, currency: str) -> int:
    """Major units (``"12.50"``, ``Decimal("12.5")``, ``12``) as integer minor units.

    Raises:
        ValidationError: ``value`` is not a finite number, or it is more precise than
            the currency's minor unit (``"12.345"`` USD, ``"1.5"`` JPY); nothing is
            rounded away.
    """
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError(f"{value!r} is not an amount of money", currency=currency) from None
    if not number.is_finite():
        raise ValidationError(f"{value!r} is not an amount of money", currency=currency)
    minor = number.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise ValidationError(
            f"{value} {currency} is more precise than its smallest unit "
            f"({exponent(currency)} decimal places)", currency=currency,
        )  # fmt: skip
    return int(minor)


def format_money(amount: int, currency: str) -> str:
    """``amount`` minor units for people: ``"1,250 JPY"``, ``"12.50 USD"``.

    The same text as ``f"{to_major(amount, currency):,f} {currency}"``, in integer
    arithmetic: pages show a price per product, and a Decimal per price was most of it.
    """
    minor = int(amount)
    digits = exponent(currency)
    if not digits:
        return f"{minor:,} {currency}"
    whole, part = divmod(-minor if minor < 0 else minor, 10**digits)
    return f"{'-' if minor < 0 else ''}{whole:,}.{part:0{digits}d} {currency}"
