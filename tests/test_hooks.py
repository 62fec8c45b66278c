from __future__ import annotations

import pytest

from ecshop.config import load_config
from ecshop.hooks import (
    ACTIONS,
    FILTERS,
    FilterError,
    HookRegistry,
    HookUsageError,
    PluginValidationError,
)
from ecshop.plugins import load_plugins
from ecshop.totals import compute


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
    with pytest.raises(PluginValidationError, match=r"2 argument.*accepted_args"):
        hooks.add_filter("cart_totals", lambda totals: totals, plugin="p")
    with pytest.raises(PluginValidationError):
        hooks.add_action("order_paid", lambda: None, plugin="p")
    with pytest.raises(PluginValidationError, match="must accept 1 argument"):
        hooks.add_filter("cart_totals", lambda totals, cart: totals, accepted_args=1, plugin="p")


def test_accepted_args_passes_only_the_first_arguments():
    hooks = HookRegistry()
    seen = []
    hooks.add_action("order_status_changed", lambda: seen.append("none"), accepted_args=0)
    hooks.add_action("order_status_changed", lambda old: seen.append(old), accepted_args=1)
    hooks.add_action("order_status_changed", lambda *a: seen.append(a), accepted_args=2)
    hooks.add_action("order_status_changed", lambda o, n, order: seen.append(order))
    hooks.do_action("order_status_changed", "paid", "shipped", {"number": "N1"})
    assert seen == ["none", "paid", ("paid", "shipped"), {"number": "N1"}]
    hooks.add_filter("cart_totals", lambda totals: {**totals, "one": True}, accepted_args=1)
    assert hooks.apply_filters("cart_totals", {}, {"lines": []}) == {"one": True}


@pytest.mark.parametrize("accepted", [-1, 3, "1", 1.0])
def test_accepted_args_out_of_range_is_refused(accepted):
    hooks = HookRegistry()
    with pytest.raises(PluginValidationError, match="accepted_args"):
        hooks.add_filter("cart_totals", lambda *a: a[0], accepted_args=accepted, plugin="p")
    with pytest.raises(PluginValidationError, match="accepted_args"):
        hooks.add_filter("product_view", lambda *a: a[0], accepted_args=0, plugin="p")


def test_firing_a_hook_with_the_wrong_arguments_is_an_error():
    hooks = HookRegistry()
    with pytest.raises(HookUsageError, match="takes 1 argument"):
        hooks.do_action("order_paid")
    with pytest.raises(HookUsageError, match="unknown"):
        hooks.apply_filters("nope", 1)


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
    totals = compute(host.hooks, {}, 1000, "JPY")
    assert totals.shipping > 0 and totals.total == 1000 + totals.shipping
    assert compute(host.hooks, {}, 99999, "JPY").shipping == 0


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


SYNC_USER = """
NAME = "a_user"
seen = []


def register(host):
    host.add_action("zz_sync_synced", lambda order, count: seen.append((order, count)))
    host.add_filter("zz_sync_label", lambda label: label + "!", accepted_args=1)
"""
SYNC_DECLARER = """
NAME = "zz_sync"


def register(host):
    host.declare_action("zz_sync_synced", ("order", "count"))
    host.declare_filter("zz_sync_label", ("order",))
    host.add_action("order_paid", lambda order: host.do_action("zz_sync_synced", order, 2))
"""


def test_a_plugin_uses_hooks_a_plugin_loaded_after_it_declares(tmp_path):
    (tmp_path / "a_user.py").write_text(SYNC_USER)
    (tmp_path / "zz_sync.py").write_text(SYNC_DECLARER)
    host = load_plugins(load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path)}))
    status = {p.name: p for p in host.plugins}
    assert status["a_user"].status == status["zz_sync"].status == "enabled"
    assert status["zz_sync"].declared == ["zz_sync_synced", "zz_sync_label"]
    host.hooks.do_action("order_paid", "N1")
    import sys

    assert sys.modules["ecshop_plugin_a_user"].seen == [("N1", 2)]
    assert host.apply_filters("zz_sync_label", "x", {"number": "N1"}) == "x!"
    assert host.hooks.declared_by["zz_sync_synced"] == "zz_sync"


