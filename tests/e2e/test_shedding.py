"""Load shedding: a storefront request that queued too long at the front proxy gets a
fast 503 and writes nothing; payments, the admin and health are never shed."""

from __future__ import annotations

import json
import time

from ecshop.sandbox.protocol import sign_body
from tests.e2e.test_checkout_flow import wait_for

BODY = {
    "lines": [{"sku": "TEA", "qty": 1}],
    "customer": {"email": "a@example.com"},
    "gateway": "sandbox",
}


def shed_count(stack):
    """Shed requests of every worker."""
    return stack.metrics("ecshop_shed_requests_total").get("ecshop_shed_requests_total", 0)


def test_a_request_that_queued_too_long_is_shed_and_payments_never_are(make_stack):
    stack = make_stack("embedded", ECSHOP_SHED_QUEUE_MS="1000")
    stack.add_product("TEA", 1000, 10)
    url = f"{stack.shop.url}/api/v1/checkout"
    old = time.time() - 5
    for stamp in (f"t={old:.3f}", f"t={int(old * 1000)}", str(int(old * 1_000_000))):
        resp = stack.http.post(url, json=BODY, headers={"X-Request-Start": stamp})
        assert resp.status_code == 503, (stamp, resp.text)
        assert resp.json()["error"]["code"] == "overloaded" and resp.headers["Retry-After"]
    assert stack.orders() == [] and stack.levels()["TEA"]["available"] == 10
    assert shed_count(stack) == 3

    fresh = stack.http.post(url, json=BODY, headers={"X-Request-Start": f"t={time.time():.3f}"})
    assert fresh.status_code == 201, fresh.text
    order = fresh.json()
    stale = {"X-Request-Start": f"t={old:.3f}"}
    # A genuine payment notification that queued just as long still lands.
    event = {"id": "evt_queued", "type": "payment.succeeded", "order": order["number"],
             "amount": order["total"], "currency": "JPY", "payment_id": "pay_q", "created": int(time.time())}  # fmt: skip
    body = json.dumps(event).encode()
    notify = stack.http.post(f"{stack.shop.url}/payments/sandbox/notify", data=body, headers={
        **stale, "Sandbox-Signature": sign_body(body, stack.gateway.secret), "Content-Type": "application/json"})  # fmt: skip
    assert notify.status_code == 200, notify.text
    assert wait_for(lambda: stack.order(order["number"])["status"] == "paid")
    back = stack.http.get(f"{stack.shop.url}/payments/sandbox/return", headers=stale,
                          params={"order": order["number"], "token": order["access_token"]})  # fmt: skip
    assert back.status_code == 200 and 'data-status="paid"' in back.text
    admin = stack.http.get(
        f"{stack.shop.url}/api/v1/admin/orders", headers={**stack.admin, **stale}
    )
    assert admin.status_code == 200
    assert stack.http.get(f"{stack.shop.url}/healthz", headers=stale).status_code == 200


def test_shedding_off_serves_everything(make_stack):
    stack = make_stack("embedded", ECSHOP_SHED_QUEUE_MS="0")
    stack.add_product("TEA", 1000, 10)
    resp = stack.http.post(f"{stack.shop.url}/api/v1/checkout", json=BODY,
                           headers={"X-Request-Start": f"t={time.time() - 60:.3f}"})  # fmt: skip
    assert resp.status_code == 201, resp.text
