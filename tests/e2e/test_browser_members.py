"""A member in a real headless Chromium, at desktop size and on a 390×844 phone: register,
buy with bank transfer, read the instructions, find the order in the history, and get
the same instructions by mail; a forgotten password reset through the mailed link.
Every page fits the screen's width; screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.browser import flash, page, press, type_into
from tests.e2e.test_checkout_flow import wait_for
from tests.pages.conftest import ADDRESS

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.e2e.conftest import Stack

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:  # the browser fixture says what to install
    pass

PASSWORD = "a long enough password"
ACCOUNT = "Example Bank 123-4567"


def _mails(folder: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in sorted(folder.glob("*.eml"))]  # fmt: skip


def _type(browser: WebDriver, field_id: str, value: str) -> None:
    type_into(browser, field_id, value)


def _register(browser: WebDriver, stack: Stack, mail: str) -> None:
    browser.get(f"{stack.shop.url}/")
    press(browser, "login-link")
    assert wait_for(lambda: "/account/login" in browser.current_url)
    page(browser, "20-login")
    press(browser, "to-register")
    assert wait_for(lambda: "/account/register" in browser.current_url)
    _type(browser, "f-email", mail)
    _type(browser, "f-name", "山田花子")
    _type(browser, "f-password", PASSWORD)
    page(browser, "21-register")
    press(browser, "register")
    assert wait_for(lambda: browser.current_url.endswith("/account")), browser.current_url
    assert wait_for(lambda: "Welcome! Your account was made." in flash(browser)), flash(browser)


def _shop(make_stack, tmp_path: Path) -> Stack:
    stack = make_stack("embedded", ECSHOP_MAIL_DIR=str(tmp_path / "mail"))
    stack.add_product("TEA", 1200, 5, name="Green tea")
    return stack


def test_a_member_buys_by_bank_transfer_and_finds_the_order_and_its_mail(
    make_stack, browser, tmp_path
):
    stack = _shop(make_stack, tmp_path)
    _register(browser, stack, "member@example.com")
    assert "You have no orders yet." in browser.find_element(By.TAG_NAME, "main").text
    # buy: the checkout form starts from the account's email and name
    browser.get(f"{stack.shop.url}/products/TEA")
    browser.find_element(By.CSS_SELECTOR, "form.add button").click()
    assert wait_for(lambda: browser.current_url.endswith("/cart"))
    press(browser, "to-checkout")
    assert wait_for(lambda: browser.current_url.endswith("/checkout"))
    assert browser.find_element(By.ID, "f-email").get_attribute("value") == "member@example.com"
    assert browser.find_element(By.ID, "f-name").get_attribute("value") == "山田花子"
    for name, value in ADDRESS.items():
        if name == "prefecture":
            Select(browser.find_element(By.ID, "f-prefecture")).select_by_visible_text(value)
        elif name not in ("email", "name") and value:
            _type(browser, f"f-{name}", value)
    browser.find_element(By.CSS_SELECTOR, 'input[name="gateway"][value="bank_transfer"]').click()
    press(browser, "to-review")
    assert wait_for(lambda: browser.current_url.endswith("/checkout/review")), flash(browser)
    press(browser, "place-order")
    assert wait_for(lambda: "/orders/" in browser.current_url)
    # the instructions: account, amount, reference, pay-by date
    [placed] = stack.orders()
    number = placed["number"]
    status = browser.find_element(By.ID, "order-status")
    assert status.get_attribute("data-status") == "accepted"
    main = browser.find_element(By.TAG_NAME, "main").text
    assert ACCOUNT in main and number in main
    assert browser.find_element(By.ID, "pay-by").text
    page(browser, "22-bank-transfer-instructions")
    # the history lists it, and its link opens it without the token
    press(browser, "account-link")
    assert wait_for(lambda: browser.current_url.endswith("/account"))
    row = browser.find_element(By.CSS_SELECTOR, f'#order-history li[data-number="{number}"]')
    assert "Accepted" in row.text
    assert "〒100-0001" in browser.find_element(By.ID, "saved-address").text  # kept from the order
    page(browser, "23-account")
    row.find_element(By.TAG_NAME, "a").click()
    assert wait_for(lambda: browser.current_url.endswith(f"/orders/{number}"))
    assert ACCOUNT in browser.find_element(By.TAG_NAME, "main").text
    # the order mail, sent by the worker right after the order, holds the same instructions
    assert wait_for(lambda: _mails(tmp_path / "mail"))
    [mail] = _mails(tmp_path / "mail")
    body = mail.get_content()
    assert mail["To"] == "member@example.com" and number in mail["Subject"]
    assert ACCOUNT in body and number in body
    assert stack.order(number)["status"] == "accepted"


def test_a_forgotten_password_is_reset_through_the_mailed_link(make_stack, browser, tmp_path):
    stack = _shop(make_stack, tmp_path)
    _register(browser, stack, "forgetful@example.com")
    press(browser, "logout")
    assert wait_for(lambda: "You are logged out." in flash(browser))
    browser.get(f"{stack.shop.url}/account/login")
    press(browser, "forgot")
    assert wait_for(lambda: browser.current_url.endswith("/account/reset"))
    _type(browser, "f-email", "forgetful@example.com")
    press(browser, "send-reset")
    assert wait_for(lambda: browser.find_elements(By.ID, "reset-sent"))
    page(browser, "24-reset-sent")
    assert wait_for(lambda: _mails(tmp_path / "mail"))  # sent right after the request
    [mail] = _mails(tmp_path / "mail")
    link = re.search(r"http://\S+/account/reset/new\?token=\S+", mail.get_content())
    assert link and mail["To"] == "forgetful@example.com", mail.get_content()
    browser.get(link.group(0))
    _type(browser, "f-password", "my new password 2")
    page(browser, "25-new-password")
    press(browser, "set-password")
    assert wait_for(lambda: browser.current_url.endswith("/account/login"))
    _type(browser, "f-email", "forgetful@example.com")
    _type(browser, "f-password", PASSWORD)  # the old one no longer works
    press(browser, "login")
    assert wait_for(lambda: browser.find_elements(By.ID, "login-error"))
    assert wait_for(lambda: browser.execute_script("return document.readyState") == "complete")
    _type(browser, "f-email", "forgetful@example.com")
    _type(browser, "f-password", "my new password 2")
    press(browser, "login")
    assert wait_for(lambda: browser.current_url.endswith("/account"))
    # the link was used: it opens nothing now
    browser.get(link.group(0))
    assert browser.find_elements(By.ID, "reset-dead")
