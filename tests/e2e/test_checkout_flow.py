"""Checkout end to end: gunicorn + the sandbox gateway process + real stores."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import SETUPS


def wait_for(predicate, timeout: float = 30, interval: float = 0.1):
    """Poll until ``predicate()`` is truthy (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.mark.parametrize("setup", SETUPS)
def test_pay_then_notification_marks_paid_and_sells_stock(make_stack, setup):
    stack = make_stack(setup)
    stack.add_product("TEA", 1200, 5)
    resp = stack.checkout([("TEA", 2)])
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["status"] == "pending_payment" and order["subtotal"] == 2400
    assert order["total"] == 2400 + order["shipping"]
    assert len(order["access_token"]) == 32
    assert stack.levels()["TEA"]["held"] == 2
    # The order is durable before the redirect was handed out.
    assert stack.order(order["number"])["status"] == "pending_payment"
    assert stack.gateway.settle(order["payment"]["redirect_url"], "pay") == 303
    assert wait_for(lambda: stack.order(order["number"])["status"] == "paid")
    levels = stack.levels()["TEA"]
    assert (levels["on_hand"], levels["available"], levels["held"], levels["sold_unshipped"]) == (
        5,
        3,
        0,
        2,
    )
    detail = stack.order(order["number"])
    assert [p["type"] for p in detail["payments"]] == ["payment.succeeded"]
    # Customer view and return page show the real state.
    status = stack.http.get(
        f"{stack.shop.url}/api/v1/orders/{order['number']}", params={"token": order["access_token"]}
    )
    assert status.json()["status"] == "paid"
    page = stack.http.get(f"{stack.shop.url}/payments/sandbox/return",
                          params={"order": order["number"], "token": order["access_token"]})  # fmt: skip
    assert 'data-status="paid"' in page.text
    for token in ("", "0" * 32, order["access_token"][:-1]):
        wrong = stack.http.get(f"{stack.shop.url}/payments/sandbox/return",
                               params={"order": order["number"], "token": token})  # fmt: skip
        assert wrong.status_code == 404 and "data-status" not in wrong.text
    # Ship: on_hand goes down by the shipped quantity.
    shipped = stack.http.post(
        f"{stack.shop.url}/api/v1/admin/orders/{order['number']}/ship", headers=stack.admin
    )
    assert shipped.status_code == 200 and shipped.json()["status"] == "shipped"
    levels = stack.levels()["TEA"]
    assert (levels["on_hand"], levels["available"], levels["sold_unshipped"]) == (3, 3, 0)
    assert stack.cli("stock", "audit").returncode == 0


@pytest.mark.parametrize("setup", SETUPS)
def test_decline_cancels_and_gives_stock_back(make_stack, setup):
    stack = make_stack(setup)
    stack.add_product("TEA", 1200, 5)
    stack.settled([("TEA", 3)], "decline", "cancelled")
    assert stack.levels()["TEA"]["available"] == 5


def test_idempotency_key_replays_or_refuses(make_stack):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 10)
    first = stack.checkout([("TEA", 1)], key="k-1")
    again = stack.checkout([("TEA", 1)], key="k-1")
    other = stack.checkout([("TEA", 2)], key="k-1")
    assert first.status_code == 201
    assert again.status_code == 200 and again.json()["number"] == first.json()["number"]
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(stack.orders()) == 1
    assert stack.levels()["TEA"]["held"] == 1


