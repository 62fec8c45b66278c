"""Consumption tax: contained in tax-inclusive prices, computed once per rate per order,
stored with the order in the checkout's transaction, and previewed without writing."""

from __future__ import annotations

import pytest

from ecshop import catalog
from ecshop.app import build_shop
from ecshop.config import load_config
from ecshop.errors import ConfigError, ValidationError
from ecshop.orders import taxes_of
from ecshop.store import open_store
from ecshop.tax import TaxPolicy, UnknownTaxClass, contained_tax, parse_rates, tax_lines


def test_the_contained_tax_rounds_down_by_default_and_as_configured():
    assert contained_tax(1100, 10) == 100
    assert contained_tax(1080, 8) == 80
    assert contained_tax(1000, 10) == 90  # 90.90...
    assert contained_tax(1000, 10, "round") == 91
    assert contained_tax(1000, 8, "round") == 74  # 74.07...
    assert contained_tax(1000, 8, "ceil") == 75
    assert contained_tax(0, 10) == 0


def test_tax_is_computed_once_per_rate_not_once_per_line():
    lines = [{"line_total": 105, "tax_class": "standard"}] * 2
    # per line: floor(105 * 10 / 110) = 9, twice = 18; per order: floor(210 * 10 / 110) = 19
    assert tax_lines(TaxPolicy(), lines) == [
        {"tax_class": "standard", "rate": 10, "amount": 210, "tax": 19}
    ]


def test_shipping_and_taxable_fees_count_at_the_standard_rate_other_fees_not():
    lines = [
        {"line_total": 2160, "tax_class": "reduced"},
        {"line_total": 1100, "tax_class": "standard"},
    ]
    fees = [{"name": "Wrap", "amount": 330, "taxable": True},
            {"name": "COD", "amount": 300, "taxable": False},
            {"name": "Coupon", "amount": -110, "taxable": True}]  # fmt: skip
    assert tax_lines(TaxPolicy(), lines, shipping=550, fees=fees) == [
        {"tax_class": "standard", "rate": 10, "amount": 1100 + 550 + 330 - 110, "tax": 170},
        {"tax_class": "reduced", "rate": 8, "amount": 2160, "tax": 160},
    ]


def test_a_cart_of_reduced_goods_shipped_free_has_one_tax_line():
    lines = [{"line_total": 1080, "tax_class": "reduced"}]
    assert tax_lines(TaxPolicy(), lines) == [
        {"tax_class": "reduced", "rate": 8, "amount": 1080, "tax": 80}
    ]
    with pytest.raises(UnknownTaxClass):
        tax_lines(TaxPolicy({"standard": 10}), lines)


@pytest.mark.parametrize("raw", ["reduced:8", "standard:ten", "standard:10,reduced:10",
                                 "standard:10,standard:8", "standard:101", "standard"])  # fmt: skip
def test_malformed_rates_stop_start_up_naming_the_setting(raw):
    with pytest.raises(ValueError):
        parse_rates(raw)
    with pytest.raises(ConfigError, match="ECSHOP_TAX_RATES"):
        load_config({"ECSHOP_TAX_RATES": raw})


def test_rates_and_rounding_are_configurable():
    config = load_config({"ECSHOP_TAX_RATES": "standard:10, reduced:8, zero:0",
                          "ECSHOP_TAX_ROUNDING": "round"})  # fmt: skip
    assert dict(config.tax_rates) == {"standard": 10, "reduced": 8, "zero": 0}
    assert config.tax_rounding == "round"
    with pytest.raises(ConfigError, match="ECSHOP_TAX_ROUNDING"):
        load_config({"ECSHOP_TAX_ROUNDING": "bankers"})


@pytest.fixture
def shop(db_url, tmp_path):
    open_store(db_url).migrate()
    shop = build_shop(load_config({"ECSHOP_DATABASE_URL": db_url,
                                   "ECSHOP_PLUGINS_DIR": str(tmp_path / "none"),
                                   "ECSHOP_SECRET_KEY": "k" * 32}))  # fmt: skip
    for sku, price, tax_class in (("RICE", 2160, "reduced"), ("MUG", 1650, "standard")):
        catalog.create_product(shop.store, shop.stock, {"sku": sku, "name": sku, "price": price,
                               "on_hand": 9, "tax_class": tax_class}, currency="JPY",
                               actor="test")  # fmt: skip
    yield shop
    shop.close()


BODY = {"lines": [{"sku": "RICE", "qty": 1}, {"sku": "MUG", "qty": 1}],
        "customer": {"email": "a@example.com"}, "gateway": "cod"}  # fmt: skip
# subtotal 3810 < 5000: the built-in shipping fee of 500 is in the standard base
EXPECTED = [{"tax_class": "standard", "rate": 10, "amount": 2150, "tax": 195},
            {"tax_class": "reduced", "rate": 8, "amount": 2160, "tax": 160}]  # fmt: skip


def test_checkout_stores_the_tax_lines_with_the_order_and_replays_them(shop):
    placed = shop.checkout.place(BODY, gateways=shop.gateways, idempotency_key="k1")
    assert placed.taxes == EXPECTED
    assert [ln["tax_class"] for ln in placed.lines] == ["standard", "reduced"]
    with shop.store.read() as tx:
        assert taxes_of(tx, placed.order["number"]) == EXPECTED
    again = shop.checkout.place(BODY, gateways=shop.gateways, idempotency_key="k1")
    assert not again.created and again.taxes == EXPECTED


def test_the_preview_computes_the_same_tax_lines_and_writes_nothing(shop):
    def counts():
        with shop.store.read() as tx:
            return [tx.scalar(f"SELECT COUNT(*) FROM {t}") for t in ("orders", "order_taxes")]

    quote = shop.checkout.quote([("RICE", 1), ("MUG", 1)], {"email": "a@example.com"}, "cod")
    assert quote.taxes == EXPECTED
    assert (quote.totals.subtotal, quote.totals.shipping, quote.totals.total) == (3810, 500, 4310)
    assert counts() == [0, 0]
    assert shop.stock.levels(["RICE"])["RICE"].available == 9
    placed = shop.checkout.place(BODY, gateways=shop.gateways, idempotency_key=None)
    assert placed.taxes == quote.taxes


def test_a_product_takes_only_a_configured_tax_class(shop):
    with pytest.raises(ValidationError, match="tax_class must be one of reduced, standard"):
        catalog.create_product(shop.store, shop.stock, {"sku": "X", "name": "X", "price": 1,
                               "tax_class": "luxury"}, currency="JPY", actor="test")  # fmt: skip
    changed = catalog.update_product(shop.store, "MUG", {"tax_class": "reduced"}, currency="JPY")
    assert catalog.render(changed)["tax_class"] == "reduced"
