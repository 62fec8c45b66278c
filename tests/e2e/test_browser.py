"""The shopper's whole purchase in a real headless Chromium, at desktop size and on a
390×844 phone: catalog, product page, cart, checkout form, review, the sandbox
gateway's hosted pay page and the shop's return page, on the embedded default setup.
No shop page may scroll sideways. Screenshots of every page go to
``test-artifacts/screenshots/`` (git-ignored) for a person to look at
(:mod:`tests.e2e.browser`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from ecshop.money import format_money
from tests.e2e.browser import DESKTOP, flash, page, shot
from tests.e2e.test_checkout_flow import wait_for
from tests.pages.conftest import ADDRESS

try:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import Select
except ImportError:  # the browser fixture says what to install
    pass

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.e2e.conftest import Stack


# -- page readers and checks --------------------------------------------------------------
def _pay_page_details(browser: WebDriver) -> dict[str, str]:
    """The hosted page's Order / Amount / Status list, as shown."""
    terms = browser.find_elements(By.CSS_SELECTOR, "main dl dt")
    values = browser.find_elements(By.CSS_SELECTOR, "main dl dd")
    return {t.text: v.text for t, v in zip(terms, values, strict=True)}


def _button(browser: WebDriver, action: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'button[name="action"][value="{action}"]')


def _status_shown(browser: WebDriver) -> str | None:
    """``data-status`` of the return page, or None while it is (re)loading."""
    try:
        return browser.find_element(By.ID, "order-status").get_attribute("data-status")
    except (NoSuchElementException, StaleElementReferenceException):
        return None


def _cart_lines(browser: WebDriver) -> dict[str, int]:
    return {e.get_attribute("data-sku"): int(e.get_attribute("data-qty"))
            for e in browser.find_elements(By.CSS_SELECTOR, "li.line")}  # fmt: skip


# -- steps -----------------------------------------------------------------------------
def _fill_cart(browser: WebDriver, stack: Stack) -> None:
    """Green tea from the catalog, two cups from the cup's own page."""
    browser.get(f"{stack.shop.url}/")
    tea = browser.find_element(By.CSS_SELECTOR, 'li.product[data-sku="TEA"]')
    assert "Green tea" in tea.text and "1,200 JPY" in tea.text and "5 left" in tea.text
    gone = browser.find_element(By.CSS_SELECTOR, 'li.product[data-sku="GONE"]')
    assert "Sold out" in gone.text and not gone.find_elements(By.TAG_NAME, "button")
    page(browser, "1-catalog")
    tea.find_element(By.CSS_SELECTOR, "button.buy").click()
    assert wait_for(lambda: browser.current_url.endswith("/cart"))
    assert wait_for(lambda: "Green tea was added to your cart." in flash(browser)), flash(browser)
    browser.get(f"{stack.shop.url}/products/CUP")
    assert "Handmade cup" in browser.find_element(By.TAG_NAME, "h1").text
    qty = browser.find_element(By.ID, "qty")
    qty.clear()
    qty.send_keys("2")
    page(browser, "2-product")
    browser.find_element(By.CSS_SELECTOR, "form.add button").click()
    assert wait_for(lambda: _cart_lines(browser) == {"TEA": 1, "CUP": 2})
    page(browser, "3-cart")


def _fill_checkout(browser: WebDriver, email: str) -> None:
    browser.find_element(By.ID, "to-checkout").click()
    assert wait_for(lambda: browser.current_url.endswith("/checkout"))
    for name, value in {**ADDRESS, "email": email}.items():
        if name == "prefecture":
            Select(browser.find_element(By.ID, "f-prefecture")).select_by_visible_text(value)
        elif value:
            browser.find_element(By.ID, f"f-{name}").send_keys(value)
    browser.find_element(By.CSS_SELECTOR, 'input[name="gateway"][value="sandbox"]').click()
    page(browser, "4-checkout")
    browser.find_element(By.ID, "to-review").click()
    assert wait_for(lambda: browser.current_url.endswith("/checkout/review")), flash(browser)


def _check_review(browser: WebDriver) -> None:
    total = browser.find_element(By.ID, "summary-total")
    # 1,200 + 2 × 800 = 2,800, below 5,000: the shipping plugin's 500 is added
    assert total.get_attribute("data-amount") == "3300"
    assert (
        browser.find_element(By.CSS_SELECTOR, "tr.shipping").get_attribute("data-amount") == "500"
    )
    assert "山田花子" in browser.find_element(By.CSS_SELECTOR, "section.address").text
    assert browser.find_element(By.ID, "test-mode").text == "TEST MODE — no real money"
    page(browser, "5-review")


def _check_paypage(browser: WebDriver, order: dict[str, Any]) -> None:
    assert browser.title == f"Sandbox payment · {order['number']}"
    details = _pay_page_details(browser)
    assert details["Order"] == order["number"]
    assert details["Amount"] == format_money(order["total"], order["currency"])
    assert details["Status"] == "pending"
    assert browser.find_element(By.ID, "test-mode").text == "TEST MODE — no real money"
    assert _button(browser, "pay").text == "Pay" and _button(browser, "pay").is_enabled()
    assert _button(browser, "decline").text == "Decline"
    shot(browser, "6-gateway-pay-page")


def _press(browser: WebDriver, stack: Stack, action: str, wanted: str) -> None:
    """Press Pay or Decline; the browser must land on the return page showing ``wanted``."""
    _button(browser, action).click()
    return_page = f"{stack.shop.url}/payments/sandbox/return?"
    assert wait_for(lambda: browser.current_url.startswith(return_page)), browser.current_url
    # The notification is asynchronous: a pending page refreshes itself until it settles.
    assert wait_for(lambda: _status_shown(browser) == wanted, interval=0.5), _status_shown(browser)


