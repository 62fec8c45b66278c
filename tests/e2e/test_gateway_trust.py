"""What a gateway's word is worth: end to end through gunicorn and the sandbox gateway.

A gateway without a real secret is not live; a notification counts only for an order
of its own gateway and only once per event id; a refund the merchant made at the
gateway is recorded; the admin cannot mark a cancelled order paid.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

from ecshop.config import child_environ
from ecshop.sandbox.protocol import SIGNATURE_HEADER, sign_body
from ecshop.testing.servers import free_port
from tests.e2e.test_checkout_flow import wait_for


def notify(stack: Any, event: dict[str, Any], secret: str | None = None) -> requests.Response:
    body = json.dumps({"created": int(time.time()), "payment_id": "pay_x", **event}).encode()
    header = sign_body(body, secret or stack.gateway.secret)
    return stack.http.post(
        f"{stack.shop.url}/payments/sandbox/notify", data=body,
        headers={SIGNATURE_HEADER: header, "Content-Type": "application/json"}, timeout=30,
    )  # fmt: skip


def checkout_form(stack, sku: str) -> str:
    """The checkout form's page, as a shopper with ``sku`` in the cart sees it."""
    home = stack.http.get(f"{stack.shop.url}/").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', home).group(1)
    added = stack.http.post(f"{stack.shop.url}/cart/add", data={"csrf_token": token, "sku": sku})
    assert added.status_code == 200, added.text  # followed the redirect to the cart
    return str(stack.http.get(f"{stack.shop.url}/checkout").text)


@pytest.mark.parametrize("secret", ["", "s" * 31], ids=["empty", "31-bytes"])
def test_a_gateway_with_a_short_or_empty_secret_is_not_live(make_stack, secret):
    stack = make_stack("embedded", ECSHOP_GATEWAY_SANDBOX_SECRET=secret)
    stack.add_product("TEA", 1000, 5)
    page = checkout_form(stack, "TEA")
    assert 'value="sandbox"' not in page and 'value="cod"' in page
    refused = stack.checkout([("TEA", 1)])
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "gateway_unavailable"
    # a notification signed with the weak key is not even looked at
    forged = notify(stack, {"id": "evt_weak", "type": "payment.succeeded", "order": "X",
                            "amount": 1000, "currency": "JPY"}, secret=secret or "x")  # fmt: skip
    assert forged.status_code == 404
    listed = stack.cli("plugins", env={"ECSHOP_GATEWAY_SANDBOX_SECRET": secret})
    assert "gateway sandbox: needs settings: ECSHOP_GATEWAY_SANDBOX_SECRET" in listed.stdout
    assert secret not in listed.stdout.replace("ECSHOP_GATEWAY_SANDBOX_SECRET", "") or not secret
    assert stack.levels()["TEA"]["available"] == 5


def test_serve_names_every_gateway_at_start_up(tmp_path):
    port = free_port()
    env = child_environ({
        "ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db", "ECSHOP_PLUGINS_DIR": "plugins",
        "ECSHOP_GATEWAY_SANDBOX_URL": "http://127.0.0.1:9", "ECSHOP_GATEWAY_SANDBOX_SECRET": "",
        "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": "Example Bank 123", "ECSHOP_RECONCILE_INTERVAL": "0",
        "ECSHOP_ADMIN_TOKEN": "t" * 32, "ECSHOP_SECRET_KEY": "k" * 32,
        "ECSHOP_PLUGIN_SHIPPING_FEE_FREE_OVER": "lots",
    })  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecshop.cli", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        while len([ln for ln in lines if "gateway " in ln]) < 3:
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    said = "".join(lines)
    assert "gateway sandbox: needs settings: ECSHOP_GATEWAY_SANDBOX_SECRET is not set" in said, said
    assert "gateway bank_transfer: live (offline)" in said
    assert ("ecshop serve: plugin shipping_fee: needs settings: "
            "ECSHOP_PLUGIN_SHIPPING_FEE_FREE_OVER='lots': must be a whole number") in said  # fmt: skip
    assert "gateway cod: live (offline)" in said


