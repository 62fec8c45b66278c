"""Member pages in process: register, login with a new session id, throttling, logout,
order history, the saved address, orders seen through the member's session, and
password reset through the mailed link."""

from __future__ import annotations

import re

import pytest

from ecshop.outbox import MailSender
from tests.pages.conftest import ADDRESS, ADMIN
from tests.pages.test_storefront_pages import buy_until_review, review_key

PASSWORD = "correct horse battery"
SESSION = "ecshop_session"


def register(shopper, email="hanako@example.com", password=PASSWORD, name="山田花子"):
    shopper.get("/account/register")
    return shopper.post("/account/register", {"email": email, "password": password, "name": name})


def login(shopper, email="hanako@example.com", password=PASSWORD):
    shopper.get("/account/login")
    return shopper.post("/account/login", {"email": email, "password": password})


def place(shopper, items, gateway="bank_transfer"):
    review = buy_until_review(shopper, items, gateway)
    placed = shopper.post("/checkout/place", {"idempotency_key": review_key(review)})
    assert placed.status_code == 303, placed.text
    return placed.headers["location"]


def test_register_logs_in_and_logout_ends_the_session(shop):
    shopper = shop.shopper()
    shopper.get("/")
    before = shopper.cookies[SESSION]
    made = register(shopper)
    assert (made.status_code, made.headers["location"]) == (303, "/account")
    assert shopper.cookies[SESSION] != before  # a new id at login
    page = shopper.get("/account")
    assert page.status_code == 200 and "hanako@example.com" in page.text
    assert 'id="account-link"' in page.text and "You have no orders yet." in page.text
    logged_in = shopper.cookies[SESSION]
    out = shopper.post("/account/logout", {})
    assert (out.status_code, out.headers["location"]) == (303, "/")
    assert shopper.get("/account").headers["location"].startswith("/account/login?next=")
    # the old cookie opens nothing any more
    stolen = shop.shopper()
    stolen.cookies[SESSION] = logged_in
    assert stolen.get("/account").status_code == 303