def test_a_hook_no_plugin_declares_fails_its_user_at_the_end_of_loading(tmp_path):
    (tmp_path / "a_user.py").write_text(SYNC_USER)
    host = load_plugins(load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path)}))
    [user] = [p for p in host.plugins if p.name == "a_user"]
    assert user.status == "failed" and "unknown action 'zz_sync_synced'" in user.error
    assert not host.hooks.has_filter("zz_sync_label")  # nothing of a failed plugin stays
    (tmp_path / "zz_sync.py").write_text(SYNC_DECLARER + "    raise RuntimeError('broken')\n")
    host = load_plugins(load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path)}))
    status = {p.name: p for p in host.plugins}
    assert status["zz_sync"].status == "failed" and status["a_user"].status == "failed"
    assert not host.hooks.has_action("order_paid") or all(
        e.plugin != "zz_sync" for e in host.hooks._hooks["order_paid"]
    )
    from ecshop.errors import ConfigError

    with pytest.raises(ConfigError, match="zz_sync"):
        load_plugins(
            load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path), "ECSHOP_PLUGINS_STRICT": "1"})
        )


@pytest.mark.parametrize(
    ("name", "args", "match"),
    [
        ("order_paid", (), "already declared by core"),
        ("Bad-Name", (), "must be 1 to 64"),
        ("fine_name", ("Order",), "arguments"),
        ("fine_name", "order", "arguments"),
    ],
)
def test_bad_declarations_are_refused(name, args, match):
    hooks = HookRegistry()
    with pytest.raises(PluginValidationError, match=match):
        hooks.declare_action(name, args, plugin="p")


def test_a_hook_name_two_plugins_declare_is_refused_naming_the_first():
    hooks = HookRegistry()
    hooks.declare_action("shared_thing", ("order",), plugin="first")
    with pytest.raises(PluginValidationError, match="already declared by first"):
        hooks.declare_filter("shared_thing", (), plugin="second")


NAMED = """
NAME = {name!r}
VERSION = {version!r}


def register(host):
    host.add_filter("product_view", lambda p: {{**p, "by": {version!r}}})
"""


def test_a_duplicate_plugin_name_is_refused_and_the_first_kept(tmp_path):
    (tmp_path / "a_first.py").write_text(NAMED.format(name="twin", version="1"))
    (tmp_path / "b_second.py").write_text(NAMED.format(name="twin", version="2"))
    (tmp_path / "shipping_fee.py").write_text(NAMED.format(name="shipping_fee", version="3"))
    host = load_plugins(load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path)}))
    twins = [p for p in host.plugins if p.origin.endswith(("a_first.py", "b_second.py"))]
    assert [p.status for p in twins] == ["enabled", "failed"]
    assert str(tmp_path / "a_first.py") in twins[1].error
    assert str(tmp_path / "b_second.py") in twins[1].error
    assert host.hooks.apply_filters("product_view", {})["by"] == "1"
    [shadow] = [p for p in host.plugins if p.origin.endswith("shipping_fee.py")]
    assert shadow.status == "failed"
    assert "entry point shipping_fee = ecshop.builtins.shipping_fee" in shadow.error
    assert "folder plugin" in shadow.error
    [builtin] = [p for p in host.plugins if p.name == "shipping_fee" and p.status == "enabled"]
    assert builtin.source == "entry_point"


PAGES = """
NAME = "pages"


def register(host):
    host.add_admin_page("sync-status", "Sync status", lambda request: "<p>ok</p>")
    host.add_admin_page("reports", "Reports", lambda request: "<p>reports</p>")
"""


def test_admin_pages_are_registered_and_listed(tmp_path):
    (tmp_path / "pages.py").write_text(PAGES)
    host = load_plugins(load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path)}))
    assert list(host.admin_pages) == ["sync-status", "reports"]
    page = host.admin_pages["sync-status"]
    assert (page.title, page.plugin, page.callback({})) == ("Sync status", "pages", "<p>ok</p>")
    assert "admin:sync-status" in host.report()
    with pytest.raises(PluginValidationError, match="already registered by pages"):
        host.add_admin_page("reports", "Again", lambda request: "")
    for slug, title, callback in [("Bad Slug", "T", lambda r: ""), ("ok", "", lambda r: ""),
                                  ("ok", "T", lambda: "")]:  # fmt: skip
        with pytest.raises(PluginValidationError):
            host.add_admin_page(slug, title, callback)


def test_a_failed_plugin_leaves_no_admin_page_and_no_hook(tmp_path):
    (tmp_path / "pages.py").write_text(PAGES + "    raise RuntimeError('late failure')\n")
    host = load_plugins(load_config({"ECSHOP_PLUGINS_DIR": str(tmp_path)}))
    assert host.admin_pages == {}
