"""Gateway settings, test mode and unreachable gateways, end to end through gunicorn,
the sandbox gateway process and the ``ecshop`` command."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.e2e.test_checkout_flow import wait_for

BANNER = "TEST MODE — no real money"


def return_url(order: dict[str, Any]) -> str:
    """The shop's return URL the sandbox pay link carries."""
    return parse_qs(urlsplit(order["payment"]["redirect_url"]).query)["return_url"][0]


def test_buyers_are_told_when_a_gateway_is_in_test_mode(make_stack):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5)
    assert '<span class="price">1,200 JPY</span>' in stack.http.get(f"{stack.shop.url}/").text
    order = stack.checkout([("TEA", 1)]).json()
    assert order["payment"]["test_mode"] is True
    pay_page = stack.http.get(order["payment"]["redirect_url"], headers={"Accept": "text/html"})
    assert pay_page.status_code == 200 and BANNER in pay_page.text
    assert "1,700 JPY" in pay_page.text  # 1,200 and the 500 shipping fee
    back = return_url(order)
    page = stack.http.get(back, headers={"Accept": "text/html", "Accept-Language": "en"})
    assert page.status_code == 200 and f"<strong>{BANNER}</strong>" in page.text
    japanese = stack.http.get(back, headers={"Accept": "text/html", "Accept-Language": "ja"})
    assert "<strong>テストモード — 実際の請求はありません</strong>" in japanese.text
    assert 'id="order-total" data-amount="1700">1,700 JPY</td>' in page.text
    answer = stack.http.get(back, headers={"Accept": "application/json"}).json()
    assert answer == {"number": order["number"], "status": "pending_payment", "test_mode": True}

    cod = stack.checkout([("TEA", 1)], gateway="cod").json()
    assert cod["payment"]["test_mode"] is False
    assert cod["payment"]["instructions"] == "Pay 1,700 JPY on delivery."  # with shipping


def test_the_shipping_fee_comes_from_its_settings(make_stack):
    stack = make_stack("embedded", ECSHOP_PLUGIN_SHIPPING_FEE_FEE="700",
                       ECSHOP_PLUGIN_SHIPPING_FEE_FREE_OVER="3000")  # fmt: skip
    stack.add_product("TEA", 1000, 10)
    small = stack.checkout([("TEA", 2)]).json()
    assert (small["shipping"], small["total"]) == (700, 2700)
    large = stack.checkout([("TEA", 3)]).json()
    assert (large["shipping"], large["total"]) == (0, 3000)


def test_an_unreachable_gateway_flags_the_order_for_the_admin(make_stack):
    stack = make_stack("embedded", ECSHOP_HOLD_TTL="1", ECSHOP_RECONCILE_GRACE="0",
                       ECSHOP_GATEWAY_UNREACHABLE_AFTER="1")  # fmt: skip
    stack.add_product("TEA", 1000, 5)
    number = stack.checkout([("TEA", 2)]).json()["number"]
    stack.gateway.stop()  # the provider is down: nobody can say whether the buyer paid

    def reconcile(**env: str) -> Any:
        done = stack.cli("reconcile", "--once", env=env)
        assert done.returncode == 0, done.stderr
        return done if "unreachable=1" in done.stdout else None

    flagged = wait_for(reconcile)
    assert flagged, "the order was never reported unreachable"
    assert f"order {number} needs the admin: gateway sandbox" in flagged.stderr
    view = stack.order(number)
    assert view["status"] == "pending_payment"
    assert view["attention"]["code"] == "gateway_unreachable"
    assert "Connection refused" in view["attention"]["reason"]
    assert stack.levels()["TEA"]["available"] == 3  # still held: the buyer may have paid
    assert stack.checkout([("TEA", 1)], gateway="cod").status_code == 201  # not flagged
    listed = stack.http.get(f"{stack.shop.url}/api/v1/admin/orders", headers=stack.admin,
                            params={"attention": "gateway_unreachable"}).json()  # fmt: skip
    assert [o["number"] for o in listed["items"]] == [number]

    released = reconcile(ECSHOP_GATEWAY_UNREACHABLE_RELEASE="1")
    assert released and "expired=1" in released.stdout
    view = stack.order(number)
    assert (view["status"], view["attention"]) == ("cancelled", None)
    assert stack.levels()["TEA"]["available"] == 4  # the cash-on-delivery order holds one
    listed = stack.http.get(f"{stack.shop.url}/api/v1/admin/orders", headers=stack.admin,
                            params={"attention": "gateway_unreachable"}).json()  # fmt: skip
    assert listed["items"] == []