@pytest.mark.parametrize("setup", SETUPS)
def test_out_of_stock_is_409_and_writes_nothing(make_stack, setup):
    stack = make_stack(setup)
    stack.add_product("A", 100, 2)
    stack.add_product("B", 100, 1)
    resp = stack.checkout([("A", 1), ("B", 2)])
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "out_of_stock" and error["sku"] == "B" and error["available"] == 1
    assert stack.orders() == []
    levels = stack.levels()
    assert levels["A"]["available"] == 2 and levels["B"]["available"] == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"lines": [], "customer": {"email": "a@b.c"}, "gateway": "sandbox"}, 400),
        (
            {
                "lines": [{"sku": "TEA", "qty": 0}],
                "customer": {"email": "a@b.c"},
                "gateway": "sandbox",
            },
            400,
        ),
        (
            {
                "lines": [{"sku": "TEA", "qty": "1"}],
                "customer": {"email": "a@b.c"},
                "gateway": "sandbox",
            },
            400,
        ),
        (
            {
                "lines": [{"sku": "TEA", "qty": 1}],
                "customer": {"email": "nope"},
                "gateway": "sandbox",
            },
            400,
        ),
        (
            {
                "lines": [{"sku": "NOPE", "qty": 1}],
                "customer": {"email": "a@b.c"},
                "gateway": "sandbox",
            },
            404,
        ),
        (
            {
                "lines": [{"sku": "TEA", "qty": 1}],
                "customer": {"email": "a@b.c"},
                "gateway": "nope",
            },
            404,
        ),
        ({"lines": [{"sku": "TEA", "qty": 1}], "customer": {"email": "a@b.c"}}, 400),
    ],
)
def test_bad_checkout_is_4xx_and_writes_nothing(make_stack, body, status):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 10)
    resp = stack.http.post(f"{stack.shop.url}/api/v1/checkout", json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["message"]
    assert stack.orders() == []
    assert stack.levels()["TEA"]["available"] == 10


def test_customer_cancel_gives_stock_back_and_wrong_token_is_404(make_stack):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 4)
    order = stack.checkout([("TEA", 4)]).json()
    url = f"{stack.shop.url}/api/v1/orders/{order['number']}"
    assert stack.http.get(url, params={"token": "0" * 32}).status_code == 404
    assert stack.http.post(url + "/cancel", params={"token": "0" * 32}).status_code == 404
    resp = stack.http.post(url + "/cancel", params={"token": order["access_token"]})
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert stack.levels()["TEA"]["available"] == 4
    assert (
        stack.http.post(url + "/cancel", params={"token": order["access_token"]}).status_code == 409
    )


@pytest.mark.parametrize("setup", SETUPS)
def test_a_hold_comes_back_only_after_the_gateway_expired_the_session(make_stack, setup):
    """The hold of a gateway order outlives its hold time until the reconciler has asked:
    a rival cannot take the unit before, and the buyer's pay link is dead after."""
    stack = make_stack(setup, ECSHOP_HOLD_TTL="1", ECSHOP_RECONCILE_GRACE="0")
    stack.add_product("ONE", 5000, 1)
    order = stack.checkout([("ONE", 1)]).json()
    time.sleep(1.5)  # its hold time is over; no reconciler pass yet
    rival = stack.checkout([("ONE", 1)])
    assert rival.status_code == 409, rival.text  # the buyer may be paying right now
    assert stack.cli("reconcile", "--once").returncode == 0
    assert stack.order(order["number"])["status"] == "cancelled"
    # the session was expired before the release: paying now is refused at the gateway
    assert stack.gateway.settle(order["payment"]["redirect_url"], "pay") == 409
    assert stack.checkout([("ONE", 1)]).status_code == 201  # the unit is for sale again
    assert stack.cli("stock", "audit").returncode == 0


@pytest.mark.parametrize("setup", SETUPS)
def test_late_payment_retakes_stock_or_is_refunded(make_stack, setup):
    """A gateway that cannot expire sessions: the stock comes back once it says "not
    paid"; a capture after that re-takes the stock if it is there, and otherwise is
    refunded through the gateway automatically (never oversold, never dropped)."""
    stack = make_stack(setup, ECSHOP_HOLD_TTL="1", ECSHOP_RECONCILE_GRACE="0",
                       ECSHOP_GATEWAY_SANDBOX_EXPIRE_SESSIONS="0")  # fmt: skip
    stack.add_product("ONE", 5000, 1)
    stack.add_product("TWO", 100, 5)
    late = stack.checkout([("TWO", 1)]).json()
    gone = stack.checkout([("ONE", 1)]).json()
    time.sleep(1.5)  # both hold times end
    assert stack.cli("reconcile", "--once").returncode == 0  # the gateway has no payment
    assert stack.order(gone["number"])["status"] == "cancelled"
    rival = stack.checkout([("ONE", 1)]).json()  # someone else takes the last unit
    assert stack.gateway.settle(rival["payment"]["redirect_url"], "pay") == 303
    # The first customers pay anyway: money captured must never be dropped.
    assert stack.gateway.settle(late["payment"]["redirect_url"], "pay") == 303
    assert stack.gateway.settle(gone["payment"]["redirect_url"], "pay") == 303
    assert wait_for(lambda: stack.order(late["number"])["status"] == "paid")
    assert wait_for(lambda: stack.order(rival["number"])["status"] == "paid")
    assert wait_for(lambda: stack.order(gone["number"])["status"] == "refunded")
    refunded = stack.order(gone["number"])
    assert refunded["refunded_amount"] == refunded["paid_amount"] == 5000
    assert [e["to_status"] for e in refunded["events"]][-2:] == ["needs_attention", "refunded"]
    ledger = stack.gateway.api("GET", f"/v1/payments/{gone['number']}")
    assert (ledger["status"], ledger["refunded_amount"]) == ("refunded", 5000)
    levels = stack.levels()
    assert (levels["ONE"]["available"], levels["ONE"]["sold_unshipped"]) == (0, 1)  # not oversold
    assert levels["TWO"]["sold_unshipped"] == 1
    assert stack.cli("stock", "audit").returncode == 0


