"""Minor and major units by ISO 4217 exponent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ecshop.errors import ValidationError
from ecshop.money import exponent, format_money, to_major, to_minor


@pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("USD", 2), ("EUR", 2),
                                                  ("KWD", 3), ("BHD", 3), ("CLF", 4)])  # fmt: skip
def test_exponents_of_common_codes(currency, digits):
    assert exponent(currency) == digits


@pytest.mark.parametrize(("amount", "currency", "major"), [
    (1250, "USD", Decimal("12.50")), (1250, "JPY", Decimal("1250")), (1, "KWD", Decimal("0.001")),
    (0, "USD", Decimal("0.00")),
])  # fmt: skip
def test_to_major_and_back(amount, currency, major):
    assert to_major(amount, currency) == major
    assert str(to_major(amount, currency)) == str(major)
    assert to_minor(major, currency) == amount
    assert to_minor(str(major), currency) == amount


def test_to_minor_takes_whole_and_shorter_amounts():
    assert to_minor("12.5", "USD") == 1250
    assert to_minor(12, "USD") == 1200
    assert to_minor("1.000", "JPY") == 1


@pytest.mark.parametrize(("value", "currency"), [("12.345", "USD"), ("1.5", "JPY"),
                                                 ("0.0001", "KWD")])  # fmt: skip
def test_to_minor_refuses_sub_unit_precision(value, currency):
    with pytest.raises(ValidationError, match="more precise than its smallest unit"):
        to_minor(value, currency)


@pytest.mark.parametrize("value", ["abc", "", "NaN", "Infinity", "1,5"])
def test_to_minor_refuses_what_is_not_an_amount(value):
    with pytest.raises(ValidationError, match="not an amount of money"):
        to_minor(value, "USD")


def test_format_money_for_people():
    assert format_money(123456, "USD") == "1,234.56 USD"
    assert format_money(3000, "JPY") == "3,000 JPY"
    assert format_money(1500, "KWD") == "1.500 KWD"


@pytest.mark.parametrize("currency", ["JPY", "USD", "KWD", "CLF", "usd"])
def test_format_money_is_the_decimal_text(currency):
    amounts = [*range(-2100, 2100, 7), 10**12 + 5, -(10**12) - 5, 999_999_999, -1, 0]
    for amount in amounts:
        assert format_money(amount, currency) == f"{to_major(amount, currency):,f} {currency}"
