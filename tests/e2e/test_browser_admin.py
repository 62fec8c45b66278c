"""The owner's admin in a real headless Chromium: login, the dashboard, a maintenance
window from the browser (the storefront closes, the admin stays open), the audit log;
a member's session reaches no admin page. On the embedded default and on
MariaDB + Redis; screenshots go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.browser import DESKTOP, PHONE, flash, page, press, type_into
from tests.e2e.test_checkout_flow import wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.e2e.conftest import Stack

try:
    from selenium.webdriver.common.by import By
except ImportError:  # the browser fixture says what to install
    pass

OWNER_PASSWORD = "the owner's long password"


def make_owner(stack: Stack, name: str = "owner", role: str = "owner") -> None:
    made = stack.cli("admin", "create-user", name, "--role", role,
                     env={"ECSHOP_ADMIN_PASSWORD": OWNER_PASSWORD})  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr


def type_in(browser: WebDriver, field_id: str, value: str) -> None:
    type_into(browser, field_id, value)


def log_in(browser: WebDriver, stack: Stack, name: str = "owner") -> None:
    browser.get(f"{stack.shop.url}/admin")
    assert wait_for(lambda: "/admin/login" in browser.current_url)
    type_in(browser, "f-username", name)
    type_in(browser, "f-password", OWNER_PASSWORD)
    press(browser, "admin-login")
    assert wait_for(lambda: browser.current_url.rstrip("/").endswith("/admin")), browser.current_url
    assert name in browser.find_element(By.ID, "admin-who").text


@pytest.mark.parametrize(("device", "setup"), [(DESKTOP, "embedded"), (PHONE, "embedded"),
                                               (DESKTOP, "mariadb-redis")], indirect=["device"])  # fmt: skip
def test_the_owner_runs_a_maintenance_window_from_the_browser(make_stack, browser, setup):
    stack = make_stack(setup)
    stack.add_product("TEA", 1200, 5, name="Green tea")
    make_owner(stack)
    log_in(browser, stack)
    assert browser.find_element(By.ID, "fig-maintenance").text.endswith("off")
    page(browser, "30-admin-dashboard")
    browser.find_element(By.CSS_SELECTOR, 'a[href="/admin/maintenance"]').click()
    type_in(browser, "f-message", "Moving to a new server, back at 18:00")
    page(browser, "31-admin-maintenance")
    press(browser, "maintenance-on")
    assert wait_for(lambda: "Maintenance is on." in flash(browser))
    # each worker reads the switch again within a few seconds
    assert wait_for(lambda: stack.http.get(f"{stack.shop.url}/").status_code == 503, interval=0.5)
    shopper = stack.http.get(f"{stack.shop.url}/", headers={"Accept": "text/html"})
    assert shopper.status_code == 503 and "Moving to a new server" in shopper.text
    assert int(shopper.headers["Retry-After"]) > 0
    browser.get(f"{stack.shop.url}/admin")  # the admin stays open
    assert browser.find_element(By.ID, "maintenance-on").text
    browser.get(f"{stack.shop.url}/admin/maintenance")
    press(browser, "maintenance-off")
    assert wait_for(lambda: "Maintenance is off." in flash(browser))
    assert wait_for(lambda: stack.http.get(f"{stack.shop.url}/").status_code == 200, interval=0.5)
    browser.get(f"{stack.shop.url}/admin/audit?action=maintenance")
    rows = browser.find_elements(By.CSS_SELECTOR, '#audit tr[data-action="maintenance.set"]')
    assert len(rows) == 2 and all(r.get_attribute("data-actor") == "admin:owner" for r in rows)
    page(browser, "32-admin-audit")
    press(browser, "admin-logout")
    assert wait_for(lambda: "/admin/login" in browser.current_url)
    browser.get(f"{stack.shop.url}/admin")
    assert wait_for(lambda: "/admin/login" in browser.current_url)


@pytest.mark.parametrize("device", [DESKTOP], indirect=True)
def test_a_member_session_reaches_no_admin_page(make_stack, browser):
    stack = make_stack("embedded")
    make_owner(stack)
    browser.get(f"{stack.shop.url}/account/register")
    type_in(browser, "f-email", "member@example.com")
    type_in(browser, "f-password", "member password")
    press(browser, "register")
    assert wait_for(lambda: browser.current_url.endswith("/account"))
    for path in ("/admin", "/admin/audit", "/admin/maintenance", "/admin/members"):
        browser.get(f"{stack.shop.url}{path}")
        assert wait_for(lambda: "/admin/login" in browser.current_url), path
    page(browser, "33-admin-login")