def test_login_rotates_the_session_id_and_keeps_the_cart(shop):
    shop.add_product("TEA", 1200, 5)
    register(shop.shopper())
    shopper = shop.shopper()
    shopper.post("/cart/add", {"sku": "TEA", "qty": 2})
    planted = shopper.cookies[SESSION]
    done = login(shopper)
    assert (done.status_code, done.headers["location"]) == (303, "/account")
    assert shopper.cookies[SESSION] != planted
    assert 'data-sku="TEA" data-qty="2"' in shopper.get("/cart").text
    # whoever knew the id from before the login is not logged in and has no cart
    fixated = shop.shopper()
    fixated.cookies[SESSION] = planted
    assert fixated.get("/account").status_code == 303
    assert 'data-qty="2"' not in fixated.get("/cart").text


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(shop):
    register(shop.shopper())
    wrong = login(shop.shopper(), password="not the password")
    unknown = login(shop.shopper(), email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    for page in (wrong, unknown):
        assert "The email address or password is wrong." in page.text
        assert 'id="account-link"' not in page.text


def test_the_eleventh_failed_login_is_throttled_even_with_the_right_password(shop):
    register(shop.shopper())
    for _ in range(10):
        assert login(shop.shopper(), password="guess guess").status_code == 401
    eleventh = login(shop.shopper())
    assert eleventh.status_code == 429
    assert int(eleventh.headers["Retry-After"]) > 800
    assert "Too many failed logins" in eleventh.text


def test_one_address_is_throttled_across_accounts(shop):
    for n in range(3):
        register(shop.shopper(), email=f"m{n}@example.com")
    for n in range(10):
        assert (
            login(shop.shopper(), email=f"m{n % 2}@example.com", password="guess guess").status_code
            == 401
        )
    # the third account had no failure, but the address had ten
    assert login(shop.shopper(), email="m2@example.com").status_code == 429
    # another client address is not affected
    other = shop.shopper(**{"X-Forwarded-For": "203.0.113.9"})
    assert login(other, email="m2@example.com").status_code == 303


def test_register_errors_are_pages_that_keep_the_input(shop):
    short = register(shop.shopper(), password="short")
    assert short.status_code == 400 and "at least 8 characters" in short.text
    assert 'value="hanako@example.com"' in short.text and "short" not in re.findall(
        r'name="password"[^>]*>', short.text)[0]  # fmt: skip
    assert register(shop.shopper()).status_code == 303
    taken = register(shop.shopper(), email="HANAKO@example.com ")
    assert taken.status_code == 409 and "already exists" in taken.text


def test_member_orders_history_saved_address_and_order_page_without_token(shop):
    shop.add_product("TEA", 1200, 5, name="Green tea")
    member = shop.shopper()
    register(member)
    link = place(member, [("TEA", 1)])
    [order] = shop.orders()
    number = order["number"]
    account = member.get("/account")
    assert f'data-number="{number}"' in account.text and "〒100-0001" in account.text
    # the member sees the order without its token, on the page and through the API
    bare = f"/orders/{number}"
    assert member.get(bare).status_code == 200 and "Example Bank" in member.last.text
    api = member.get(f"/api/v1/orders/{number}", headers={"Accept": "application/json"})
    assert api.status_code == 200 and api.json["status"] == "accepted"
    # nobody else does; the token link still works for anyone
    stranger = shop.shopper()
    register(stranger, email="other@example.com")
    assert stranger.get(bare).status_code == 404
    assert shop.shopper().get(f"/api/v1/orders/{number}").status_code == 404
    assert shop.shopper().get(link).status_code == 200
    # the next checkout starts from the saved address
    member.post("/cart/add", {"sku": "TEA", "qty": 1})
    form = member.get("/checkout").text
    assert 'value="hanako@example.com"' in form and 'value="千代田区"' in form
    assert "<option selected>東京都</option>" in form


def test_a_guest_order_has_no_member_and_the_member_id_is_never_taken_from_the_form(shop):
    shop.add_product("TEA", 1200, 5)
    member = shop.shopper()
    register(member)
    guest = shop.shopper()
    review = buy_until_review(guest, [("TEA", 1)])
    # a forged member field in the form changes nothing
    guest.post("/checkout/place", {"idempotency_key": review_key(review), "member_id": "0" * 32})
    [order] = shop.orders()
    detail = shop.client.simulate_get(f"/api/v1/admin/orders/{order['number']}", headers=ADMIN)
    assert detail.json.get("member_id") is None
    assert "You have no orders yet." in member.get("/account").text


def test_the_saved_address_form(shop):
    member = shop.shopper()
    register(member)
    member.get("/account/address")
    bad = member.post("/account/address", {**ADDRESS, "postal_code": "12"})
    assert bad.status_code == 400 and "postal code" in bad.text
    address = {k: v for k, v in ADDRESS.items() if k != "email"}
    ok = member.post("/account/address", {**address, "city": "港区"})
    assert (ok.status_code, ok.headers["location"]) == (303, "/account")
    assert "港区" in member.get("/account").text
    assert shop.shopper().get("/account/address").status_code == 303  # guests go to login


def sent_mail(shop):
    """Send the outbox and return the messages the mailer got."""
    got = []
    sender = MailSender(
        shop.app.shop.store, shop.app.shop.hooks, shop.app.shop.mail.render, got.append
    )
    assert sender.send_due().failed == 0
    return got


def test_password_reset_through_the_mailed_link(shop):
    member = shop.shopper()
    register(member)
    other_device = shop.shopper()
    login(other_device)
    shop.shopper().get("/account/reset")
    asked = shop.shopper()
    asked.get("/account/reset")
    page = asked.post("/account/reset", {"email": "Hanako@Example.com"})
    assert page.status_code == 200 and 'id="reset-sent"' in page.text
    unknown = shop.shopper()
    unknown.get("/account/reset")
    assert 'id="reset-sent"' in unknown.post("/account/reset", {"email": "no@example.com"}).text
    [mail] = sent_mail(shop)
    assert mail["to"] == ["hanako@example.com"] and mail["kind"] == "password_reset"
    link = re.search(r"http://\S+/account/reset/new\?token=\S+", mail["body"]).group(0)
    path = link.split("127.0.0.1:8000", 1)[1]
    form = asked.get(path)
    assert form.status_code == 200 and 'id="new-password-form"' in form.text
    short = asked.post("/account/reset/new", {"token": re.search(r"token=(\S+)", link).group(1),
                                              "password": "short"})  # fmt: skip
    assert short.status_code == 400 and 'id="new-password-form"' in short.text  # still usable
    done = asked.post("/account/reset/new", {"token": re.search(r"token=(\S+)", link).group(1),
                                             "password": "a brand new password"})  # fmt: skip
    assert (done.status_code, done.headers["location"]) == (303, "/account/login")
    # every session of the member ended; the old password is gone, the new one works
    assert member.get("/account").status_code == 303
    assert other_device.get("/account").status_code == 303
    assert login(shop.shopper()).status_code == 401
    assert login(shop.shopper(), password="a brand new password").status_code == 303
    # the link works once, and the sent mail's link is not kept in the outbox
    again = shop.shopper().get(path)
    assert again.status_code == 400 and 'id="reset-dead"' in again.text
    with shop.app.shop.store.read() as tx:
        rows = tx.query("SELECT kind, data_json FROM outbox")
    assert [(r["kind"], r["data_json"]) for r in rows] == [("password_reset", None)]


def test_member_forms_need_the_csrf_token(shop):
    register(shop.shopper())
    for path, data in [("/account/login", {"email": "hanako@example.com", "password": PASSWORD}),
                       ("/account/register", {"email": "x@example.com", "password": PASSWORD}),
                       ("/account/logout", {}), ("/account/reset", {"email": "hanako@example.com"}),
                       ("/account/address", ADDRESS)]:  # fmt: skip
        shopper = shop.shopper()
        shopper.get("/")
        assert shopper.post(path, data, csrf=False).status_code == 403, path
    with shop.app.shop.store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM members") == 1
        assert tx.scalar("SELECT COUNT(*) FROM password_resets") == 0


def test_member_pages_have_the_page_headers_and_no_inline_script(shop):
    from tests.pages.test_storefront_pages import parse

    member = shop.shopper()
    register(member)
    pages = [member.get("/account"), member.get("/account/address"),
             shop.shopper().get("/account/login"), shop.shopper().get("/account/register"),
             shop.shopper().get("/account/reset"), shop.shopper().get("/account/reset/new?token=x")]  # fmt: skip
    for page in pages:
        policy = page.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and page.headers["Cache-Control"] == "no-store"
        assert parse(page.text).inline == []


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_member_pages_speak_both_languages(shop, lang):
    page = shop.shopper(**{"Accept-Language": lang}).get("/account/login")
    assert ("ログイン" in page.text) == (lang == "ja")
    assert ("Log in" in page.text) == (lang == "en")
