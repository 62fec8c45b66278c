"""The plugin host: declared settings of plugins and gateways, checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecshop.config import load_config
from ecshop.plugins import load_plugins
from ecshop.totals import compute

GIFT = """
from ecshop.settings import Setting

NAME = "gift_wrap"
VERSION = "1.0"
SETTINGS = (
    Setting("price", int, default=300, minimum=0, help="price of wrapping"),
    Setting("api_key", required=True, secret=True, help="the wrapping service's key"),
)
SEEN = {}


def register(host):
    SEEN.update(host.settings)
    price = host.settings["price"]

    def wrap(totals, cart):
        return {**totals, "total": totals["total"] + price}

    host.add_filter("cart_totals", wrap)
"""
TYPED_GATEWAY = """
from ecshop.payments.base import Gateway, PaymentStart, Setting

NAME = "typedpay"


class TypedPay(Gateway):
    name = "typedpay"
    SETTINGS = (
        Setting("url", "url", required=True),
        Setting("retries", int, default=3, minimum=0),
        Setting("test_mode", bool, default=False),
    )

    def start_payment(self, order, *, notify_url, return_url):
        return PaymentStart(redirect_url=self.settings["url"])


class OldPay(Gateway):
    name = "old_pay"
    required_settings = ("url",)
    secret_settings = ("secret",)


def register(host):
    host.add_gateway(TypedPay)
    host.add_gateway(OldPay)
