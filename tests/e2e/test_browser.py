"""The shopper's whole purchase in a real headless Chromium, at desktop size and on a
390×844 phone: catalog, product page, cart, checkout form, review, the sandbox
gateway's hosted pay page and the shop's return page, on the embedded default setup.
No shop page may scroll sideways. Screenshots of every page go to
``test-artifacts/screenshots/`` (git-ignored) for a person to look at.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``./scripts/test.sh``
installs them); without them the tests skip, or fail under ``ECSHOP_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ecshop.money import format_money
from tests.conftest import _unavailable
from tests.e2e.test_checkout_flow import wait_for
from tests.pages.conftest import ADDRESS

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
    "--lang=en-US",
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP, PHONE = "desktop", "phone"
#: a phone's screen: 390×844 CSS pixels at 3x, with a phone's user agent
PHONE_METRICS = {"width": 390, "height": 844, "pixelRatio": 3.0, "mobile": True}
PHONE_AGENT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")  # fmt: skip


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        _unavailable(
            f"{' and '.join(missing)} not found: install the Debian packages chromium and "
            "chromium-driver (./scripts/test.sh does)"
        )
    if not HAVE_SELENIUM:
        _unavailable("selenium is not installed: pip install 'ecshop[test]'")


def _chromium(tmp_path: Path, device: str) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    size = "--window-size=1280,900" if device == DESKTOP else "--window-size=390,844"
    for arg in (*CHROMIUM_ARGS, size, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    if device == PHONE:
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": PHONE_METRICS, "userAgent": PHONE_AGENT}
        )
    # An explicit driver path keeps selenium-manager from looking for (or downloading) one.
    service = Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(params=[DESKTOP, PHONE])
def device(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def browser(tmp_path: Path, device: str) -> Iterator[WebDriver]:
    """A headless Chromium of this test's own (desktop or phone), driven by the system
    chromedriver."""
    _require_browser()
    driver = _chromium(tmp_path, device)
    driver.device = device  # type: ignore[attr-defined]
    yield driver
    driver.quit()


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


def _shot(browser: WebDriver, name: str) -> Path:
    """A screenshot of the whole page (beyond the viewport) in the artifacts folder."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = SCREENSHOTS / f"{browser.device}-{name}.png"  # type: ignore[attr-defined]
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def _page(browser: WebDriver, name: str) -> None:
    """This shop page fits the screen's width (no sideways scrolling); screenshot it."""
    width = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert width[0] <= width[1], f"{name} scrolls sideways: {width}"
    _shot(browser, name)


def _flash(browser: WebDriver) -> str:
    return " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".flash"))


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
    _page(browser, "1-catalog")
    tea.find_element(By.CSS_SELECTOR, "button.buy").click()
    assert wait_for(lambda: browser.current_url.endswith("/cart"))
    assert "Green tea was added to your cart." in _flash(browser)
    browser.get(f"{stack.shop.url}/products/CUP")
    assert "Handmade cup" in browser.find_element(By.TAG_NAME, "h1").text
    qty = browser.find_element(By.ID, "qty")
    qty.clear()
    qty.send_keys("2")
    _page(browser, "2-product")
    browser.find_element(By.CSS_SELECTOR, "form.add button").click()
    assert wait_for(lambda: _cart_lines(browser) == {"TEA": 1, "CUP": 2})
    _page(browser, "3-cart")


def _fill_checkout(browser: WebDriver, email: str) -> None:
    browser.find_element(By.ID, "to-checkout").click()
    assert wait_for(lambda: browser.current_url.endswith("/checkout"))
    for name, value in {**ADDRESS, "email": email}.items():
        if name == "prefecture":
            Select(browser.find_element(By.ID, "f-prefecture")).select_by_visible_text(value)
        elif value:
            browser.find_element(By.ID, f"f-{name}").send_keys(value)
    browser.find_element(By.CSS_SELECTOR, 'input[name="gateway"][value="sandbox"]').click()
    _page(browser, "4-checkout")
    browser.find_element(By.ID, "to-review").click()
    assert wait_for(lambda: browser.current_url.endswith("/checkout/review")), _flash(browser)


def _check_review(browser: WebDriver) -> None:
    total = browser.find_element(By.ID, "summary-total")
    # 1,200 + 2 × 800 = 2,800, below 5,000: the shipping plugin's 500 is added
    assert total.get_attribute("data-amount") == "3300"
    assert (
        browser.find_element(By.CSS_SELECTOR, "tr.shipping").get_attribute("data-amount") == "500"
    )
    assert "山田花子" in browser.find_element(By.CSS_SELECTOR, "section.address").text
    assert browser.find_element(By.ID, "test-mode").text == "TEST MODE — no real money"
    _page(browser, "5-review")


def _check_pay_page(browser: WebDriver, order: dict[str, Any]) -> None:
    assert browser.title == f"Sandbox payment · {order['number']}"
    details = _pay_page_details(browser)
    assert details["Order"] == order["number"]
    assert details["Amount"] == format_money(order["total"], order["currency"])
    assert details["Status"] == "pending"
    assert browser.find_element(By.ID, "test-mode").text == "TEST MODE — no real money"
    assert _button(browser, "pay").text == "Pay" and _button(browser, "pay").is_enabled()
    assert _button(browser, "decline").text == "Decline"
    _shot(browser, "6-gateway-pay-page")


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
def test_guest_buys_two_products_and_pays_on_the_hosted_page(make_stack, browser):
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
    _check_pay_page(browser, order)

    _press(browser, stack, "pay", "paid")
    _check_return_page(browser, order, "Thank you: your payment was received.")
    _page(browser, "7-return")
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
    assert "Handmade cup sold out while you were checking out" in _flash(browser)
    assert _cart_lines(browser) == {"TEA": 1, "CUP": 1}
    _page(browser, "8-cart-after-sell-out")
    assert len(stack.orders()) == 1


def test_error_and_maintenance_pages_fit_the_screen(make_stack, browser):
    stack = _shop(make_stack)
    browser.get(f"{stack.shop.url}/products/NO-SUCH-THING")
    assert browser.find_element(By.ID, "error-title").text == "Page not found"
    _page(browser, "9-not-found")
    stack.cli("maintenance", "on", "--message", "Moving to a new server, back at 18:00", check=True)
    assert wait_for(lambda: browser.get(f"{stack.shop.url}/") or
                    "Moving to a new server" in browser.page_source, interval=0.5)  # fmt: skip
    assert re.search(r"maintenance|closed", browser.title, re.I)
    _page(browser, "10-maintenance")


@pytest.mark.parametrize("device", [DESKTOP], indirect=True)
def test_decline_on_hosted_page_cancels_and_gives_stock_back(make_stack, browser):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5, name="Green tea")
    resp = stack.checkout([("TEA", 3)])
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert stack.levels()["TEA"]["available"] == 2

    browser.get(order["payment"]["redirect_url"])
    _check_pay_page(browser, order)
    _press(browser, stack, "decline", "cancelled")
    _check_return_page(browser, order, "This order was cancelled; nothing was charged.")
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
    assert "Green teaをカートに入れました。" in _flash(browser)
    browser.find_element(By.ID, "to-checkout").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "ご購入手続き"
    _page(browser, "11-checkout-ja")
