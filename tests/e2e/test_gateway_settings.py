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
    order = stack.checkout([("TEA", 1)]).json()
    assert order["payment"]["test_mode"] is True
    pay_page = stack.http.get(order["payment"]["redirect_url"], headers={"Accept": "text/html"})
    assert pay_page.status_code == 200 and BANNER in pay_page.text
    assert "1,700 JPY" in pay_page.text  # 1,200 and the 500 shipping fee
    back = return_url(order)
    page = stack.http.get(back, headers={"Accept": "text/html"})
    assert page.status_code == 200 and f"<strong>{BANNER}</strong>" in page.text
    assert "Total: 1,700 JPY" in page.text
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
