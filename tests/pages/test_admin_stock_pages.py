"""The admin's stock pages in process: adjust with a reason, a count on a stale base
that shows both values and overwrites nothing, a CSV import whose preview changes
nothing and whose apply writes exactly the preview (or a new preview when the stock
moved), drift and rebuild, each with its audit line."""

from __future__ import annotations

import re

import pytest

from tests.pages.conftest import ADMIN


def levels(shop, sku):
    return shop.client.simulate_get(f"/api/v1/admin/stock/{sku}", headers=ADMIN).json


def on_hands(shop):
    items = shop.client.simulate_get("/api/v1/admin/stock", headers=ADMIN).json["items"]
    return {i["sku"]: i["on_hand"] for i in items}


def api_adjust(shop, sku, delta):
    resp = shop.client.simulate_post(f"/api/v1/admin/stock/{sku}/adjust", headers=ADMIN,
                                     json={"delta": delta, "reason": "meanwhile"})  # fmt: skip
    assert resp.status_code == 200, resp.text


def audit_lines(owner, action):
    page = owner.get(f"/admin/audit?action={action}").text
    return re.findall(
        rf'data-action="{re.escape(action)}" data-target="([^"]*)" data-actor="([^"]+)"', page
    )


@pytest.fixture
def stocked(media_shop):
    for sku, on_hand in (("A", 10), ("B", 5), ("C", 3)):
        media_shop.add_product(sku, 1000, on_hand, name=f"Item {sku}")
    return media_shop


def upload_csv(owner, text, name="counts.csv"):
    owner.get("/admin/stock/import")
    return owner.upload("/admin/stock/import", {}, {"csv": (name, text.encode())})


def diff_rows(page):
    return re.findall(r'<tr data-sku="([^"]+)" data-status="([^"]+)" data-before="([^"]*)" '
                      r'data-after="([^"]+)"', page.text)  # fmt: skip


def apply_key(page):
    return re.search(r'id="import-apply-form">\s*<input type="hidden" name="csrf_token" value="[^"]+">'
                     r'\s*<input type="hidden" name="key" value="([^"]+)"', page.text).group(1)  # fmt: skip


def test_the_list_shows_every_level_and_adjust_moves_on_hand_with_a_reason(stocked, owner):
    page = owner.get("/admin/stock")
    assert page.status_code == 200
    row = re.search(r'<tr id="stock-A" data-sku="A" data-on-hand="10">.*?</tr>', page.text, re.S)
    assert row and 'name="expected_on_hand" value="10"' in row.group(0)
    done = owner.post("/admin/stock/adjust", {"sku": "A", "delta": "+5", "reason": "received",
                                              "back": "/admin/stock"})  # fmt: skip
    assert (done.status_code, done.headers["location"]) == (303, "/admin/stock#stock-A")
    assert levels(stocked, "A")["on_hand"] == 15
    assert "A: on hand 10 → 15." in owner.get("/admin/stock").text
    assert audit_lines(owner, "stock.adjust") == [("A", "admin:owner")]
    with stocked.app.shop.store.read() as tx:
        change = tx.one("SELECT delta, reason, actor FROM stock_changes WHERE sku = 'A' "
                        "ORDER BY id DESC LIMIT 1")  # fmt: skip
    assert dict(change) == {"delta": 5, "reason": "received", "actor": "admin:owner"}


def test_a_refused_adjustment_changes_nothing_and_keeps_the_input(stocked, owner):
    for form, field, status in (({"delta": "lots", "reason": "x"}, "delta", 400),
                                ({"delta": "0", "reason": "x"}, "delta", 400),
                                ({"delta": "2", "reason": "  "}, "reason", 400),
                                ({"delta": "-99", "reason": "lost"}, "", 409)):  # fmt: skip
        owner.get("/admin/stock")
        refused = owner.post("/admin/stock/adjust", {"sku": "B", **form})
        assert refused.status_code == status, form
        assert f'id="stock-error" role="alert" data-field="{field}"' in refused.text
        assert f'value="{form["delta"]}"' in refused.text
    assert on_hands(stocked) == {"A": 10, "B": 5, "C": 3}
    assert audit_lines(owner, "stock.") == []


def test_a_count_on_a_stale_base_shows_both_values_and_overwrites_nothing(stocked, owner):
    page = owner.get("/admin/stock").text
    base = re.search(r'name="sku" value="A">\s*<input type="hidden" name="back" value="[^"]*">'
                     r'\s*<input type="hidden" name="expected_on_hand" value="(\d+)"', page).group(1)  # fmt: skip
    assert base == "10"
    api_adjust(stocked, "A", -3)  # a sale or another admin, after the page was loaded
    stale = owner.post("/admin/stock/set", {"sku": "A", "on_hand": "12", "expected_on_hand": base})
    assert stale.status_code == 409
    assert '<dd id="page-had">10</dd>' in stale.text and '<dd id="now-on-hand">7</dd>' in stale.text
    assert '<dd id="your-count">12</dd>' in stale.text
    assert levels(stocked, "A")["on_hand"] == 7
    assert audit_lines(owner, "stock.set") == []
    # the page offers the count again against the value now
    assert 'name="expected_on_hand" value="7"' in stale.text
    done = owner.post("/admin/stock/set", {"sku": "A", "on_hand": "12", "expected_on_hand": "7"})
    assert done.status_code == 303 and levels(stocked, "A")["on_hand"] == 12
    assert audit_lines(owner, "stock.set") == [("A", "admin:owner")]


