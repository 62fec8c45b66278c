"""The admin's product pages in process: create, edit and archive with their audit lines,
bad fields kept on a 400 page that names them, and pictures taken by their content and
size, never by their name."""

from __future__ import annotations

import re

from ecshop.admins import AdminUsers
from ecshop.resources.admin_products import picture_limit
from ecshop.throttle import Throttle
from tests.pages.conftest import ADMIN, OWNER_PASSWORD, QUICK_HASHER, STAFF_PASSWORD, admin_login
from tests.pictures import jpeg, png

FIELDS = {"name": "Green tea", "description": "Spring leaves", "price": "1200",
          "tax_class": "reduced", "max_per_order": "3", "active": "1"}  # fmt: skip


def product(shop, sku):
    resp = shop.client.simulate_get(f"/api/v1/admin/products/{sku}", headers=ADMIN)
    return resp.json if resp.status_code == 200 else None


def create(owner, sku="TEA", files=None, **fields):
    owner.get("/admin/products/new")
    return owner.upload("/admin/products/new", {"sku": sku, **FIELDS, **fields}, files or {})


def audit_actions(owner, target):
    page = owner.get(f"/admin/audit?target={target}").text
    return re.findall(r'data-action="([^"]+)" data-target="[^"]*" data-actor="([^"]+)"', page)


def test_create_edit_and_archive_a_product_with_audit_lines(media_shop, owner):
    done = create(owner, on_hand="7")
    assert (done.status_code, done.headers["location"]) == (303, "/admin/products/TEA")
    assert product(media_shop, "TEA") == {
        "sku": "TEA", "name": "Green tea", "description": "Spring leaves", "price": 1200,
        "currency": "JPY", "active": True, "max_per_order": 3, "tax_class": "reduced"}  # fmt: skip
    levels = media_shop.client.simulate_get("/api/v1/admin/stock/TEA", headers=ADMIN).json
    assert levels["on_hand"] == 7
    page = owner.get("/admin/products/TEA")
    assert "TEA was created." in page.text and 'value="Green tea"' in page.text

    saved = owner.upload("/admin/products/TEA", {**FIELDS, "price": "1,500", "active": ""}, {})
    assert saved.status_code == 303
    changed = product(media_shop, "TEA")
    assert (changed["price"], changed["active"]) == (1500, False)
    listed = owner.get("/admin/products").text
    assert re.search(r'data-sku="TEA" data-state="inactive"', listed)

    ask = owner.get("/admin/products/TEA/archive")
    assert ask.status_code == 200 and 'id="archive-form"' in ask.text
    assert product(media_shop, "TEA") is not None  # asking archives nothing
    gone = owner.post("/admin/products/TEA/archive", {})
    assert (gone.status_code, gone.headers["location"]) == (303, "/admin/products")
    assert product(media_shop, "TEA") is None
    assert re.search(r'data-sku="TEA" data-state="archived"', owner.get("/admin/products").text)
    assert owner.get("/admin/products/TEA").status_code == 404
    assert media_shop.shopper().get("/products/TEA").status_code == 404
    assert audit_actions(owner, "TEA") == [("product.archive", "admin:owner"),
                                           ("product.update", "admin:owner"),
                                           ("product.create", "admin:owner")]  # fmt: skip


BAD_FIELDS = [("price", "12a"), ("price", "-5"), ("name", "  "), ("tax_class", "luxury"),
              ("max_per_order", "0"), ("sku", "bad sku"), ("on_hand", "many")]  # fmt: skip


def test_a_bad_field_is_a_400_page_that_keeps_the_input_and_names_it(media_shop, owner):
    for field, value in BAD_FIELDS:
        page = create(owner, **{field: value, "description": "kept text"})
        assert page.status_code == 400, field
        assert f'id="form-error" role="alert" data-field="{field}"' in page.text, field
        assert f'id="error-{field}"' in page.text
        assert "kept text" in page.text
        assert ("Green tea" in page.text) == (field != "name")
        if field not in ("tax_class", "name"):
            assert f'value="{value}"' in page.text
    listed = media_shop.client.simulate_get("/api/v1/admin/products", headers=ADMIN)
    assert listed.json["items"] == []


def test_a_taken_sku_is_a_409_and_an_edit_with_a_bad_price_changes_nothing(media_shop, owner):
    assert create(owner).status_code == 303
    again = create(owner, name="Other tea")
    assert again.status_code == 409 and 'data-field="sku"' in again.text
    assert 'value="Other tea"' in again.text
    owner.get("/admin/products/TEA")
    bad = owner.upload("/admin/products/TEA", {**FIELDS, "name": "Renamed", "price": "1.5"}, {})
    assert bad.status_code == 400 and 'data-field="price"' in bad.text
    assert 'value="Renamed"' in bad.text and 'value="1.5"' in bad.text
    assert product(media_shop, "TEA")["name"] == "Green tea"


