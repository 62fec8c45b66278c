"""The admin pages in process: login with its own session, TOTP, throttling, the gate on
every /admin route, roles, the dashboard, maintenance, plugins, members, and the audit
log of changes made through the pages and the admin API."""

from __future__ import annotations

import re

import pyotp
import pytest

from ecshop.admins import AdminUsers
from ecshop.throttle import Throttle
from tests.pages.conftest import (
    ADMIN,
    OWNER_PASSWORD,
    QUICK_HASHER,
    STAFF_PASSWORD,
    admin_login,
)
from tests.pages.test_member_pages import register


@pytest.fixture
def admin_shop(shop):
    store = shop.app.shop.store
    admins = AdminUsers(store, Throttle(store), hasher=QUICK_HASHER)
    admins.create("owner", OWNER_PASSWORD, "owner")
    admins.create("staff", STAFF_PASSWORD, "staff")
    shop.totp = admins.create("secure", OWNER_PASSWORD, "owner", totp=True)["totp_uri"]
    return shop


def admin_routes(app):
    return sorted({t for t, _, _ in app.route_table if t == "/admin" or t.startswith("/admin/")})


def test_every_admin_route_wants_an_admin_session(admin_shop):
    routes = admin_routes(admin_shop.app)
    assert "/admin" in routes and "/admin/audit" in routes and len(routes) >= 6
    member = admin_shop.shopper()
    register(member)  # a member's session is no admin session
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "X", route)
        for who in (admin_shop.shopper(), member):
            page = who.get(path)
            if route == "/admin/login":
                assert page.status_code == 200
                continue
            if route == "/admin/logout":  # public like the login: ends whatever session
                continue
            assert page.status_code in (303, 405), (route, page.status_code)  # 405: POST only
            if page.status_code == 303:
                assert page.headers["location"].startswith("/admin/login?next=")
            who.get("/admin/login")
            posted = who.post(path, {})
            assert posted.status_code in (403, 405), (route, posted.status_code)


def test_a_member_cookie_copied_to_the_admin_cookie_opens_nothing(admin_shop):
    member = admin_shop.shopper()
    register(member)
    thief = admin_shop.shopper()
    thief.cookies["ecshop_admin"] = member.cookies["ecshop_session"]
    assert thief.get("/admin").status_code == 303


def test_login_rotates_the_admin_session_and_logout_ends_it(admin_shop):
    owner = admin_shop.shopper()
    owner.get("/admin/login")
    planted = owner.cookies["ecshop_admin"]
    done = admin_login(owner, next_path="/admin/audit")
    assert (done.status_code, done.headers["location"]) == (303, "/admin/audit")
    assert owner.cookies["ecshop_admin"] != planted
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = owner.get("/admin")
    assert page.status_code == 200 and 'id="admin-who"' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    session = owner.cookies["ecshop_admin"]
    owner.post("/admin/logout", {})
    stolen = admin_shop.shopper()
    stolen.cookies["ecshop_admin"] = session
    assert stolen.get("/admin").status_code == 303


def test_login_next_stays_inside_the_admin(admin_shop):
    for target in ("//evil.example/", "https://evil.example/admin", "/cart"):
        done = admin_login(admin_shop.shopper(), next_path=target)
        assert done.headers["location"] == "/admin", target


def test_wrong_credentials_and_the_totp_code(admin_shop):
    assert admin_login(admin_shop.shopper(), password="wrong password!").status_code == 401
    assert admin_login(admin_shop.shopper(), username="nobody").status_code == 401
    assert admin_login(admin_shop.shopper(), "secure", code="000000").status_code == 401
    code = pyotp.parse_uri(admin_shop.totp).now()
    assert admin_login(admin_shop.shopper(), "secure", code=code).status_code == 303


def test_the_eleventh_failed_admin_login_is_throttled(admin_shop):
    for _ in range(10):
        assert admin_login(admin_shop.shopper(), password="wrong password!").status_code == 401
    refused = admin_login(admin_shop.shopper())
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 800


def test_staff_cannot_change_maintenance_and_nothing_changes(admin_shop):
    staff = admin_shop.shopper()
    admin_login(staff, "staff", STAFF_PASSWORD)
    page = staff.get("/admin/maintenance")
    assert "Only an owner can change this." in page.text
    refused = staff.post("/admin/maintenance", {"on": "1", "message": "x", "retry_after": "60"})
    assert refused.status_code == 403 and "may not" in refused.text
    assert admin_shop.shopper().get("/").status_code == 200  # still open


def test_maintenance_from_the_page_is_audited_and_closes_the_storefront(admin_shop):
    owner = admin_shop.shopper()
    admin_login(owner)
    owner.get("/admin/maintenance")
    done = owner.post(
        "/admin/maintenance", {"on": "1", "message": "Moving house", "retry_after": "120"}
    )
    assert done.status_code == 303
    closed = admin_shop.shopper().get("/")
    assert closed.status_code == 503 and "Moving house" in closed.text
    assert owner.get("/admin").status_code == 200  # the admin stays open
    audit = owner.get("/admin/audit?action=maintenance")
    assert 'data-actor="admin:owner"' in audit.text and "Moving house" in audit.text


def test_api_and_web_changes_appear_in_the_audit_log_with_filters(admin_shop):
    client = admin_shop.client
    admin_shop.add_product("TEA", 1200, 5)
    client.simulate_put("/api/v1/admin/products/TEA", headers=ADMIN, json={"price": 1300})
    client.simulate_post("/api/v1/admin/stock/TEA/adjust", headers=ADMIN,
                         json={"delta": -1, "reason": "damaged"})  # fmt: skip
    owner = admin_shop.shopper()
    admin_login(owner)
    page = owner.get("/admin/audit")
    for action in ("product.create", "product.update", "stock.adjust", "admin.login"):
        assert f'data-action="{action}"' in page.text, action
    assert 'data-actor="token"' in page.text
    only = owner.get("/admin/audit?action=stock.&via=api").text
    assert 'data-action="stock.adjust"' in only and 'data-action="product.update"' not in only
    assert "damaged" in only


def test_dashboard_figures_link_to_their_lists(admin_shop):
    admin_shop.add_product("TEA", 1200, 5)
    owner = admin_shop.shopper()
    admin_login(owner)
    page = owner.get("/admin").text
    for figure, link in (("fig-attention", "/admin/orders?status=needs_attention"),
                         ("fig-stale", "/admin/orders?status=pending_payment"),
                         ("fig-drift", "/admin/stock/audit"), ("fig-maintenance", "/admin/maintenance")):  # fmt: skip
        assert re.search(rf'id="{figure}" href="{re.escape(link)}"', page), figure
    assert page.count('class="bar"') == 48


def test_plugins_and_members_pages(admin_shop):
    register(admin_shop.shopper(), email="m1@example.com")
    owner = admin_shop.shopper()
    admin_login(owner)
    plugins = owner.get("/admin/plugins").text
    assert 'data-gateway="bank_transfer" data-live="1"' in plugins
    assert 'data-gateway="sandbox" data-live="0"' in plugins  # no URL or secret here
    members = owner.get("/admin/members?q=m1").text
    assert 'data-email="m1@example.com"' in members


def test_admin_error_pages_are_admin_pages(admin_shop):
    owner = admin_shop.shopper()
    admin_login(owner)
    missing = owner.get("/admin/nothing-here")
    assert missing.status_code == 404
