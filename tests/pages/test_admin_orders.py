"""The admin's order pages in process: the list (newest first, filters in the shop's time
zone, search, keyset pages), the CSV export and its formula guard, an order's page, the
confirmation step of every action, errors as readable 4xx pages, what staff may not do,
the bulk-edit guard, the packing slip and the receipt, and an audit line for each
change."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher

from ecshop import audit
from ecshop.admins import AdminUsers
from ecshop.throttle import Throttle
from tests.pages.conftest import ADMIN
from tests.pages.test_admin_pages import OWNER_PASSWORD, STAFF_PASSWORD, admin_login

TOKYO = ZoneInfo("Asia/Tokyo")
CUSTOMER = {"email": "hanako@example.com", "name": "山田花子", "phone": "0312345678",
            "address": {"postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区",
                        "line1": "千代田1-1", "line2": "101"}}  # fmt: skip
ROW = re.compile(r'<tr data-number="([^"]+)" data-status="([^"]+)">')
FLASH = re.compile(r'class="flash[^"]*"[^>]*>([^<]*)<')


@pytest.fixture
def shop(make_shop, tmp_path):
    shop = make_shop(ECSHOP_MAIL_DIR=str(tmp_path / "mail"), ECSHOP_INVOICE_NUMBER="T1234567890123",
                     ECSHOP_DELIVERY_SLOTS="morning,14-16")  # fmt: skip
    store = shop.app.shop.store
    # NOTE: cheap hashes for speed; the shop verifies them with the parameters they carry
    admins = AdminUsers(
        store, Throttle(store), hasher=PasswordHasher(time_cost=1, memory_cost=1024)
    )
    admins.create("owner", OWNER_PASSWORD, "owner")
    admins.create("staff", STAFF_PASSWORD, "staff")
    shop.add_product("TEA", 1200, 50, name="Green tea", tax_class="reduced")
    shop.add_product("CUP", 800, 50, name="Handmade cup")
    return shop


def place(shop, customer=None, lines=(("TEA", 2), ("CUP", 1)), delivery=None) -> str:
    """A bank-transfer order (accepted, unpaid): 2 × 1,200 + 800 + 500 shipping."""
    body = {"lines": [{"sku": s, "qty": q} for s, q in lines], "customer": customer or CUSTOMER,
            "gateway": "bank_transfer", **({"delivery": delivery} if delivery else {})}  # fmt: skip
    resp = shop.client.simulate_post("/api/v1/checkout", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.json["number"])


def pay(shop, number: str) -> None:
    resp = shop.client.simulate_post(f"/api/v1/admin/orders/{number}/mark-paid", headers=ADMIN)
    assert resp.status_code == 200, resp.text


def order(shop, number: str) -> dict:
    return dict(shop.client.simulate_get(f"/api/v1/admin/orders/{number}", headers=ADMIN).json)


def owner(shop):
    browser = shop.shopper()
    assert admin_login(browser).status_code == 303
    return browser


def staff(shop):
    browser = shop.shopper()
    assert admin_login(browser, "staff", STAFF_PASSWORD).status_code == 303
    return browser


def audit_lines(shop, via: str = "web") -> list[tuple[str, str, str]]:
    """The order lines of the audit log, oldest first (the pages' by default)."""
    rows = audit.search(shop.app.shop.store, action="order.", via=via, limit=500)
    return [(r["action"], r["target"], r["actor"]) for r in reversed(rows)]


def insert(shop, number: str, when: dt.datetime, status: str = "accepted", **customer) -> None:
    """An order row straight into the table, placed at ``when`` (for the list's order,
    days and paging)."""
    with shop.app.shop.store.tx() as tx:
        tx.execute(
            "INSERT INTO orders (number, access_token, status, stock_state, gateway, currency, "
            "subtotal, shipping, total, customer_json, paid_amount, refunded_amount, version, "
            "created_at, updated_at) VALUES (?, 'x', ?, 'released', 'bank_transfer', 'JPY', "
            "1000, 0, 1000, ?, 0, 0, 0, ?, ?)",
            (number, status, json.dumps(customer or {"email": f"{number.lower()}@example.com"},
                                        ensure_ascii=False), when.timestamp(), when.timestamp()),
        )  # fmt: skip


def listed(page) -> list[str]:
    return [n for n, _ in ROW.findall(page.text)]


# -- the list ----------------------------------------------------------------------------
def test_the_list_is_newest_first_and_pages_on_with_a_cursor(shop):
    base = dt.datetime(2026, 3, 1, 12, 0, tzinfo=TOKYO)
    for i in range(53):
        insert(shop, f"L{i:03d}", base + dt.timedelta(minutes=i))
    insert(shop, "L052B", base + dt.timedelta(minutes=52))  # the same moment as L052
    admin = owner(shop)
    first = admin.get("/admin/orders")
    assert first.status_code == 200
    newest = ["L052B", "L052", *[f"L{i:03d}" for i in range(51, -1, -1)]]
    assert listed(first) == newest[:50]
    older = re.search(r'id="next-page" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = admin.get(older)
    assert listed(second) == newest[50:]
    assert 'id="next-page"' not in second.text and 'id="first-page"' in second.text
    assert admin.get("/admin/orders?after=nonsense").status_code == 400


def test_filters_by_status_and_by_days_in_the_shops_time_zone(shop):
    insert(shop, "EVE", dt.datetime(2025, 12, 31, 23, 59, tzinfo=TOKYO))
    insert(shop, "LATE", dt.datetime(2026, 1, 1, 23, 30, tzinfo=TOKYO))  # 14:30 UTC
    insert(shop, "EARLY", dt.datetime(2026, 1, 1, 0, 5, tzinfo=TOKYO), status="paid")  # Dec 31 UTC
    insert(shop, "NEXT", dt.datetime(2026, 1, 2, 0, 10, tzinfo=TOKYO))  # still Jan 1 in UTC
    admin = owner(shop)
    day = admin.get("/admin/orders?since=2026-01-01&until=2026-01-01")
    assert listed(day) == ["LATE", "EARLY"]
    assert listed(admin.get("/admin/orders?since=2026-01-02")) == ["NEXT"]
    assert listed(admin.get("/admin/orders?until=2025-12-31")) == ["EVE"]
    assert listed(admin.get("/admin/orders?status=paid")) == ["EARLY"]
    assert listed(admin.get("/admin/orders?status=accepted&since=2026-01-01")) == ["NEXT", "LATE"]
    assert admin.get("/admin/orders?since=2026-02-30").status_code == 400
    assert admin.get("/admin/orders?status=lost").status_code == 400


def test_search_by_number_email_or_name(shop):
    at = dt.datetime(2026, 2, 1, 9, 0, tzinfo=TOKYO)
    insert(shop, "20260201-AAAA", at, email="Hanako@Example.com", name="山田花子")
    insert(shop, "20260201-BBBB", at, email="taro@example.com", name="佐藤太郎")
    insert(shop, "20260201-CCCC", at, email="x@example.com", name="100% Tea_Fan")
    admin = owner(shop)
    assert listed(admin.get("/admin/orders?q=bbbb")) == ["20260201-BBBB"]
    assert listed(admin.get("/admin/orders?q=hanako%40example.com")) == ["20260201-AAAA"]
    assert listed(admin.get("/admin/orders?q=%E5%B1%B1%E7%94%B0")) == ["20260201-AAAA"]  # 山田
    assert listed(admin.get("/admin/orders?q=%25")) == ["20260201-CCCC"]  # % is literal
    assert listed(admin.get("/admin/orders?q=nobody")) == []
    # the members page links here by email
    assert "hanako@example.com" in admin.get("/admin/orders?q=hanako@example.com").text


def test_the_csv_has_the_filtered_orders_with_a_bom_and_no_formulas(shop):
    at = dt.datetime(2026, 2, 1, 9, 0, tzinfo=TOKYO)
    insert(shop, "C1", at, email="a@example.com", name='=HYPERLINK("http://evil")')
    insert(shop, "C2", at + dt.timedelta(hours=1), email="@b@example.com", name="+81 -1")
    insert(shop, "C3", at + dt.timedelta(hours=2), email="c@example.com", name="山田花子")
    insert(shop, "OTHER", at - dt.timedelta(days=3), email="d@example.com", name="-x")
    resp = owner(shop).get("/admin/orders.csv?since=2026-02-01")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"].startswith('attachment; filename="orders-')
    assert resp.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["Order number", "Date", "Status", "Name", "Email"]
    by_number = {r[0]: r for r in rows[1:]}
    assert list(by_number) == ["C3", "C2", "C1"]  # the filter's orders, newest first
    assert by_number["C1"][3] == '\'=HYPERLINK("http://evil")'
    assert by_number["C2"][3:5] == ["'+81 -1", "'@b@example.com"]
    assert by_number["C3"][3] == "山田花子" and by_number["C3"][1] == "2026-02-01 11:00"
    assert by_number["C3"][8] == "1000"


# -- one order -----------------------------------------------------------------------------
def test_the_order_page_shows_every_part_of_the_order(shop):
    number = place(shop, delivery={"slot": "14-16"})
    pay(shop, number)
    shop.client.simulate_post(f"/api/v1/admin/orders/{number}/refund", headers=ADMIN,
                              json={"amount": 300, "reason": "chipped cup"})  # fmt: skip
    with shop.app.shop.store.tx() as tx:
        tx.execute("INSERT INTO payments_journal (gateway, event_id, order_number, type, amount, "
                   "currency, payload_json, outcome, received_at, applied_at) VALUES "
                   "('bank_transfer', 'evt-77', ?, 'payment.captured', 3700, 'JPY', '{}', 'paid', 1, 2)",
                   (number,))  # fmt: skip
    page = owner(shop).get(f"/admin/orders/{number}").text
    # lines, ※ on the reduced-rate line
    assert re.search(
        r'data-sku="TEA" data-qty="2">.*?<code>TEA</code></td><td[^>]*>Green tea ※', page
    )
    assert re.search(
        r'data-sku="CUP" data-qty="1">.*?<code>CUP</code></td><td[^>]*>Handmade cup</td>', page
    )
    # tax per rate: 2,400 at 8 % contains 177; 800 + 500 shipping at 10 % contain 118
    assert 'data-rate="8" data-amount="2400" data-tax="177"' in page
    assert 'data-rate="10" data-amount="1300" data-tax="118"' in page
    assert (
        'id="order-total" data-amount="3700"' in page
        and 'id="order-paid" data-amount="3700"' in page
    )
    assert 'id="order-refunded" data-amount="300"' in page
    assert "山田花子" in page and "hanako@example.com" in page and "千代田1-1" in page
    assert 'id="delivery-slot">14-16<' in page
    assert 'class="refund" data-amount="300"' in page
    assert 'data-to="paid" data-actor="admin"' in page and "chipped cup" in page
    assert 'data-type="payment.captured"' in page and "evt-77" in page
    for kind in ("order_received", "payment_received", "refunded"):
        assert f'data-kind="{kind}"' in page, kind
    # the actions a paid order allows, and print-outs
    for action in ("ship", "cancel", "refund", "slip", "receipt"):
        assert f'/admin/orders/{number}/{action}"' in page, action
    assert f'/admin/orders/{number}/mark-paid"' not in page
    assert owner(shop).get("/admin/orders/NO-SUCH").status_code == 404


# -- actions, each confirmed first ---------------------------------------------------------
def test_ship_says_what_leaves_the_stock_then_ships_and_audits(shop):
    number = place(shop)
    pay(shop, number)
    admin = owner(shop)
    confirm = admin.get(f"/admin/orders/{number}/ship")
    assert confirm.status_code == 200
    assert (
        "These units leave the stock" in confirm.text
        and "Green tea <code>TEA</code> × 2" in confirm.text
    )
    assert order(shop, number)["status"] == "paid"  # a GET changes nothing
    done = admin.post(f"/admin/orders/{number}/ship", {})
    assert (done.status_code, done.headers["location"]) == (303, f"/admin/orders/{number}")
    after = admin.get(done.headers["location"])
    assert FLASH.findall(after.text) == [f"Order {number} was shipped."]
    assert order(shop, number)["status"] == "shipped"
    assert 'data-to="shipped" data-actor="admin:owner"' in after.text
    [line] = audit.search(shop.app.shop.store, action="order.ship")
    assert (line["actor"], line["via"], line["target"]) == ("admin:owner", "web", number)
    assert (line["before"]["status"], line["after"]["status"]) == ("paid", "shipped")


def test_cancel_of_a_paid_order_says_it_refunds_then_does(shop):
    number = place(shop)
    pay(shop, number)
    admin = owner(shop)
    confirm = admin.get(f"/admin/orders/{number}/cancel")
    assert "the 3,700 JPY still paid on this order is refunded" in confirm.text
    assert "Cancel the order and refund 3,700 JPY" in confirm.text
    assert order(shop, number)["refunded_amount"] == 0
    assert admin.post(f"/admin/orders/{number}/cancel", {}).status_code == 303
    now = order(shop, number)
    assert (now["status"], now["refunded_amount"]) == ("cancelled", 3700)
    unpaid = place(shop)
    text = admin.get(f"/admin/orders/{unpaid}/cancel").text
    assert "Nothing was paid on this order, so nothing is refunded." in text
    assert admin.post(f"/admin/orders/{unpaid}/cancel", {}).status_code == 303
    assert audit_lines(shop) == [("order.cancel", number, "admin:owner"),
                                 ("order.cancel", unpaid, "admin:owner")]  # fmt: skip


def test_a_partial_refund_is_asked_confirmed_then_made(shop):
    number = place(shop)
    pay(shop, number)
    admin = owner(shop)
    form = admin.get(f"/admin/orders/{number}/refund")
    assert (
        'id="refund-form"' in form.text
        and 'name="amount"' in form.text
        and 'value="3700"' in form.text
    )
    confirm = admin.get(f"/admin/orders/{number}/refund?amount=1%2C000&reason=late")
    assert 'id="refund-amount" data-amount="1000"' in confirm.text
    assert "2,700 JPY stays paid; the order stays “Paid”." in confirm.text
    assert order(shop, number)["refunded_amount"] == 0
    done = admin.post(f"/admin/orders/{number}/refund", {"amount": "1000", "reason": "late"})
    assert done.status_code == 303
    assert FLASH.findall(admin.get(done.headers["location"]).text) == [
        f"1,000 JPY was refunded on order {number}."]  # fmt: skip
    now = order(shop, number)
    assert (now["status"], now["refunded_amount"]) == ("paid", 1000)
    [line] = audit.search(shop.app.shop.store, action="order.refund")
    assert line["before"]["refund"] == 1000 and line["actor"] == "admin:owner"
    # the rest settles the order as refunded
    rest = admin.get(f"/admin/orders/{number}/refund?amount=2700")
    assert "the order goes from “Paid” to “Refunded”" in rest.text


def test_mark_paid_is_confirmed_and_the_api_writes_the_same_audit_line(shop):
    number, other = place(shop), place(shop)
    admin = owner(shop)
    assert (
        "3,700 JPY is recorded as received." in admin.get(f"/admin/orders/{number}/mark-paid").text
    )
    assert admin.post(f"/admin/orders/{number}/mark-paid", {}).status_code == 303
    pay(shop, other)  # through the admin API: the same desk, the same line
    assert audit_lines(shop, via="") == [("order.mark_paid", number, "admin:owner"),
                                 ("order.mark_paid", other, "token")]  # fmt: skip
    assert order(shop, number)["status"] == order(shop, other)["status"] == "paid"


def test_refused_actions_are_readable_4xx_pages_and_change_nothing(shop):
    unpaid, paid = place(shop), place(shop)
    pay(shop, paid)
    admin = owner(shop)
    for page in (
        admin.get(f"/admin/orders/{unpaid}/ship"),
        admin.post(f"/admin/orders/{unpaid}/ship", {}),
    ):
        assert page.status_code == 409
        assert "“Accepted, unpaid”: only a paid order can be shipped." in page.text
    over = admin.get(f"/admin/orders/{paid}/refund?amount=5000")
    assert over.status_code == 400 and "Enter an amount from 1 to 3,700 JPY." in over.text
    assert 'id="refund-form"' in over.text  # the form again
    assert admin.get(f"/admin/orders/{paid}/refund?amount=abc").status_code == 400
    posted = admin.post(f"/admin/orders/{paid}/refund", {"amount": "5000"})
    assert posted.status_code == 400 and "Enter an amount from 1 to 3,700 JPY." in posted.text
    assert admin.post(f"/admin/orders/{paid}/refund", {"amount": "0"}).status_code == 400
    nothing = admin.get(f"/admin/orders/{unpaid}/refund")
    assert nothing.status_code == 400 and "Nothing is left to refund" in nothing.text
    admin.post(f"/admin/orders/{paid}/ship", {})
    admin.get(f"/admin/orders/{paid}")
    late = admin.post(f"/admin/orders/{paid}/cancel", {})
    assert late.status_code == 409 and "“Shipped”: it can no longer be cancelled." in late.text
    assert admin.get("/admin/orders/NO-SUCH/cancel").status_code == 404
    assert [order(shop, n)["refunded_amount"] for n in (unpaid, paid)] == [0, 0]
    assert audit_lines(shop) == [("order.ship", paid, "admin:owner")]


def test_staff_ship_and_cancel_unpaid_orders_but_may_not_refund(shop):
    paid, unpaid = place(shop), place(shop)
    pay(shop, paid)
    clerk = staff(shop)
    page = clerk.get(f"/admin/orders/{paid}").text
    assert 'id="action-refund-owner-only"' in page and f'/admin/orders/{paid}/refund"' not in page
    for refused in (clerk.get(f"/admin/orders/{paid}/refund"),
                    clerk.post(f"/admin/orders/{paid}/refund", {"amount": "100"}),
                    clerk.get(f"/admin/orders/{paid}/cancel"),
                    clerk.post(f"/admin/orders/{paid}/cancel", {})):  # fmt: skip
        assert refused.status_code == 403
        assert "Only an owner can do this: money would go back to the buyer." in refused.text
    now = order(shop, paid)
    assert (now["status"], now["refunded_amount"]) == ("paid", 0)
    assert audit_lines(shop) == []
    assert clerk.post(f"/admin/orders/{unpaid}/cancel", {}).status_code == 303
    clerk.get(f"/admin/orders/{paid}/ship")
    assert clerk.post(f"/admin/orders/{paid}/ship", {}).status_code == 303
    assert audit_lines(shop) == [("order.cancel", unpaid, "admin:staff"),
                                 ("order.ship", paid, "admin:staff")]  # fmt: skip


# -- bulk edits ----------------------------------------------------------------------------
def bulk(admin, data: dict) -> str:
    admin.get("/admin/orders")
    resp = admin.post("/admin/orders/bulk", data)
    assert resp.status_code == 303, resp.text
    return str(resp.headers["location"])


def test_a_bulk_cancel_over_a_filter_needs_the_right_count_and_keeps_its_set(shop):
    who = {**CUSTOMER, "email": "bulk@example.com"}
    chosen = [place(shop, who) for _ in range(3)]
    bystander = place(shop)
    admin = owner(shop)
    listing = admin.get("/admin/orders?q=bulk%40example.com").text
    assert 'id="bulk-cancel-filter"' in listing
    preview_url = bulk(admin, {"bulk": "cancel:filter", "q": "bulk@example.com"})
    preview = admin.get(preview_url)
    assert 'id="bulk-count" data-count="3"' in preview.text
    assert sorted(re.findall(r'<tr data-number="([^"]+)">', preview.text)) == sorted(chosen)
    late = place(shop, who)  # matches the filter, but after the preview
    wrong = admin.post(preview_url, {"count": "4"})
    assert wrong.status_code == 400 and "You typed 4, but this changes 3 orders" in wrong.text
    assert admin.post(preview_url, {"count": ""}).status_code == 400
    assert {order(shop, n)["status"] for n in [*chosen, late, bystander]} == {"accepted"}
    assert audit_lines(shop) == []
    done = admin.post(preview_url, {"count": "3"})
    assert (done.status_code, done.headers["location"]) == (303, preview_url)
    results = admin.get(preview_url).text
    assert FLASH.findall(results) == ["3 of 3 orders were cancelled."]
    assert results.count('data-done="1"') == 3
    assert [order(shop, n)["status"] for n in chosen] == ["cancelled"] * 3
    assert order(shop, late)["status"] == order(shop, bystander)["status"] == "accepted"
    assert sorted(audit_lines(shop)) == sorted(("order.cancel", n, "admin:owner") for n in chosen)
    assert admin.post(preview_url, {"count": "3"}).status_code == 409  # once
    assert len(audit_lines(shop)) == 3


def test_a_bulk_edit_wants_a_selection_or_an_explicit_filter(shop):
    place(shop)
    admin = owner(shop)
    listing = admin.get("/admin/orders").text
    assert 'id="bulk-cancel-selected"' in listing and 'id="bulk-cancel-filter"' not in listing
    no_filter = admin.post("/admin/orders/bulk", {"bulk": "cancel:filter"})
    assert no_filter.status_code == 400 and "a bulk edit never takes every order" in no_filter.text
    admin.get("/admin/orders")
    nothing = admin.post("/admin/orders/bulk", {"bulk": "ship:selected"})
    assert nothing.status_code == 400 and "Tick at least one order first." in nothing.text
    assert admin.get("/admin/orders/bulk/not-a-preview-key").status_code == 404
    assert audit_lines(shop) == []


def test_bulk_ship_of_ticked_orders_leaves_out_what_cannot_ship(shop):
    paid = [place(shop), place(shop)]
    for n in paid:
        pay(shop, n)
    unpaid = place(shop)
    admin = owner(shop)
    preview_url = bulk(
        admin, {"bulk": "ship:selected", **{f"pick.{n}": "1" for n in [*paid, unpaid]}}
    )
    preview = admin.get(preview_url).text
    assert 'data-count="2"' in preview
    assert re.search(rf'<li data-number="{unpaid}">.*only a paid order can be shipped', preview)
    assert admin.post(preview_url, {"count": "2"}).status_code == 303
    assert [order(shop, n)["status"] for n in [*paid, unpaid]] == ["shipped", "shipped", "accepted"]
    assert sorted(audit_lines(shop)) == sorted(("order.ship", n, "admin:owner") for n in paid)


def test_a_bulk_edit_reports_an_order_that_changed_since_the_preview(shop):
    first, second = place(shop), place(shop)
    admin = owner(shop)
    preview_url = bulk(
        admin, {"bulk": "cancel:selected", f"pick.{first}": "1", f"pick.{second}": "1"}
    )
    admin.get(preview_url)
    shop.client.simulate_post(f"/api/v1/admin/orders/{second}/cancel", headers=ADMIN)
    assert admin.post(preview_url, {"count": "2"}).status_code == 303
    results = admin.get(preview_url).text
    assert FLASH.findall(results) == ["1 of 2 orders were cancelled."]
    assert re.search(
        rf'data-number="{second}" data-done="0">.*?it can no longer be cancelled', results, re.S
    )


def test_staff_bulk_cancel_leaves_paid_orders_alone(shop):
    paid, unpaid = place(shop), place(shop)
    pay(shop, paid)
    clerk = staff(shop)
    preview_url = bulk(
        clerk, {"bulk": "cancel:selected", f"pick.{paid}": "1", f"pick.{unpaid}": "1"}
    )
    preview = clerk.get(preview_url).text
    assert 'data-count="1"' in preview and "Only an owner can do this" in preview
    assert clerk.post(preview_url, {"count": "1"}).status_code == 303
    assert [order(shop, n)["status"] for n in (paid, unpaid)] == ["paid", "cancelled"]
    assert order(shop, paid)["refunded_amount"] == 0


# -- print-outs ----------------------------------------------------------------------------
def test_the_packing_slip_has_no_prices_and_the_receipt_tax_per_rate(shop):
    number = place(shop, delivery={"slot": "morning"})
    admin = owner(shop)
    slip = admin.get(f"/admin/orders/{number}/slip").text
    paper = slip[slip.index('id="slip"') :]
    assert "JPY" not in paper and "1,200" not in paper
    assert 'data-sku="TEA" data-qty="2"' in paper and 'id="slip-units">3<' in paper
    assert "千代田区" in paper and "morning" in paper
    unpaid = admin.get(f"/admin/orders/{number}/receipt")
    assert unpaid.status_code == 409 and "not paid" in unpaid.text
    pay(shop, number)
    receipt = admin.get(f"/admin/orders/{number}/receipt").text
    assert 'id="receipt-amount" data-amount="3700"' in receipt
    assert re.search(
        r'class="line reduced" data-sku="TEA"><td>Green tea <span class="mark">※', receipt
    )
    assert re.search(r'class="line" data-sku="CUP"><td>Handmade cup</td>', receipt)
    assert re.search(r'data-rate="8" data-amount="2400" data-tax="177"><td>8% items ※', receipt)
    assert 'data-rate="10" data-amount="1300" data-tax="118"' in receipt
    assert "Registration number: T1234567890123" in receipt
    css = shop.client.simulate_get("/static/shop.css").text
    assert "@media print" in css and ".no-print" in css
