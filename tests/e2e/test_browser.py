"""The checkout flow in a real headless Chromium: the storefront page, the sandbox
gateway's hosted pay page, and the shop's return page, on the embedded default setup.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``./scripts/test.sh``
installs them); without them the tests skip, or fail under ``ECSHOP_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ecshop.money import format_money
from tests.conftest import _unavailable
from tests.e2e.test_checkout_flow import wait_for

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import Select

    HAVE_SELENIUM = True
except ImportError:  # the browser fixture says what to install
    HAVE_SELENIUM = False

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.e2e.conftest import Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--window-size=1024,768",
)


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        _unavailable(
            f"{' and '.join(missing)} not found: install the Debian packages chromium and "
            "chromium-driver (./scripts/test.sh does)"
        )
    if not HAVE_SELENIUM:
        _unavailable("selenium is not installed: pip install 'ecshop[test]'")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A headless Chromium of this test's own, driven by the system chromedriver."""
    _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    # An explicit driver path keeps selenium-manager from looking for (or downloading) one.
    service = Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


# -- page readers ----------------------------------------------------------------------
def _product_row(browser: WebDriver, sku: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'li[data-sku="{sku}"]')


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


# -- steps -----------------------------------------------------------------------------
def _buy_on_storefront(browser: WebDriver, stack: Stack, sku: str, qty: int, email: str) -> None:
    email_box = browser.find_element(By.ID, "email")
    email_box.clear()
    email_box.send_keys(email)
    Select(browser.find_element(By.ID, "gateway")).select_by_value("sandbox")
    qty_box = browser.find_element(By.ID, f"qty-{sku}")
    qty_box.clear()
    qty_box.send_keys(str(qty))
    _product_row(browser, sku).find_element(By.TAG_NAME, "button").click()
    assert wait_for(lambda: browser.current_url.startswith(f"{stack.gateway.url}/pay?")), (
        browser.find_element(By.ID, "message").text
    )


def _check_pay_page(browser: WebDriver, order: dict[str, Any], tmp_path: Path) -> None:
    assert browser.title == f"Sandbox payment · {order['number']}"
    details = _pay_page_details(browser)
    assert details["Order"] == order["number"]
    assert details["Amount"] == format_money(order["total"], order["currency"])
    assert details["Status"] == "pending"
    assert browser.find_element(By.ID, "test-mode").text == "TEST MODE — no real money"
    assert _button(browser, "pay").text == "Pay" and _button(browser, "pay").is_enabled()
    assert _button(browser, "decline").text == "Decline"
    browser.save_screenshot(str(tmp_path / "pay-page.png"))


def _press(browser: WebDriver, stack: Stack, action: str, wanted: str) -> None:
    """Press Pay or Decline; the browser must land on the return page showing ``wanted``."""
    _button(browser, action).click()
    return_page = f"{stack.shop.url}/payments/sandbox/return?"
    assert wait_for(lambda: browser.current_url.startswith(return_page)), browser.current_url
    # The notification is asynchronous: a pending page refreshes itself until it settles.
    assert wait_for(lambda: _status_shown(browser) == wanted, interval=0.5), _status_shown(browser)


def _check_return_page(browser: WebDriver, order: dict[str, Any], message: str) -> None:
    assert browser.find_element(By.ID, "order-number").text == order["number"]
    assert browser.find_element(By.ID, "test-mode").text == "TEST MODE — no real money"
    assert browser.find_element(By.ID, "order-status").text == message
    assert f"Total: {format_money(order['total'], order['currency'])}" in browser.page_source


# -- tests -----------------------------------------------------------------------------
def test_buy_on_storefront_pay_on_hosted_page_lands_paid(make_stack, browser, tmp_path):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5, name="Green tea")
    stack.add_product("GONE", 800, 0, name="Sold-out mug")
    browser.get(f"{stack.shop.url}/")
    tea = _product_row(browser, "TEA")
    assert "Green tea" in tea.text and "1,200 JPY" in tea.text and "5 left" in tea.text
    assert tea.find_element(By.TAG_NAME, "button").is_enabled()
    gone = _product_row(browser, "GONE")
    assert "0 left" in gone.text and not gone.find_element(By.TAG_NAME, "button").is_enabled()

    _buy_on_storefront(browser, stack, "TEA", 2, "browser@example.com")
    [placed] = stack.orders()
    order = stack.order(placed["number"])
    assert order["status"] == "pending_payment"
    assert order["customer"]["email"] == "browser@example.com"
    assert [(ln["sku"], ln["qty"]) for ln in order["lines"]] == [("TEA", 2)]
    assert stack.levels()["TEA"]["held"] == 2
    _check_pay_page(browser, order, tmp_path)

    _press(browser, stack, "pay", "paid")
    _check_return_page(browser, order, "Thank you: your payment was received.")
    assert wait_for(lambda: stack.order(order["number"])["status"] == "paid")
    levels = stack.levels()["TEA"]
    assert (levels["on_hand"], levels["available"], levels["held"], levels["sold_unshipped"]) == (
        5,
        3,
        0,
        2,
    )
    browser.get(f"{stack.shop.url}/")
    assert "3 left" in _product_row(browser, "TEA").text


def test_decline_on_hosted_page_cancels_and_gives_stock_back(make_stack, browser, tmp_path):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5, name="Green tea")
    resp = stack.checkout([("TEA", 3)])
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert stack.levels()["TEA"]["available"] == 2

    browser.get(order["payment"]["redirect_url"])
    _check_pay_page(browser, order, tmp_path)
    _press(browser, stack, "decline", "cancelled")
    _check_return_page(browser, order, "This order was cancelled; nothing was charged.")
    assert wait_for(lambda: stack.order(order["number"])["status"] == "cancelled")
    levels = stack.levels()["TEA"]
    assert (levels["available"], levels["held"], levels["sold_unshipped"]) == (5, 0, 0)
    browser.get(f"{stack.shop.url}/")
    assert "5 left" in _product_row(browser, "TEA").text