def test_a_csv_preview_changes_nothing_and_apply_writes_exactly_it(stocked, owner):
    shown = upload_csv(owner, "sku,on_hand\nA,12\nB,5\nC,1\n")
    assert shown.status_code == 303 and shown.headers["location"].startswith(
        "/admin/stock/import?key="
    )
    page = owner.get(shown.headers["location"])
    assert diff_rows(page) == [("A", "change", "10", "12"), ("B", "unchanged", "5", "5"),
                               ("C", "change", "3", "1")]  # fmt: skip
    assert on_hands(stocked) == {"A": 10, "B": 5, "C": 3}
    assert audit_lines(owner, "stock.import") == []
    key = apply_key(page)
    done = owner.post("/admin/stock/import/apply", {"key": key})
    assert (done.status_code, done.headers["location"]) == (303, "/admin/stock")
    assert on_hands(stocked) == {"A": 12, "B": 5, "C": 1}
    assert audit_lines(owner, "stock.import") == [("3 SKUs", "admin:owner")]
    owner.get("/admin/stock")
    again = owner.post("/admin/stock/import/apply", {"key": key})
    assert again.headers["location"] == "/admin/stock/import"  # a preview applies once
    assert on_hands(stocked) == {"A": 12, "B": 5, "C": 1}


def test_stock_moved_after_the_preview_gives_the_new_diff_instead(stocked, owner):
    page = owner.get(upload_csv(owner, "A,12\nC,1\n").headers["location"])
    key = apply_key(page)
    api_adjust(stocked, "A", 1)  # A: 11 now, the preview said 10
    moved = owner.post("/admin/stock/import/apply", {"key": key})
    assert moved.status_code == 409 and 'id="import-message"' in moved.text
    assert diff_rows(moved) == [("A", "change", "11", "12"), ("C", "change", "3", "1")]
    assert on_hands(stocked) == {"A": 11, "B": 5, "C": 3}  # nothing applied, C neither
    fresh = apply_key(moved)
    assert fresh != key
    assert owner.post("/admin/stock/import/apply", {"key": key}).status_code == 303
    assert on_hands(stocked) == {"A": 11, "B": 5, "C": 3}  # the old preview is gone
    owner.get(f"/admin/stock/import?key={fresh}")
    assert owner.post("/admin/stock/import/apply", {"key": fresh}).status_code == 303
    assert on_hands(stocked) == {"A": 12, "B": 5, "C": 1}


def test_csv_errors_are_shown_by_line_and_refused_rows_block_the_apply(stocked, owner):
    bad = upload_csv(owner, "sku,on_hand\nA,12\nB,many\nA,3\n")
    assert bad.status_code == 400
    assert re.findall(r'<tr data-line="(\d+)">', bad.text) == ["3", "4"]
    preview = upload_csv(owner, "A,12,9\nNOPE,3\n").headers["location"]
    refused = owner.get(preview)
    assert diff_rows(refused) == [("A", "stale", "10", "12"), ("NOPE", "unknown_sku", "", "3")]
    assert 'id="import-apply-form"' not in refused.text and 'id="import-refused"' in refused.text
    key = preview.split("key=")[1]
    forced = owner.post("/admin/stock/import/apply", {"key": key})
    assert forced.status_code == 409
    assert on_hands(stocked) == {"A": 10, "B": 5, "C": 3}
    missing = owner.upload("/admin/stock/import", {}, {})
    assert missing.status_code == 400


def test_an_upload_without_the_forms_token_is_refused(stocked, owner):
    owner.get("/admin/stock/import")
    forged = owner.upload("/admin/stock/import", {}, {"csv": ("x.csv", b"A,1\n")}, csrf=False)
    assert forged.status_code == 403
    assert 'name="key"' not in owner.get("/admin/stock/import").text


def test_drift_is_shown_and_a_confirmed_rebuild_clears_it(stocked, owner):
    with stocked.app.shop.store.tx() as tx:  # the engine's counter drifts from the record
        tx.execute("UPDATE stock SET available = 2 WHERE sku = 'B'")
    page = owner.get("/admin/stock/audit")
    assert '<tr data-sku="B">' in page.text and 'id="to-rebuild"' in page.text
    ask = owner.get("/admin/stock/rebuild")
    assert ask.status_code == 200 and 'id="rebuild-form"' in ask.text
    assert '<tr data-sku="B">' in owner.get("/admin/stock/audit").text  # asking fixes nothing
    owner.get("/admin/stock/rebuild")
    done = owner.post("/admin/stock/rebuild", {})
    assert (done.status_code, done.headers["location"]) == (303, "/admin/stock/audit")
    assert 'id="no-drift"' in owner.get("/admin/stock/audit").text
    assert audit_lines(owner, "stock.rebuild") == [("engine", "admin:owner")]