def _check_returnpage(browser: WebDriver, order: dict[str, Any], message: str) -> None:
    assert browser.find_element(By.ID, "order-number").text == order["number"]
    assert browser.find_element(By.ID, "test-mode").text == "TEST MODE — no real money"
    assert browser.find_element(By.ID, "order-status").text == message
    total = browser.find_element(By.ID, "order-total")
    assert total.text == format_money(order["total"], order["currency"])
    assert total.get_attribute("data-amount") == str(order["total"])


def _shop(make_stack: Any) -> Stack:
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5, name="Green tea")
    stack.add_product("CUP", 800, 3, name="Handmade cup")
    stack.add_product("GONE", 800, 0, name="Sold-out mug")
    return stack


# -- tests -----------------------------------------------------------------------------
def test_guest_buys_two_products_and_pays_on_the_hostedpage(make_stack, browser):
    stack = _shop(make_stack)
    _fill_cart(browser, stack)
    _fill_checkout(browser, "browser@example.com")
    _check_review(browser)
    assert stack.orders() == [] and stack.levels()["TEA"]["held"] == 0  # the review holds nothing
    browser.find_element(By.ID, "place-order").click()
    assert wait_for(lambda: browser.current_url.startswith(f"{stack.gateway.url}/pay?"))
    [placed] = stack.orders()
    order = stack.order(placed["number"])
    assert order["status"] == "pending_payment" and order["total"] == 3300
    assert order["customer"]["email"] == "browser@example.com"
    assert order["customer"]["address"]["prefecture"] == "東京都"
    assert sorted((ln["sku"], ln["qty"]) for ln in order["lines"]) == [("CUP", 2), ("TEA", 1)]
    _check_paypage(browser, order)

    _press(browser, stack, "pay", "paid")
    _check_returnpage(browser, order, "Thank you: your payment was received.")
    page(browser, "7-return")
    assert wait_for(lambda: stack.order(order["number"])["status"] == "paid")
    levels = stack.levels()
    assert (levels["TEA"]["available"], levels["CUP"]["available"]) == (4, 1)
    browser.find_element(By.LINK_TEXT, "Continue shopping").click()
    assert browser.find_element(By.CSS_SELECTOR, "#cart-link .count").text == "0"
    assert "4 left" in browser.find_element(By.CSS_SELECTOR, 'li.product[data-sku="TEA"]').text


def test_an_item_sold_out_during_checkout_sends_the_shopper_back_to_the_cart(make_stack, browser):
    stack = _shop(make_stack)
    _fill_cart(browser, stack)
    _fill_checkout(browser, "late@example.com")
    _check_review(browser)
    rival = stack.checkout([("CUP", 2)])  # someone else buys the cups meanwhile
    assert rival.status_code == 201, rival.text
    browser.find_element(By.ID, "place-order").click()
    assert wait_for(lambda: browser.current_url.endswith("/cart"))
    assert wait_for(
        lambda: "Handmade cup sold out while you were checking out" in flash(browser)
    ), flash(browser)
    assert _cart_lines(browser) == {"TEA": 1, "CUP": 1}
    page(browser, "8-cart-after-sell-out")
    assert len(stack.orders()) == 1


def test_error_and_maintenance_pages_fit_the_screen(make_stack, browser):
    stack = _shop(make_stack)
    browser.get(f"{stack.shop.url}/products/NO-SUCH-THING")
    assert browser.find_element(By.ID, "error-title").text == "Page not found"
    page(browser, "9-not-found")
    stack.cli("maintenance", "on", "--message", "Moving to a new server, back at 18:00", check=True)
    assert wait_for(lambda: browser.get(f"{stack.shop.url}/") or
                    "Moving to a new server" in browser.page_source, interval=0.5)  # fmt: skip
    assert re.search(r"maintenance|closed", browser.title, re.I)
    page(browser, "10-maintenance")


@pytest.mark.parametrize("device", [DESKTOP], indirect=True)
def test_decline_on_hosted_page_cancels_and_gives_stock_back(make_stack, browser):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5, name="Green tea")
    resp = stack.checkout([("TEA", 3)])
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert stack.levels()["TEA"]["available"] == 2

    browser.get(order["payment"]["redirect_url"])
    _check_paypage(browser, order)
    _press(browser, stack, "decline", "cancelled")
    _check_returnpage(browser, order, "This order was cancelled; nothing was charged.")
    assert wait_for(lambda: stack.order(order["number"])["status"] == "cancelled")
    levels = stack.levels()["TEA"]
    assert (levels["available"], levels["held"], levels["sold_unshipped"]) == (5, 0, 0)
    browser.get(f"{stack.shop.url}/")
    assert "5 left" in browser.find_element(By.CSS_SELECTOR, 'li.product[data-sku="TEA"]').text


def test_the_language_link_switches_the_pages_to_japanese(make_stack, browser):
    stack = _shop(make_stack)
    browser.get(f"{stack.shop.url}/products/TEA")
    browser.find_element(By.CSS_SELECTOR, 'a.lang[hreflang="ja"]').click()
    assert wait_for(lambda: browser.current_url.endswith("/products/TEA"))
    assert browser.find_element(By.CSS_SELECTOR, "form.add button").text == "カートに入れる"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ja"
    browser.find_element(By.CSS_SELECTOR, "form.add button").click()
    assert wait_for(lambda: browser.current_url.endswith("/cart"))
    assert wait_for(lambda: "Green teaをカートに入れました。" in flash(browser)), flash(browser)
    browser.find_element(By.ID, "to-checkout").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "ご購入手続き"
    page(browser, "11-checkout-ja")
