"""The admin's order pages in a real headless Chromium, at desktop size and on a 390×844
phone, on the embedded default and on MariaDB + Redis: an owner ships an order paid
through the sandbox gateway and refunds part of it, each after its confirmation page; a
staff account cannot refund; a bulk cancel over a filter refuses a wrong count and
touches nothing, then cancels exactly the orders it showed; every change is in the
audit log. Screenshots go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from argon2 import PasswordHasher

from ecshop.admins import AdminUsers
from ecshop.store import open_store
from ecshop.throttle import Throttle
from tests.e2e.browser import DESKTOP, PHONE, flash, page
from tests.e2e.conftest import SETUPS
from tests.e2e.test_browser_admin import type_in
from tests.e2e.test_checkout_flow import wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.e2e.conftest import Stack

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:  # the browser fixture says what to install
    pass

PASSWORD = "a long admin password"


def make_admins(stack: Stack) -> None:
    store = open_store(stack.store_url)
    try:
        # NOTE: cheap hashes keep the test quick; the shop verifies them as stored
        admins = AdminUsers(
            store, Throttle(store), hasher=PasswordHasher(time_cost=1, memory_cost=1024)
        )
        admins.create("owner", PASSWORD, "owner")
        admins.create("clerk", PASSWORD, "staff")
    finally:
        store.close()


def log_in(browser: WebDriver, stack: Stack, name: str) -> None:
    browser.get(f"{stack.shop.url}/admin/orders")
    assert wait_for(lambda: "/admin/login" in browser.current_url)
    type_in(browser, "f-username", name)
    type_in(browser, "f-password", PASSWORD)
    browser.find_element(By.ID, "admin-login").click()
    assert wait_for(lambda: browser.current_url.endswith("/admin/orders")), browser.current_url


def log_out(browser: WebDriver) -> None:
    browser.find_element(By.ID, "admin-logout").click()
    assert wait_for(lambda: "/admin/login" in browser.current_url)


def click(browser: WebDriver, element_id: str) -> None:
    browser.find_element(By.ID, element_id).click()


def listed(browser: WebDriver) -> dict[str, str]:
    return {r.get_attribute("data-number"): r.get_attribute("data-status")
            for r in browser.find_elements(By.CSS_SELECTOR, "#orders tbody tr[data-number]")}  # fmt: skip


def ship_and_refund(browser: WebDriver, stack: Stack, number: str) -> None:
    """The owner ships the paid order, then refunds 1,000 JPY of it."""
    assert listed(browser)[number] == "paid"
    page(browser, "40-admin-orders")
    browser.find_element(By.LINK_TEXT, number).click()
    assert wait_for(lambda: browser.current_url.endswith(f"/admin/orders/{number}"))
    page(browser, "41-admin-order")
    click(browser, "action-ship")
    assert "These units leave the stock" in browser.find_element(By.ID, "consequences").text
    page(browser, "42-admin-ship-confirm")
    assert stack.order(number)["status"] == "paid"
    click(browser, "confirm")
    assert wait_for(lambda: f"Order {number} was shipped." in flash(browser))
    assert browser.find_element(By.ID, "order-status").get_attribute("data-status") == "shipped"
    click(browser, "action-refund")
    type_in(browser, "f-amount", "1000")
    type_in(browser, "f-reason", "a chipped cup")
    click(browser, "refund-continue")
    assert wait_for(lambda: browser.find_elements(By.ID, "refund-amount"))
    words = browser.find_element(By.ID, "consequences").text
    assert "1,000 JPY goes back to the customer through" in words
    assert "1,900 JPY stays paid" in words
    page(browser, "43-admin-refund-confirm")
    assert stack.order(number)["refunded_amount"] == 0
    click(browser, "confirm")
    assert wait_for(lambda: f"1,000 JPY was refunded on order {number}." in flash(browser))
    refunded = browser.find_element(By.ID, "order-refunded")
    assert (refunded.get_attribute("data-amount"), refunded.text) == ("1000", "1,000 JPY")
    page(browser, "44-admin-order-refunded")
    assert stack.order(number)["refunded_amount"] == 1000
    click(browser, "print-slip")
    assert "JPY" not in browser.find_element(By.ID, "slip").text
    page(browser, "45-admin-slip")
    browser.back()
    click(browser, "print-receipt")
    assert browser.find_element(By.ID, "receipt-amount").get_attribute("data-amount") == "1900"
    page(browser, "46-admin-receipt")


def bulk_cancel(browser: WebDriver, stack: Stack, unpaid: list[str]) -> None:
    """The owner cancels every accepted order through the filter: a wrong count first."""
    browser.get(f"{stack.shop.url}/admin/orders")
    Select(browser.find_element(By.ID, "f-status")).select_by_value("accepted")
    click(browser, "filter")
    assert wait_for(lambda: "status=accepted" in browser.current_url)
    assert sorted(listed(browser)) == sorted(unpaid)
    click(browser, "bulk-cancel-filter")
    assert wait_for(lambda: "/admin/orders/bulk/" in browser.current_url)
    preview = browser.current_url
    assert browser.find_element(By.ID, "bulk-count").get_attribute("data-count") == str(len(unpaid))
    page(browser, "47-admin-bulk-preview")
    type_in(browser, "f-count", str(len(unpaid) - 1))
    click(browser, "bulk-go")
    assert wait_for(lambda: browser.find_elements(By.ID, "count-error"))
    assert "nothing was changed" in browser.find_element(By.ID, "count-error").text
    page(browser, "48-admin-bulk-wrong-count")
    assert {stack.order(n)["status"] for n in unpaid} == {"accepted"}
    type_in(browser, "f-count", str(len(unpaid)))
    click(browser, "bulk-go")
    assert wait_for(lambda: browser.find_elements(By.ID, "bulk-results"))
    assert browser.current_url == preview
    assert wait_for(
        lambda: f"{len(unpaid)} of {len(unpaid)} orders were cancelled." in flash(browser)
    ), flash(browser)
    page(browser, "49-admin-bulk-done")
    assert {stack.order(n)["status"] for n in unpaid} == {"cancelled"}


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("device", [DESKTOP, PHONE], indirect=True)
def test_the_owner_ships_refunds_and_bulk_cancels_and_staff_cannot_refund(
    make_stack, browser, setup
):
    stack = make_stack(setup)
    stack.add_product("TEA", 1200, 20, name="Green tea")
    make_admins(stack)
    paid = stack.settled([("TEA", 2)], "pay", "paid")["number"]  # 2,400 + 500 shipping
    unpaid = [
        stack.checkout([("TEA", 1)], gateway="bank_transfer").json()["number"] for _ in range(3)
    ]

    log_in(browser, stack, "clerk")
    browser.get(f"{stack.shop.url}/admin/orders/{paid}")
    assert browser.find_elements(By.ID, "action-refund-owner-only")
    assert not browser.find_elements(By.ID, "action-refund")
    browser.get(f"{stack.shop.url}/admin/orders/{paid}/refund")
    assert "Only an owner can do this" in browser.find_element(By.ID, "error-message").text
    page(browser, "50-admin-staff-refused")
    assert stack.order(paid)["refunded_amount"] == 0
    log_out(browser)

    log_in(browser, stack, "owner")
    ship_and_refund(browser, stack, paid)
    bulk_cancel(browser, stack, unpaid)
    browser.get(f"{stack.shop.url}/admin/audit?action=order.")
    rows = browser.find_elements(By.CSS_SELECTOR, "#audit tbody tr[data-action]")
    seen = sorted((r.get_attribute("data-action"), r.get_attribute("data-target"),
                   r.get_attribute("data-actor")) for r in rows)  # fmt: skip
    made = [("order.cancel", n, "admin:owner") for n in unpaid]
    assert seen == sorted([*made, ("order.refund", paid, "admin:owner"),
                           ("order.ship", paid, "admin:owner")])  # fmt: skip
    page(browser, "51-admin-audit-orders")
    # the same order in Japanese, as the owner's language link shows it
    browser.get(f"{stack.shop.url}/admin/orders/{paid}")
    browser.find_element(By.CSS_SELECTOR, 'a.lang[hreflang="ja"]').click()
    assert wait_for(lambda: browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ja")
    assert browser.find_element(By.ID, "action-refund").text == "返金"
    page(browser, "52-admin-order-ja")
