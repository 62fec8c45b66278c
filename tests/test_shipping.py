"""Shipping by zone: the customer's prefecture picks the fee, the free-over threshold
applies everywhere, an unknown or missing prefecture pays the flat fee; the checkout
body's address is checked field by field."""

from __future__ import annotations

import pytest

from ecshop.builtins import shipping_fee
from ecshop.checkout import parse_cart
from ecshop.config import load_config
from ecshop.errors import ValidationError
from ecshop.hooks import HookRegistry
from ecshop.plugins import load_plugins
from ecshop.prefectures import PREFECTURES, code_of
from ecshop.totals import compute

ADDRESS = {"postal_code": "060-0001", "prefecture": "北海道", "city": "札幌市中央区",
           "line1": "北1条西2丁目", "phone": "011-123-4567"}  # fmt: skip


def shipping(subtotal, customer, zones="hokkaido:1200,沖縄県:1500,13:400"):
    hooks = HookRegistry()
    hooks.add_filter("cart_totals", shipping_fee.shipping_filter(
        500, 5000, shipping_fee.parse_zones(zones)))  # fmt: skip
    cart = {"lines": [], "customer": customer, "gateway": "cod"}
    return compute(hooks, cart, subtotal, "JPY").shipping


def test_the_prefecture_picks_the_zone_by_name_kanji_or_code():
    assert len(PREFECTURES) == 47 and code_of("okinawa") == "47" == code_of("沖縄県")
    assert shipping(1000, {"address": ADDRESS}) == 1200
    assert shipping(1000, {"address": {**ADDRESS, "prefecture": "47"}}) == 1500
    assert shipping(1000, {"address": {**ADDRESS, "prefecture": "Tokyo"}}) == 400
    assert shipping(1000, {"address": {**ADDRESS, "prefecture": "大阪府"}}) == 500  # no zone
    assert shipping(1000, {"email": "a@example.com"}) == 500  # no address
    assert shipping(5000, {"address": ADDRESS}) == 0  # free over, whatever the zone


@pytest.mark.parametrize("zones", ["atlantis:100", "hokkaido", "hokkaido:-1", "01:1,hokkaido:2"])
def test_a_malformed_zones_setting_keeps_the_plugin_off_naming_the_variable(zones):
    with pytest.raises(ValueError):
        shipping_fee.parse_zones(zones)
    host = load_plugins(load_config({"ECSHOP_PLUGIN_SHIPPING_FEE_ZONES": zones,
                                     "ECSHOP_PLUGINS_DIR": "/nonexistent"}))  # fmt: skip
    [line] = [p for p in host.problems() if "shipping_fee" in p]
    assert "ECSHOP_PLUGIN_SHIPPING_FEE_ZONES" in line


def body(**address):
    return {"lines": [{"sku": "A", "qty": 1}], "gateway": "cod",
            "customer": {"email": "a@example.com", "address": {**ADDRESS, **address}}}  # fmt: skip


def test_a_japanese_address_is_accepted():
    assert parse_cart(body()).customer["address"]["prefecture"] == "北海道"
    assert parse_cart(body(prefecture="01", line2="")).customer["address"]["prefecture"] == "01"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("postal_code", "0600001", "postal_code must be a postal code as NNN-NNNN"),
    ("prefecture", "Atlantis", "prefecture must be one of the 47 prefectures"),
    ("prefecture", "48", "prefecture must be one of the 47 prefectures"),
    ("city", "", "city must be a non-empty string"),
    ("phone", "call me", "phone must be a phone number"),
    ("fax", "1", "fax"),
])  # fmt: skip
def test_a_bad_address_is_a_400_naming_the_field(field, value, message):
    with pytest.raises(ValidationError, match=message) as info:
        parse_cart(body(**{field: value}))
    assert info.value.status == 400
