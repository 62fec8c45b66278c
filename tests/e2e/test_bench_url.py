"""``ecshop bench --url`` against a running shop (gunicorn, the sandbox gateway): it
measures through the shop's test gateway on a product of its own, and leaves every
other product, order and stock level as it found them."""

from __future__ import annotations

import json
import subprocess
import sys

from ecshop.config import child_environ

TINY = ("--clients", "2", "--seconds", "1", "--sweep", "1,2", "--step-seconds", "1", "--json")


def bench_url(stack, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ecshop.cli", "bench", "--url", stack.shop.url,
                           "--admin-token", stack.admin_token, *TINY, *args],
                          env=child_environ({}), capture_output=True, text=True, timeout=900,
                          cwd=cwd)  # fmt: skip


def catalog(stack):
    """Every product the admin API shows (archived ones are not shown)."""
    resp = stack.http.get(f"{stack.shop.url}/api/v1/admin/products", headers=stack.admin,
                          params={"limit": 500})  # fmt: skip
    assert resp.status_code == 200, resp.text
    return {p["sku"]: p for p in resp.json()["items"]}


def test_bench_url_leaves_the_shops_stock_and_other_products_as_it_found_them(make_stack, tmp_path):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 50)
    stack.add_product("CUP", 800, 7)
    # a buyer's order holding stock and a paid one, before the bench
    assert stack.checkout([("TEA", 2)]).status_code == 201
    stack.settled([("CUP", 1)], "pay", "paid")
    levels, products = stack.levels(), catalog(stack)
    orders = {o["number"]: o for o in stack.orders()}

    done = bench_url(stack, "--report", str(tmp_path / "report"))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    cleanup = figures["cleanup"]
    sku = cleanup["sku"]
    assert sku.startswith("BENCH-") and sku not in products

    # every other product and its stock: untouched
    after = stack.levels()
    assert {s: v for s, v in after.items() if s != sku} == levels
    assert catalog(stack) == products
    # the bench's own product: its orders gone, no stock, archived
    assert sku not in catalog(stack)
    assert stack.http.get(f"{stack.shop.url}/api/v1/products/{sku}").status_code == 404
    if sku in after:
        assert (after[sku]["held"], after[sku]["sold_unshipped"], after[sku]["on_hand"]) == (
            0,
            0,
            0,
        )
    assert cleanup["levels_after"] == cleanup["levels_before"] and cleanup["problems"] == []
    # the buyers' orders are as they were; each of the bench's is cancelled, paid ones refunded
    now = {o["number"]: o for o in stack.orders()}
    assert {n: now[n] for n in orders} == orders
    ours = [o for n, o in now.items() if n not in orders]
    assert len(ours) == cleanup["orders"] == cleanup["cancelled"] > 0
    assert all([ln["sku"] for ln in o["lines"]] == [sku] for o in ours)
    unpaid = [o for o in ours if not o["paid_amount"]]
    assert unpaid and all(o["status"] == "cancelled" for o in unpaid)
    refunded = [o for o in ours if o["paid_amount"]]
    assert len(refunded) == figures["paid"]["paid"] > 0
    # the refund's own notification may land after the cancellation: refunded then
    assert all(o["status"] in ("cancelled", "refunded") for o in refunded)
    assert all(o["refunded_amount"] == o["paid_amount"] for o in refunded)

    # what it measured, and what it could not
    assert figures["mode"] == "running shop"
    assert figures["checkouts"]["count"] > 0 and figures["checkouts"]["errors"] == 0
    assert all(r["errors"] == 0 for r in figures["pages"]["routes"].values())
    assert [s["clients"] for s in figures["sweep"]["steps"]] == [1, 2]
    assert figures["flash_sale"] == figures["ceilings"] == {} and figures["transports"] == {}
    rec = figures["recommendation"]
    assert rec["workers"]["value"] is None and "its own" in rec["workers"]["why"]
    assert rec["capacity"]["clients"] in (1, 2)
    assert (tmp_path / "report" / "report.md").exists()
    assert stack.admin_token not in (tmp_path / "report" / "report.json").read_text()
    assert (
        f"clean-up: cancelled {cleanup['orders']} of {cleanup['orders']} bench orders"
        in done.stdout
    )


def test_bench_url_refuses_a_shop_without_a_test_gateway_and_touches_nothing(make_stack, tmp_path):
    stack = make_stack("embedded", ECSHOP_PLUGINS_ENABLED="offline_payments")
    stack.add_product("TEA", 1200, 50)
    levels, products = stack.levels(), catalog(stack)
    (tmp_path / "here").mkdir()
    done = bench_url(stack, cwd=tmp_path / "here")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"ecshop: {stack.shop.url} has no live test-mode gateway: bench --url places orders, "
        "which would take real payments"
    )
    assert (stack.levels(), catalog(stack), stack.orders()) == (levels, products, [])
    assert list((tmp_path / "here").iterdir()) == []  # no report of a run that never was