"""
KEY = "k" * 32
TOTALS = {"subtotal": 1000, "shipping": 0, "total": 1000}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "gift_wrap.py").write_text(GIFT)
    (tmp_path / "typedpay.py").write_text(TYPED_GATEWAY)
    return tmp_path


def host_for(folder: Path, **env: str):
    return load_plugins(load_config({"ECSHOP_PLUGINS_DIR": str(folder),
                                     "ECSHOP_PLUGINS_ENABLED": "gift_wrap,typedpay", **env}))  # fmt: skip


def info(host, name):
    return next(p for p in host.plugins if p.name == name)


def test_a_plugin_gets_its_settings_converted_in_register(folder):
    host = host_for(
        folder, ECSHOP_PLUGIN_GIFT_WRAP_PRICE="250", ECSHOP_PLUGIN_GIFT_WRAP_API_KEY=KEY
    )
    assert info(host, "gift_wrap").status == "enabled"
    assert host.hooks.apply_filters("cart_totals", TOTALS, {})["total"] == 1250


def test_a_plugin_with_a_bad_or_missing_setting_needs_settings_and_is_not_registered(folder):
    host = host_for(folder, ECSHOP_PLUGIN_GIFT_WRAP_PRICE="abc")
    gift = info(host, "gift_wrap")
    assert gift.status == "needs settings"
    assert gift.problems == [
        "ECSHOP_PLUGIN_GIFT_WRAP_PRICE='abc': must be a whole number",
        "ECSHOP_PLUGIN_GIFT_WRAP_API_KEY is not set (a secret of at least 32 bytes)",
    ]
    assert not host.hooks.has_filter("cart_totals")
    assert "plugin gift_wrap: ECSHOP_PLUGIN_GIFT_WRAP_PRICE='abc': must be a whole number" in (
        host.problems())  # fmt: skip
    assert host.plugin_lines()[0].startswith("plugin gift_wrap: needs settings: ")


def test_plugin_settings_come_from_the_toml_table_too(folder, tmp_path):
    toml = tmp_path / "shop.toml"
    toml.write_text(f'[plugin.gift_wrap]\nprice = 120\napi_key = "{KEY}"\n', encoding="utf-8")
    host = host_for(folder, ECSHOP_CONFIG=str(toml))
    assert host.hooks.apply_filters("cart_totals", TOTALS, {})["total"] == 1120


def test_the_report_lists_settings_and_masks_secrets(folder):
    secret = "the-wrapping-key-" + "x" * 20
    host = host_for(folder, ECSHOP_PLUGIN_GIFT_WRAP_API_KEY=secret,
                    ECSHOP_GATEWAY_TYPEDPAY_URL="http://pay.example", ECSHOP_GATEWAY_OLD_PAY_SECRET="s" * 32)  # fmt: skip
    report = host.report()
    assert secret not in report and "s" * 32 not in report
    assert ("    ECSHOP_PLUGIN_GIFT_WRAP_API_KEY  str  required  secret  set ***  — the wrapping "
            "service's key") in report.splitlines()  # fmt: skip
    assert (
        "    ECSHOP_PLUGIN_GIFT_WRAP_PRICE  int  unset  default 300  — price of wrapping" in report
    )
    assert "    ECSHOP_GATEWAY_TYPEDPAY_URL  url  required  set 'http://pay.example'" in report
    assert "    ECSHOP_GATEWAY_OLD_PAY_SECRET  str  required  secret  set ***" in report


def test_typed_gateway_settings_are_converted_and_checked(folder):
    host = host_for(folder, ECSHOP_GATEWAY_TYPEDPAY_URL="http://pay.example",
                    ECSHOP_GATEWAY_TYPEDPAY_RETRIES="5", ECSHOP_GATEWAY_TYPEDPAY_TEST_MODE="on")  # fmt: skip
    gateway = host.gateways["typedpay"]
    assert gateway.settings["retries"] == 5 and gateway.test_mode is True
    assert "gateway typedpay: live (test mode)" in host.gateway_lines()
    bad = host_for(folder, ECSHOP_GATEWAY_TYPEDPAY_URL="pay.example",
                   ECSHOP_GATEWAY_TYPEDPAY_RETRIES="-1")  # fmt: skip
    assert "typedpay" not in bad.gateways
    assert bad.unavailable["typedpay"] == [
        "ECSHOP_GATEWAY_TYPEDPAY_URL='pay.example': must be an http:// or https:// URL",
        "ECSHOP_GATEWAY_TYPEDPAY_RETRIES='-1': must be at least 0",
    ]


def test_older_required_and_secret_settings_still_keep_a_gateway_off(folder):
    host = host_for(
        folder, ECSHOP_GATEWAY_OLD_PAY_URL="http://x", ECSHOP_GATEWAY_OLD_PAY_SECRET="short"
    )
    assert host.unavailable["old_pay"] == ["ECSHOP_GATEWAY_OLD_PAY_SECRET is shorter than 32 bytes"]
    assert (
        "gateway old_pay: ECSHOP_GATEWAY_OLD_PAY_SECRET is shorter than 32 bytes" in host.problems()
    )
    live = host_for(
        folder, ECSHOP_GATEWAY_OLD_PAY_URL="http://x", ECSHOP_GATEWAY_OLD_PAY_SECRET="s" * 32
    )
    assert "old_pay" in live.gateways and live.gateways["old_pay"].settings["url"] == "http://x"


def test_the_shipping_fee_is_a_setting():
    def totals(**env: str) -> dict:
        host = load_plugins(load_config({"ECSHOP_PLUGINS_ENABLED": "shipping_fee", **env}))
        return compute(host.hooks, {"customer": {}}, TOTALS["subtotal"], "JPY").__dict__

    assert totals()["shipping"] == 500
    assert totals(ECSHOP_PLUGIN_SHIPPING_FEE_FEE="700")["shipping"] == 700
    assert totals(ECSHOP_PLUGIN_SHIPPING_FEE_FREE_OVER="1000")["shipping"] == 0
    assert totals(ECSHOP_PLUGIN_SHIPPING_FEE_FREE_OVER="1001")["shipping"] == 500
    bad = load_plugins(load_config({"ECSHOP_PLUGINS_ENABLED": "shipping_fee",
                                    "ECSHOP_PLUGIN_SHIPPING_FEE_FEE": "5.5"}))  # fmt: skip
    assert info(bad, "shipping_fee").status == "needs settings"
    assert not bad.hooks.has_filter("cart_totals")


def test_pay_window_is_a_checked_setting_of_offline_methods():
    host = load_plugins(load_config({"ECSHOP_PLUGINS_ENABLED": "offline_payments",
                                     "ECSHOP_GATEWAY_COD_PAY_WINDOW": "0"}))  # fmt: skip
    assert host.unavailable["cod"] == ["ECSHOP_GATEWAY_COD_PAY_WINDOW='0': must be at least 1"]
