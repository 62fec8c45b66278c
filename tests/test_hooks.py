from __future__ import annotations

import pytest

from ecshop.config import load_config
from ecshop.hooks import ACTIONS, FILTERS, FilterError, HookRegistry, PluginValidationError
from ecshop.plugins import load_plugins


def test_filters_run_by_priority_and_equal_priorities_in_order_added():
    hooks = HookRegistry()
    hooks.add_filter("product_view", lambda v: [*v, "b10"], 10)
    hooks.add_filter("product_view", lambda v: [*v, "a5"], 5)
    hooks.add_filter("product_view", lambda v: [*v, "c10"], 10)
    hooks.add_filter("product_view", lambda v: [*v, "d20"], 20)
    assert hooks.apply_filters("product_view", []) == ["a5", "b10", "c10", "d20"]


def test_filters_chain_the_value_and_pass_arguments():
    hooks = HookRegistry()
    hooks.add_filter("cart_totals", lambda t, cart: {**t, "total": t["total"] + len(cart["lines"])})
    hooks.add_filter("cart_totals", lambda t, cart: {**t, "total": t["total"] * 2})
    assert hooks.apply_filters("cart_totals", {"total": 10}, {"lines": [1, 2]})["total"] == 24


def test_remove_filter():
    hooks = HookRegistry()

    def double(v):
        return v * 2

    hooks.add_filter("product_view", double)
    assert hooks.remove_filter("product_view", double)
    assert hooks.apply_filters("product_view", 3) == 3


def test_a_raising_action_does_not_stop_the_others_and_is_counted():
    hooks = HookRegistry()
    seen = []

    def boom(order):
        raise RuntimeError("broken plugin")

    hooks.add_action("order_paid", lambda o: seen.append(("first", o)), 1)
    hooks.add_action("order_paid", boom, 5, plugin="bad")
    hooks.add_action("order_paid", lambda o: seen.append(("last", o)), 9)
    hooks.do_action("order_paid", "N1")
    assert seen == [("first", "N1"), ("last", "N1")]
    assert hooks.action_errors[("bad", "order_paid")] == 1


def test_a_raising_filter_fails_loudly_naming_the_plugin():
    hooks = HookRegistry()
    hooks.add_filter("product_view", lambda v: 1 / 0, plugin="divider")
    with pytest.raises(FilterError, match="divider"):
        hooks.apply_filters("product_view", {})


@pytest.mark.parametrize("name", ["order_payed", "cart_total", ""])
def test_unknown_hook_is_an_error_naming_the_plugin(name):
    hooks = HookRegistry()
    with pytest.raises(PluginValidationError) as info:
        hooks.add_action(name, lambda o: None, plugin="typo-plugin")
    assert info.value.plugin == "typo-plugin"
    with pytest.raises(PluginValidationError):
        hooks.add_filter(name, lambda v: v, plugin="typo-plugin")


def test_wrong_signature_is_an_error_at_registration():
    hooks = HookRegistry()
    with pytest.raises(PluginValidationError, match="2 argument"):
        hooks.add_filter("cart_totals", lambda totals: totals, plugin="p")
    with pytest.raises(PluginValidationError):
        hooks.add_action("order_paid", lambda: None, plugin="p")


def test_every_declared_hook_is_documented():
    guide = open("docs/plugins.md", encoding="utf-8").read()
    for name in [*FILTERS, *ACTIONS]:
        assert f"`{name}`" in guide, name


def test_plugins_folder_loads_good_plugins_and_reports_a_broken_one(tmp_path):
    (tmp_path / "good.py").write_text(
        "NAME = 'good'\nVERSION = '2.1'\n"
        "from ecshop.payments.base import Gateway, PaymentStart\n"
        "class G(Gateway):\n    name = 'goodpay'\n"
        "    def start_payment(self, order, *, notify_url, return_url):\n"
        "        return PaymentStart(redirect_url='http://x/' + order.number)\n"
        "def register(host):\n    host.add_gateway(G)\n"
        "    host.add_filter('product_view', lambda p: {**p, 'good': True})\n"
    )
    (tmp_path / "broken.py").write_text("import does_not_exist\n")
    (tmp_path / "typo.py").write_text(
        "def register(host):\n    host.add_action('order_payed', print)\n"
    )
    host = load_plugins(load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path)}))
    status = {p.name: p for p in host.plugins}
    assert status["good"].status == "enabled" and status["good"].version == "2.1"
    assert status["broken"].status == "failed" and "does_not_exist" in status["broken"].error
    assert status["typo"].status == "failed" and "order_payed" in status["typo"].error
    assert "goodpay" in host.gateways
    assert host.hooks.apply_filters("product_view", {})["good"] is True
    report = host.report()
    assert "broken" in report and "failed" in report and "goodpay" in report
    disabled = load_plugins(
        load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path), "ECSHOP_PLUGINS_DISABLED": "good"})
    )
    assert "goodpay" not in disabled.gateways
    from ecshop.errors import ConfigError

    with pytest.raises(ConfigError, match="broken"):
        load_plugins(
            load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path), "ECSHOP_PLUGINS_STRICT": "1"})
        )


def test_shipped_plugins_load():
    host = load_plugins(load_config({
        "ECSHOP_PLUGINS_DIR": "plugins", "ECSHOP_GATEWAY_SANDBOX_URL": "http://127.0.0.1:9",
        "ECSHOP_GATEWAY_SANDBOX_SECRET": "s" * 32, "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": "Bank 1",
    }))  # fmt: skip
    assert {"sandbox", "cod", "bank_transfer"} <= set(host.gateways)
    assert all(p.status == "enabled" for p in host.plugins)
    totals = host.hooks.apply_filters(
        "cart_totals", {"subtotal": 1000, "shipping": 0, "total": 1000}, {}
    )
    assert totals["shipping"] > 0 and totals["total"] == 1000 + totals["shipping"]
    free = host.hooks.apply_filters(
        "cart_totals", {"subtotal": 99999, "shipping": 0, "total": 99999}, {}
    )
    assert free["shipping"] == 0


def test_a_plugin_can_remove_a_hook_another_plugin_added(tmp_path):
    (tmp_path / "a_fee.py").write_text(
        "NAME = 'a_fee'\n"
        "def fee(totals, cart):\n    return {**totals, 'shipping': 700}\n"
        "def register(host):\n    host.add_filter('cart_totals', fee, 20)\n"
    )
    (tmp_path / "b_nofee.py").write_text(
        "NAME = 'b_nofee'\nimport sys\n"
        "def register(host):\n"
        "    fee = sys.modules['ecshop_plugin_a_fee'].fee\n"
        "    assert not host.remove_filter('cart_totals', fee, 10)  # wrong priority\n"
        "    assert host.remove_filter('cart_totals', fee, 20)\n"
    )
    totals = {"subtotal": 1000, "shipping": 0, "total": 1000}
    only_folder = {"ECSHOP_PLUGINS_DIR": str(tmp_path), "ECSHOP_PLUGINS_ENABLED": "a_fee,b_nofee"}
    host = load_plugins(load_config(only_folder))
    assert [p.status for p in host.plugins if p.source == "folder"] == ["enabled", "enabled"]
    assert host.hooks.apply_filters("cart_totals", totals, {})["shipping"] == 0
    only_a = load_plugins(load_config({**only_folder, "ECSHOP_PLUGINS_DISABLED": "b_nofee"}))
    assert only_a.hooks.apply_filters("cart_totals", totals, {})["shipping"] == 700
