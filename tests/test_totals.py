"""Totals: fee lines plugins add are kept, the core computes the total once, a total
never goes below zero, and fee lines are stored with the order."""

from __future__ import annotations

import inspect

import pytest

from ecshop import catalog
from ecshop.app import build_shop
from ecshop.builtins import shipping_fee
from ecshop.config import load_config
from ecshop.errors import InternalError
from ecshop.hooks import HookRegistry
from ecshop.orders import fees_of
from ecshop.store import open_store
from ecshop.totals import NegativeTotal, add_fee, compute

CART = {"lines": [], "customer": {"email": "a@example.com"}, "gateway": "cod"}


def totals_with(*callbacks, subtotal=1000):
    hooks = HookRegistry()
    for i, callback in enumerate(callbacks):
        takes = len(inspect.signature(callback).parameters)
        hooks.add_filter("cart_totals", callback, 10 + i, takes, plugin=f"p{i}")
    return compute(hooks, CART, subtotal, "JPY")


def test_fee_lines_add_up_and_a_later_filter_cannot_wipe_them():
    def wrap(totals, cart):
        return add_fee(totals, "Gift wrapping", 300, taxable=True)

    def cod_fee(totals, cart):
        return {**totals, "fees": [{"name": "COD fee", "amount": 330}]}  # replaces the list

    def wiper(totals, cart):
        return {**totals, "fees": []}

    result = totals_with(wrap, cod_fee, wiper)
    assert result.fees == [
        {"name": "Gift wrapping", "amount": 300, "taxable": True},
        {"name": "COD fee", "amount": 330, "taxable": False},
    ]
    assert result.total == 1000 + 300 + 330


def test_the_core_computes_the_total_and_ignores_one_a_filter_sets():
    def shipping(totals):
        return {**totals, "shipping": 500, "total": 1}

    seen = []

    def later(totals, cart):
        seen.append(totals["total"])
        return add_fee(totals, "Fee", 100)

    result = totals_with(shipping, later)
    assert seen == [1500]  # each filter sees the running total the core computed
    assert (result.subtotal, result.shipping, result.total) == (1000, 500, 1600)


def test_extra_keys_pass_through_the_chain():
    def coupon(totals):
        return {**totals, "coupon": "SPRING"}

    seen = []

    def reader(totals):
        seen.append(totals.get("coupon"))
        return totals

    result = totals_with(coupon, reader)
    assert seen == ["SPRING"] and result.extra == {"coupon": "SPRING"}


def test_a_discount_is_a_negative_fee_but_the_total_never_goes_below_zero():
    def discount(amount):
        return lambda totals: add_fee(totals, "Discount", -amount)

    assert totals_with(discount(400)).total == 600
    assert totals_with(discount(1000)).total == 0
    with pytest.raises(NegativeTotal) as info:
        totals_with(discount(1001))
    assert info.value.status == 400 and "below zero" in info.value.message


@pytest.mark.parametrize(
    "returned",
    [
        None,
        {"total": "lots"},
        {"shipping": -1},
        {"shipping": "500"},
        {"fees": "none"},
        {"fees": [{"name": "x"}]},
        {"fees": [{"name": "", "amount": 1}]},
        {"fees": [{"name": "x", "amount": 1.5}]},
        {"fees": [{"name": "x", "amount": 1, "taxable": "yes"}]},
        {"fees": [{"name": "x", "amount": 1, "tax": 1}]},
    ],
)
def test_garbage_from_a_filter_is_an_internal_error_naming_the_plugin(returned):
    with pytest.raises(InternalError, match="p0"):
        totals_with(lambda totals: returned if returned is None else {**totals, **returned})


def test_the_built_in_shipping_fee_sets_shipping_only():
    hooks = HookRegistry()
    hooks.add_filter("cart_totals", shipping_fee.shipping_filter(500, 5000))
    hooks.add_filter("cart_totals", lambda t: add_fee(t, "Fee", 200), 20, accepted_args=1)
    small = compute(hooks, CART, 1000, "JPY")
    assert (small.shipping, small.total) == (500, 1000 + 500 + 200)
    assert compute(hooks, CART, 5000, "JPY").shipping == 0


FEE_PLUGIN = """
from ecshop.totals import add_fee

NAME = "fees"


def fees(totals, cart):
    totals = add_fee(totals, "COD fee", 330, taxable=True)
    return add_fee(totals, "Member discount", -100)


def register(host):
    host.add_filter("cart_totals", fees, 30)
"""


def test_fee_lines_are_stored_with_the_order_and_replayed(db_url, tmp_path):
    open_store(db_url).migrate()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "fees.py").write_text(FEE_PLUGIN)
    shop = build_shop(load_config({"ECSHOP_DATABASE_URL": db_url,
                                   "ECSHOP_PLUGINS_DIR": str(tmp_path / "plugins")}))  # fmt: skip
    try:
        catalog.create_product(shop.store, shop.stock, {"sku": "TEA", "name": "Tea",
                               "price": 1000, "on_hand": 5}, currency="JPY", actor="test")  # fmt: skip
        body = {"lines": [{"sku": "TEA", "qty": 2}], "customer": {"email": "a@example.com"},
                "gateway": "cod"}  # fmt: skip
        placed = shop.checkout.place(body, gateways=shop.gateways, idempotency_key="k1")
        order = placed.order
        assert order["total"] == 2000 + 500 + 330 - 100
        with shop.store.read() as tx:
            stored = fees_of(tx, order["number"])
        assert (
            stored
            == placed.fees
            == [
                {"name": "COD fee", "amount": 330, "taxable": True},
                {"name": "Member discount", "amount": -100, "taxable": False},
            ]
        )
        again = shop.checkout.place(body, gateways=shop.gateways, idempotency_key="k1")
        assert not again.created and again.fees == stored and again.order["total"] == order["total"]
    finally:
        shop.close()
