"""One client cannot hold a shop's stock: offline orders hold only for their pay window,
orders are capped, and checkouts per client are rate limited. Through gunicorn."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from tests.e2e.test_checkout_flow import wait_for


def place(stack, lines, gateway="sandbox", **headers):
    body = {"lines": [{"sku": s, "qty": q} for s, q in lines],
            "customer": {"email": "buyer@example.com"}, "gateway": gateway}  # fmt: skip
    return stack.http.post(f"{stack.shop.url}/api/v1/checkout", json=body, headers=headers)


def test_an_offline_order_holds_for_its_pay_window_then_gives_the_stock_back(make_stack):
    stack = make_stack("embedded", ECSHOP_GATEWAY_BANK_TRANSFER_PAY_WINDOW="1",
                       ECSHOP_RECONCILE_GRACE="0")  # fmt: skip
    stack.add_product("ONE", 5000, 1)
    order = place(stack, [("ONE", 1)], gateway="bank_transfer").json()
    assert order["status"] == "accepted"
    assert (
        order["payment"]["pay_by"] and "Example Bank 123-4567" in order["payment"]["instructions"]
    )
    levels = stack.levels()["ONE"]
    assert (levels["held"], levels["sold_unshipped"]) == (1, 0)  # held, not sold
    assert place(stack, [("ONE", 1)]).status_code == 409
    time.sleep(1.5)  # the pay window ends unpaid
    assert stack.cli("reconcile", "--once").returncode == 0
    assert stack.order(order["number"])["status"] == "cancelled"
    assert stack.levels()["ONE"]["available"] == 1
    late = stack.http.post(f"{stack.shop.url}/api/v1/admin/orders/{order['number']}/mark-paid",
                           headers=stack.admin, json={})  # fmt: skip
    assert late.status_code == 409


def test_a_customer_cancels_an_unpaid_offline_order(make_stack):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 2)
    order = place(stack, [("TEA", 2)], gateway="cod").json()
    assert order["status"] == "accepted" and stack.levels()["TEA"]["available"] == 0
    done = stack.http.post(f"{stack.shop.url}/api/v1/orders/{order['number']}/cancel",
                           params={"token": order["access_token"]}, json={})  # fmt: skip
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    assert stack.levels()["TEA"]["available"] == 2


def test_orders_are_capped_per_line_per_order_and_per_product(make_stack):
    stack = make_stack("embedded", ECSHOP_MAX_QTY_PER_LINE="3", ECSHOP_MAX_LINES_PER_ORDER="2")
    for sku in ("A", "B", "C"):
        stack.add_product(sku, 100, 100)
    too_many = place(stack, [("A", 4)])
    assert too_many.status_code == 400 and "at most 3 units of A" in too_many.text
    too_wide = place(stack, [("A", 1), ("B", 1), ("C", 1)])
    assert too_wide.status_code == 400 and "at most 2 lines" in too_wide.text
    capped = stack.http.put(f"{stack.shop.url}/api/v1/admin/products/B", headers=stack.admin,
                            json={"max_per_order": 2})  # fmt: skip
    assert capped.status_code == 200 and capped.json()["max_per_order"] == 2
    over = place(stack, [("A", 1), ("B", 3)])
    assert over.status_code == 400 and "at most 2 units of B" in over.text
    assert place(stack, [("A", 3), ("B", 2)]).status_code == 201
    levels = stack.levels()
    assert (levels["A"]["held"], levels["B"]["held"], levels["C"]["held"]) == (3, 2, 0)


def test_checkouts_per_client_are_rate_limited_and_payments_never_are(make_stack):
    stack = make_stack("embedded", {"drop": 1.0}, workers=1, ECSHOP_CHECKOUT_RATE_LIMIT="5/600",
                       ECSHOP_TRUSTED_PROXIES="")  # fmt: skip
    stack.add_product("TEA", 100, 100)
    answers = [place(stack, [("TEA", 1)]) for _ in range(8)]
    assert [a.status_code for a in answers] == [201] * 5 + [429] * 3
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    # a spoofed X-Forwarded-For changes nothing without a trusted proxy
    assert place(stack, [("TEA", 1)], **{"X-Forwarded-For": "203.0.113.9"}).status_code == 429
    # the customers who got in still pay, return and are settled; the admin still works
    for order in (a.json() for a in answers[:5]):
        assert stack.gateway.settle(order["payment"]["redirect_url"], "pay") == 303
        return_url = parse_qs(urlsplit(order["payment"]["redirect_url"]).query)["return_url"][0]
        assert stack.http.get(return_url).status_code == 200
    assert stack.cli("reconcile", "--once", env={"ECSHOP_RECONCILE_GRACE": "0"}).returncode == 0
    assert len(stack.orders("paid")) == 5
    assert stack.metrics().get("ecshop_rate_limited_requests_total", 0) >= 4


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(make_stack):
    stack = make_stack("embedded", workers=1, ECSHOP_CHECKOUT_RATE_LIMIT="2/600",
                       ECSHOP_TRUSTED_PROXIES="127.0.0.1")  # fmt: skip
    stack.add_product("TEA", 100, 100)
    alice = {"X-Forwarded-For": "198.51.100.7"}
    bob = {"X-Forwarded-For": "203.0.113.9, 198.51.100.8"}  # the proxy appended bob's address
    assert [place(stack, [("TEA", 1)], **alice).status_code for _ in range(3)] == [201, 201, 429]
    assert [place(stack, [("TEA", 1)], **bob).status_code for _ in range(3)] == [201, 201, 429]
    assert wait_for(lambda: stack.levels()["TEA"]["held"] == 4)