def test_pictures_are_taken_for_their_bytes_and_shown_on_the_product_page(media_shop, owner):
    assert create(owner, files={"picture": ("leaf.png", png())}).status_code == 303
    assert (media_shop.media / "TEA.png").read_bytes() == png()
    shown = media_shop.shopper().get("/products/TEA").text
    link = re.search(r'<img class="picture" src="(/media/products/TEA\.png\?v=[^"]+)"', shown)
    assert link, shown
    served = media_shop.shopper().get(link.group(1).replace("&amp;", "&"))
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == png()

    owner.get("/admin/products/TEA")
    # a JPEG sent under a .png name with a claimed type of text: its bytes decide
    done = owner.upload("/admin/products/TEA", FIELDS, {"picture": ("photo.png", jpeg())})
    assert done.status_code == 303
    assert (media_shop.media / "TEA.jpg").read_bytes() == jpeg()
    assert not (media_shop.media / "TEA.png").exists()
    assert "/media/products/TEA.jpg?v=" in media_shop.shopper().get("/products/TEA").text
    pictures = [a for a in audit_actions(owner, "TEA") if a[0] == "product.picture"]
    assert len(pictures) == 2


def test_a_refused_picture_changes_nothing(media_shop, owner):
    limit = picture_limit(media_shop.app.shop.config.max_body)
    assert create(owner, files={"picture": ("leaf.png", png())}).status_code == 303
    for name, content in (("notes.png", b"just some text, not a picture\n"),
                          ("big.png", png() + b"\0" * (limit + 1 - len(png()))),
                          ("empty.png", b"")):  # fmt: skip
        owner.get("/admin/products/TEA")
        refused = owner.upload("/admin/products/TEA", {**FIELDS, "price": "999"},
                               {"picture": (name, content)})  # fmt: skip
        assert refused.status_code == 400 and 'data-field="picture"' in refused.text, name
        assert 'value="999"' in refused.text  # the input is kept
        assert product(media_shop, "TEA")["price"] == 1200  # nothing was saved
        assert (media_shop.media / "TEA.png").read_bytes() == png()
        assert sorted(p.name for p in media_shop.media.iterdir()) == ["TEA.png"]


def test_a_refused_picture_creates_no_product(media_shop, owner):
    refused = create(owner, files={"picture": ("x.png", b"GIF89a not accepted")})
    assert refused.status_code == 400 and 'data-field="picture"' in refused.text
    assert product(media_shop, "TEA") is None


def test_without_a_media_folder_a_picture_is_refused(make_shop):
    shop = make_shop()
    store = shop.app.shop.store
    AdminUsers(store, Throttle(store), hasher=QUICK_HASHER).create("owner", OWNER_PASSWORD, "owner")
    owner = shop.shopper()
    admin_login(owner)
    form = owner.get("/admin/products/new").text
    assert 'name="picture" type="file" accept="image/jpeg,image/png,image/webp" disabled' in form
    refused = create(owner, files={"picture": ("leaf.png", png())})
    assert refused.status_code == 400 and "ECSHOP_MEDIA_DIR" in refused.text


def test_the_list_searches_and_pages_and_shows_every_state(media_shop, owner):
    for i in range(55):
        media_shop.add_product(f"P{i:03d}", 100 + i, 1, name=f"Item {i}")
    media_shop.add_product("ZEN", 100, 1, name="Zen tea", active=False)
    first = owner.get("/admin/products").text
    assert first.count("<tr data-sku=") == 50 and 'id="next-page"' in first
    nxt = re.search(r'id="next-page" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = owner.get(nxt).text
    assert 'data-sku="P050"' in second and 'data-sku="ZEN" data-state="inactive"' in second
    found = owner.get("/admin/products?q=zen").text
    assert found.count("<tr data-sku=") == 1
    inactive = owner.get("/admin/products?state=inactive").text
    assert re.findall(r'<tr data-sku="([^"]+)"', inactive) == ["ZEN"]


def test_staff_may_edit_products_and_a_form_without_its_token_is_refused(media_shop):
    media_shop.add_product("TEA", 1200, 5)
    staff = media_shop.shopper()
    admin_login(staff, "staff", STAFF_PASSWORD)
    staff.get("/admin/products/TEA")
    assert staff.upload("/admin/products/TEA", FIELDS, {}).status_code == 303
    assert product(media_shop, "TEA")["name"] == "Green tea"
    forged = staff.upload("/admin/products/TEA", {**FIELDS, "name": "Forged"}, {}, csrf=False)
    assert forged.status_code == 403
    assert product(media_shop, "TEA")["name"] == "Green tea"