def test_a_notification_counts_only_for_an_order_of_its_gateway(make_stack):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 5)
    cod = stack.checkout([("TEA", 1)], gateway="cod").json()
    assert cod["status"] == "accepted"
    # validly signed by the sandbox, but the order is paid on delivery, not at the sandbox
    resp = notify(stack, {"id": "evt_other_gw", "type": "payment.succeeded",
                          "order": cod["number"], "amount": cod["total"], "currency": "JPY"})  # fmt: skip
    assert resp.status_code == 400, resp.text
    assert stack.order(cod["number"])["status"] == "accepted"
    assert "is not paid through sandbox" in resp.json()["error"]["message"]


def test_an_event_id_of_one_order_is_refused_for_another(make_stack):
    stack = make_stack("embedded", {"drop": 1.0})
    stack.add_product("TEA", 1000, 5)
    first = stack.checkout([("TEA", 1)]).json()
    second = stack.checkout([("TEA", 1)]).json()
    event = {"id": "evt_once", "type": "payment.failed", "amount": 1000, "currency": "JPY"}
    assert notify(stack, {**event, "order": first["number"]}).status_code == 200
    assert notify(stack, {**event, "order": first["number"]}).json()["outcome"] == "duplicate"
    replayed = notify(stack, {**event, "order": second["number"]})
    assert replayed.status_code == 400, replayed.text
    assert "already received for another order" in replayed.json()["error"]["message"]
    assert stack.order(second["number"])["status"] == "pending_payment"
    assert (
        "evt_once" in stack.shop.log_tail() and "now presented for order" in stack.shop.log_tail()
    )


def test_a_refund_made_at_the_gateway_is_recorded_on_the_order(make_stack):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 5)
    order = stack.settled([("TEA", 2)], "pay", "paid")
    number = order["number"]
    # the merchant refunds in the gateway's dashboard, not through the shop
    stack.gateway.api("POST", "/v1/refunds", {"order": number, "amount": 500})
    assert wait_for(lambda: stack.order(number)["refunded_amount"] == 500)
    assert stack.order(number)["status"] == "paid"
    total = stack.order(number)["total"]
    stack.gateway.api("POST", "/v1/refunds", {"order": number, "amount": total - 500})
    assert wait_for(lambda: stack.order(number)["status"] == "refunded")
    done = stack.order(number)
    assert done["refunded_amount"] == total
    assert stack.levels()["TEA"]["available"] == 5  # refunded before shipping: restocked
    # the shop's own refund and the gateway's notice of it count once
    other = stack.settled([("TEA", 1)], "pay", "paid")
    resp = stack.http.post(f"{stack.shop.url}/api/v1/admin/orders/{other['number']}/refund",
                           headers=stack.admin, json={"amount": 300})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert wait_for(lambda: refund_delivered(stack, other["number"]))
    after = stack.order(other["number"])
    assert (after["refunded_amount"], after["status"]) == (300, "paid")


def refund_delivered(stack: Any, number: str) -> bool:
    """The gateway delivered its refund.succeeded for ``number`` and the shop took it."""
    page = stack.gateway.api("GET", f"/v1/deliveries?order={number}&limit=100")
    return any(d["type"] == "refund.succeeded" and d["outcome"] == "delivered"
               for d in page.get("items", page))  # fmt: skip


def test_the_admin_cannot_mark_a_cancelled_order_paid(make_stack):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 1)
    order = stack.checkout([("TEA", 1)]).json()
    cancel = stack.http.post(f"{stack.shop.url}/api/v1/orders/{order['number']}/cancel",
                             params={"token": order["access_token"]}, json={})  # fmt: skip
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    rival = stack.checkout([("TEA", 1)])
    assert rival.status_code == 201
    marked = stack.http.post(f"{stack.shop.url}/api/v1/admin/orders/{order['number']}/mark-paid",
                             headers=stack.admin, json={})  # fmt: skip
    assert marked.status_code == 409, marked.text
    assert stack.order(order["number"])["status"] == "cancelled"
    assert stack.levels()["TEA"]["held"] == 1  # the rival's unit, untouched
