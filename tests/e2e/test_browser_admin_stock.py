"""The owner's stock and product pages in a real headless Chromium, at desktop size and on
a 390×844 phone, on the embedded setup and on MariaDB + Redis: log in, import counts
from a CSV file (previewed, then applied), meet a count whose base went stale, and add
a product with a picture that the shop then shows. Every page fits the screen's width;
screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ecshop.admins import AdminUsers
from ecshop.store import open_store
from ecshop.throttle import Throttle
from tests.e2e.browser import flash, page
from tests.e2e.conftest import SETUPS
from tests.e2e.test_checkout_flow import wait_for
from tests.pages.conftest import QUICK_HASHER
from tests.pictures import photo

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.e2e.conftest import Stack

try:
    from selenium.webdriver.common.by import By
except ImportError:  # the browser fixture says what to install
    pass

PASSWORD = "the owner's long password"


def _type(browser: WebDriver, element: object, value: str) -> None:
    element.clear()  # type: ignore[attr-defined]
    element.send_keys(value)  # type: ignore[attr-defined]


def _owner(stack: Stack) -> None:
    store = open_store(stack.store_url)
    try:
        AdminUsers(store, Throttle(store), hasher=QUICK_HASHER).create("owner", PASSWORD, "owner")
    finally:
        store.close()


def _login(browser: WebDriver, stack: Stack) -> None:
    browser.get(f"{stack.shop.url}/admin/stock")
    assert wait_for(lambda: "/admin/login" in browser.current_url)
    _type(browser, browser.find_element(By.ID, "f-username"), "owner")
    _type(browser, browser.find_element(By.ID, "f-password"), PASSWORD)
    browser.find_element(By.ID, "admin-login").click()
    assert wait_for(lambda: browser.current_url.endswith("/admin/stock")), browser.current_url


def _import_counts(browser: WebDriver, stack: Stack, tmp_path: Path) -> None:
    page(browser, "40-admin-stock")
    browser.find_element(By.ID, "to-import").click()
    csv = tmp_path / "counts.csv"
    csv.write_text("sku,on_hand\nTEA,12\nMUG,4\nCUP,1\n", "utf-8")
    browser.find_element(By.ID, "f-csv").send_keys(str(csv))
    page(browser, "41-admin-import")
    browser.find_element(By.ID, "import-preview").click()
    assert wait_for(lambda: "/admin/stock/import?key=" in browser.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#import-diff tbody tr")
    assert [(r.get_attribute("data-sku"), r.get_attribute("data-status")) for r in rows] == [
        ("TEA", "change"), ("MUG", "unchanged"), ("CUP", "change")]  # fmt: skip
    page(browser, "42-admin-import-preview")
    assert stack.levels()["TEA"]["on_hand"] == 10  # the preview wrote nothing
    browser.find_element(By.ID, "import-apply").click()
    assert wait_for(lambda: browser.current_url.endswith("/admin/stock"))
    assert wait_for(lambda: "Import applied: 2 SKUs changed." in flash(browser)), flash(browser)
    assert {s: v["on_hand"] for s, v in stack.levels().items()} == {"TEA": 12, "MUG": 4, "CUP": 1}


def _stale_count(browser: WebDriver, stack: Stack) -> None:
    row = browser.find_element(By.ID, "stock-TEA")
    assert row.get_attribute("data-on-hand") == "12"
    _type(browser, row.find_element(By.CSS_SELECTOR, "form.set input.counted"), "15")
    # meanwhile, through the admin API: the page still says 12
    moved = stack.http.post(f"{stack.shop.url}/api/v1/admin/stock/TEA/adjust", headers=stack.admin,
                            json={"delta": -2, "reason": "broken in the shop"})  # fmt: skip
    assert moved.status_code == 200, moved.text
    row.find_element(By.CSS_SELECTOR, "form.set button").click()
    assert wait_for(lambda: browser.find_elements(By.ID, "stale-conflict"))
    assert browser.find_element(By.ID, "page-had").text == "12"
    assert browser.find_element(By.ID, "now-on-hand").text == "10"
    assert browser.find_element(By.ID, "your-count").text == "15"
    page(browser, "43-admin-stock-conflict")
    assert stack.levels()["TEA"]["on_hand"] == 10  # nothing was overwritten


def _new_product(browser: WebDriver, stack: Stack, tmp_path: Path) -> None:
    browser.get(f"{stack.shop.url}/admin/products")
    page(browser, "44-admin-products")
    browser.find_element(By.ID, "new-product").click()
    assert wait_for(lambda: browser.current_url.endswith("/admin/products/new"))
    for field, value in (("f-sku", "LEAF"), ("f-name", "Tea leaf tin"), ("f-price", "2,400"),
                         ("f-on-hand", "6")):  # fmt: skip
        _type(browser, browser.find_element(By.ID, field), value)
    picture = tmp_path / "leaf.png"
    picture.write_bytes(photo())
    browser.find_element(By.ID, "f-picture").send_keys(str(picture))
    page(browser, "45-admin-product-new")
    browser.find_element(By.ID, "save-product").click()
    assert wait_for(lambda: browser.current_url.endswith("/admin/products/LEAF")), flash(browser)
    assert wait_for(lambda: "LEAF was created." in flash(browser)), flash(browser)
    assert wait_for(lambda: browser.execute_script(
        "return document.getElementById('current-picture').naturalWidth") == 480)  # fmt: skip
    page(browser, "46-admin-product")
    browser.find_element(By.ID, "view-in-shop").click()
    assert wait_for(lambda: browser.current_url.endswith("/products/LEAF"))
    assert wait_for(lambda: browser.execute_script(
        "return document.querySelector('img.picture').naturalWidth") == 480)  # fmt: skip
    page(browser, "47-product-with-picture")
    assert stack.levels()["LEAF"]["on_hand"] == 6


@pytest.mark.parametrize("setup", SETUPS)
def test_an_owner_imports_counts_meets_a_stale_count_and_adds_a_product(
    make_stack, browser, tmp_path, setup
):
    stack = make_stack(setup, ECSHOP_MEDIA_DIR=str(tmp_path / "media"))
    for sku, price, on_hand, name in (("TEA", 1200, 10, "Green tea"), ("MUG", 2500, 4, "Mug"),
                                      ("CUP", 800, 3, "Tea cup")):  # fmt: skip
        stack.add_product(sku, price, on_hand, name=name)
    _owner(stack)
    _login(browser, stack)
    _import_counts(browser, stack, tmp_path)
    _stale_count(browser, stack)
    _new_product(browser, stack, tmp_path)
