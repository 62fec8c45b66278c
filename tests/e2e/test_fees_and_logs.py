"""Fee lines end to end (checkout answer, order status, admin order, return page) and a
plugin's log line in the server's log under the request's id, through gunicorn."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SETUPS
from tests.e2e.test_checkout_flow import wait_for

FEES_PLUGIN = """
import logging

from ecshop.totals import add_fee

NAME = "feeplugin"
VERSION = "1.0"
log = logging.getLogger("ecshop.plugins.feeplugin")


def fees(totals, cart):
    log.info("fees for %s", cart["customer"]["email"])
    totals = add_fee(totals, "Gift <wrap>", 300, taxable=True)
    discount = 100_000 if cart["customer"].get("name") == "greedy" else 200
    return add_fee(totals, "Member discount", -discount)


def wipe(totals, cart):
    return {**totals, "fees": [], "total": 0}  # neither wipes the fees nor sets the total


def register(host):
    host.add_filter("cart_totals", fees, 20)
    host.add_filter("cart_totals", wipe, 30)
"""
FEES = [
    {"name": "Gift <wrap>", "amount": 300, "taxable": True},
    {"name": "Member discount", "amount": -200, "taxable": False},
]


def fee_stack(make_stack, tmp_path, setup, **env):
    folder = tmp_path / "fee-plugins"
    folder.mkdir(exist_ok=True)
    (folder / "feeplugin.py").write_text(FEES_PLUGIN)
    stack = make_stack(setup, ECSHOP_PLUGINS_DIR=str(folder), **env)
    stack.add_product("TEA", 1200, 5)
    return stack


@pytest.mark.parametrize("setup", SETUPS)
def test_fee_lines_are_charged_stored_and_shown_everywhere(make_stack, tmp_path, setup):
    stack = fee_stack(make_stack, tmp_path, setup)
    resp = stack.checkout([("TEA", 2)])
    assert resp.status_code == 201, resp.text
    placed = resp.json()
    assert placed["fees"] == FEES
    assert placed["total"] == 2400 + placed["shipping"] + 300 - 200 and placed["shipping"] > 0
    number = placed["number"]
    status = stack.http.get(f"{stack.shop.url}/api/v1/orders/{number}",
                            headers={"X-Order-Token": placed["access_token"]})  # fmt: skip
    assert status.json()["fees"] == FEES and status.json()["total"] == placed["total"]
    assert stack.order(number)["fees"] == FEES
    assert stack.orders()[0]["fees"] == FEES
    # the gateway is asked for the total with the fee lines in it
    assert stack.gateway.settle(placed["payment"]["redirect_url"], "pay") == 303
    assert wait_for(lambda: stack.order(number)["status"] == "paid")
    page = stack.http.get(f"{stack.shop.url}/payments/sandbox/return",
                          params={"order": number, "token": placed["access_token"]})  # fmt: skip
    assert 'data-status="paid"' in page.text
    assert '<tr class="fee" data-amount="300"><th scope="row">Gift &lt;wrap&gt;</th>' in page.text
    assert 'data-amount="-200"><th scope="row">Member discount</th>' in page.text
    assert f'id="order-total" data-amount="{placed["total"]}"' in page.text


def test_a_discount_above_the_order_value_is_refused_and_holds_nothing(make_stack, tmp_path):
    stack = fee_stack(make_stack, tmp_path, "embedded")
    body = {"lines": [{"sku": "TEA", "qty": 1}], "gateway": "sandbox",
            "customer": {"email": "a@example.com", "name": "greedy"}}  # fmt: skip
    resp = stack.http.post(f"{stack.shop.url}/api/v1/checkout", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "negative_total" and "below zero" in error["message"]
    assert stack.orders() == []
    levels = stack.levels()["TEA"]
    assert (levels["available"], levels["held"]) == (5, 0)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_plugin_log_line_carries_the_request_id_in_the_server_log(make_stack, tmp_path, fmt):
    stack = fee_stack(make_stack, tmp_path, "embedded", ECSHOP_LOG_FORMAT=fmt)
    resp = stack.checkout([("TEA", 1)])
    assert resp.status_code == 201, resp.text
    rid = resp.headers["X-Request-Id"]
    wanted = "fees for buyer@example.com"
    lines = wait_for(lambda: [ln for ln in stack.shop.log_tail().splitlines() if wanted in ln])
    assert len(lines) == 1, stack.shop.log_tail()
    if fmt == "json":
        item = json.loads(lines[0])
        assert (item["level"], item["logger"], item["request_id"]) == (
            "INFO", "ecshop.plugins.feeplugin", rid)  # fmt: skip
    else:
        assert f"[INFO] ecshop.plugins.feeplugin [{rid}] {wanted}" in lines[0]
