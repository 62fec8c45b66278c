"""Bulk edits of products behind their guard: an explicit choice of products, a preview
with old and new values, the count typed to confirm, the set fixed at the preview, and
nothing touched on a wrong count or when a product moved meanwhile."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from ecshop.bulkedit import new_price
from tests.pages.conftest import ADMIN


def prices(shop):
    items = shop.client.simulate_get("/api/v1/admin/products", headers=ADMIN).json["items"]
    return {p["sku"]: (p["price"], p["active"]) for p in items}


def preview(owner, pairs):
    owner.get("/admin/products")
    planned = owner.post("/admin/bulk", pairs)
    assert planned.status_code == 303, planned.text
    page = owner.get(planned.headers["location"])
    assert page.status_code == 200
    key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)
    return page, key


def apply(owner, key, count):
    owner.get("/admin/products")  # a page with the admin session's token
    return owner.post("/admin/bulk/apply", {"key": key, "count": count})


def lines(page):
    return re.findall(r'<tr data-sku="([^"]+)" data-old="([^"]+)" data-new="([^"]+)"', page.text)


@pytest.fixture
def catalog_of_five(media_shop):
    for sku, price in (("TEA-1", 1005), ("TEA-2", 1999), ("TEA-3", 500), ("MUG", 2500)):
        media_shop.add_product(sku, price, 5, name=f"Item {sku}")
    media_shop.add_product("TEA-OLD", 800, 0, name="Old tea", active=False)
    return media_shop


def test_rounding_is_half_up_to_a_whole_yen():
    assert new_price(1005, Decimal(-10)) == 905  # 904.5
    assert new_price(1999, Decimal(-10)) == 1799  # 1799.1
    assert new_price(100, Decimal("7.5")) == 108  # 107.5
    assert new_price(333, Decimal(10)) == 366  # 366.3


def test_ticked_products_by_a_percentage_previewed_then_applied(catalog_of_five, owner):
    before = prices(catalog_of_five)
    page, key = preview(owner, [("scope", "selected"), ("sku", "TEA-1"), ("sku", "TEA-2"),
                                ("action", "price_percent"), ("value", "-10")])  # fmt: skip
    assert 'data-count="2"' in page.text
    assert lines(page) == [("TEA-1", "1005", "905"), ("TEA-2", "1999", "1799")]
    assert prices(catalog_of_five) == before  # a preview changes nothing
    done = apply(owner, key, "2")
    assert done.status_code == 303
    after = prices(catalog_of_five)
    assert after == {**before, "TEA-1": (905, True), "TEA-2": (1799, True)}
    audit = owner.get("/admin/audit?action=product.update").text
    assert audit.count('data-action="product.update"') == 2 and "admin:owner" in audit
    assert apply(owner, key, "2").status_code == 303
    assert prices(catalog_of_five) == after  # the plan is used once


def test_a_wrong_count_touches_nothing_and_the_set_stays_fixed(catalog_of_five, owner):
    before = prices(catalog_of_five)
    page, key = preview(owner, [("scope", "filter"), ("q", "tea"), ("state", "active"),
                                ("action", "deactivate"), ("value", "")])  # fmt: skip
    assert [sku for sku, _, _ in lines(page)] == ["TEA-1", "TEA-2", "TEA-3"]
    for typed in ("4", "", "all", "03"):
        refused = apply(owner, key, typed)
        assert refused.status_code == 400 and 'id="bulk-error"' in refused.text
        assert prices(catalog_of_five) == before
    catalog_of_five.add_product("TEA-4", 700, 5)  # matches the search after the preview
    done = apply(owner, key, "3")
    assert done.status_code == 303
    after = prices(catalog_of_five)
    assert [s for s, (_, active) in after.items() if not active] == [
        "TEA-1", "TEA-2", "TEA-3", "TEA-OLD"]  # fmt: skip
    assert after["TEA-4"] == (700, True)  # not in the previewed set


def test_no_products_unless_picked_or_searched_explicitly(catalog_of_five, owner):
    before = prices(catalog_of_five)
    owner.get("/admin/products")
    for pairs in ([("scope", "selected"), ("action", "price_set"), ("value", "100")],
                  [("scope", "filter"), ("q", ""), ("state", ""), ("action", "price_set"),
                   ("value", "100")],
                  [("scope", "selected"), ("sku", "MUG"), ("action", "price_set"),
                   ("value", "12x")]):  # fmt: skip
        refused = owner.post("/admin/bulk", pairs)
        assert refused.status_code == 400 and 'id="bulk-error"' in refused.text, pairs
    assert prices(catalog_of_five) == before


def test_a_product_changed_after_the_preview_gives_a_new_preview(catalog_of_five, owner):
    page, key = preview(owner, [("scope", "selected"), ("sku", "TEA-1"), ("sku", "MUG"),
                                ("action", "price_percent"), ("value", "10")])  # fmt: skip
    assert lines(page) == [("MUG", "2500", "2750"), ("TEA-1", "1005", "1106")]
    catalog_of_five.client.simulate_put("/api/v1/admin/products/MUG", headers=ADMIN,
                                        json={"price": 3000})  # fmt: skip
    moved = apply(owner, key, "2")
    assert moved.status_code == 409
    assert lines(moved) == [("MUG", "3000", "3300"), ("TEA-1", "1005", "1106")]
    assert prices(catalog_of_five)["TEA-1"] == (1005, True)  # nothing was applied
    fresh = re.search(r'name="key" value="([^"]+)"', moved.text).group(1)
    assert fresh != key
    assert apply(owner, key, "2").status_code == 303
    assert prices(catalog_of_five)["MUG"] == (3000, True)  # the old preview is gone
    assert apply(owner, fresh, "2").status_code == 303
    assert prices(catalog_of_five)["MUG"] == (3300, True)