def test_one_reconcile_pass_settles_every_stuck_order_batch_after_batch(make_stack):
    # Every notification is dropped: only the reconciler can learn of these payments.
    stack = make_stack("embedded", {"drop": 1.0}, ECSHOP_RECONCILE_GRACE="0")
    stack.add_product("TEA", 1000, 20)
    orders = [stack.checkout([("TEA", 1)]).json() for _ in range(7)]
    for order in orders[:5]:
        assert stack.gateway.settle(order["payment"]["redirect_url"], "pay") == 303
    # Two orders stay unpaid with live holds: still pending at the gateway, so each
    # batch after them must move on instead of reading them again.
    done = stack.cli("reconcile", "--once", "--batch", "2")
    assert done.returncode == 0, done.stderr
    assert "checked=7" in done.stdout and "paid=5" in done.stdout, done.stdout
    statuses = [stack.order(o["number"])["status"] for o in orders]
    assert statuses == ["paid"] * 5 + ["pending_payment"] * 2
    bad = stack.cli("reconcile", "--once", "--batch", "0")
    assert bad.returncode == 2 and "at least 1" in bad.stderr


def test_one_reconcile_pass_replays_every_unapplied_event_past_ones_that_fail(make_stack):
    import sqlite3

    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 20)
    orders = [stack.checkout([("TEA", 1)]).json() for _ in range(5)]
    # Journaled and answered 2xx, then the worker died before applying them; the three
    # oldest name orders that do not exist and can never apply.
    rows = [(f"evt_gone_{i}", f"NO-SUCH-{i}", 1) for i in range(3)]
    rows += [(f"evt_live_{i}", o["number"], o["total"]) for i, o in enumerate(orders)]
    db = sqlite3.connect(stack.store_url[len("sqlite:///") :])
    with db:
        db.executemany(
            "INSERT INTO payments_journal (gateway, event_id, order_number, type, amount, currency, "
            "payment_id, payload_json, received_at) VALUES ('sandbox', ?, ?, 'payment.succeeded', ?, "
            "'JPY', ?, '{}', 0)",
            [(event, number, amount, f"pay_{event}") for event, number, amount in rows],
        )
    db.close()
    done = stack.cli("reconcile", "--once", "--batch", "2")
    assert done.returncode == 0, done.stderr
    assert "replayed=5" in done.stdout and "errors=3" in done.stdout, done.stdout
    assert [stack.order(o["number"])["status"] for o in orders] == ["paid"] * 5


@pytest.mark.parametrize("setup", SETUPS)
def test_partial_refunds_through_the_gateway_then_the_rest(make_stack, setup):
    stack = make_stack(setup)
    stack.add_product("TEA", 1000, 5)
    order = stack.settled([("TEA", 2)], "pay", "paid")
    url = f"{stack.shop.url}/api/v1/admin/orders/{order['number']}/refund"
    total = order["total"]
    for bad in ({"amount": total + 1}, {"amount": "10"}, {"amount": 0}, {"amount": 1.5}, [1]):
        resp = stack.http.post(url, json=bad, headers=stack.admin)
        assert resp.status_code == 400 and resp.json()["error"]["message"], (bad, resp.text)
    assert stack.order(order["number"])["refunded_amount"] == 0
    part = stack.http.post(url, json={"amount": 300, "reason": "scratched"}, headers=stack.admin)
    assert part.status_code == 200, part.text
    assert (part.json()["status"], part.json()["refunded_amount"]) == ("paid", 300)
    at_gateway = stack.gateway.api("GET", f"/v1/payments/{order['number']}")
    assert at_gateway["refunded_amount"] == 300
    assert stack.levels()["TEA"]["sold_unshipped"] == 2  # a partial refund keeps the sale
    rest = stack.http.post(url, headers=stack.admin)  # no body: what is left
    assert rest.status_code == 200, rest.text
    assert (rest.json()["status"], rest.json()["refunded_amount"]) == ("refunded", total)
    assert stack.gateway.api("GET", f"/v1/payments/{order['number']}")["refunded_amount"] == total
    levels = stack.levels()["TEA"]
    assert (levels["available"], levels["sold_unshipped"]) == (5, 0)  # unshipped: back in stock
    again = stack.http.post(url, json={"amount": 1}, headers=stack.admin)
    assert again.status_code == 400, again.text
    assert stack.cli("stock", "audit").returncode == 0
