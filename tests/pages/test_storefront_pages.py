"""The storefront's pages in process: catalog, cart, checkout, review, order page,
sessions, CSRF, languages, themes and the HTML error pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ecshop.money import format_money
from tests.pages.conftest import ADDRESS, ADMIN


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_data(self, data):
        if self._in and data.strip():
            self.inline.append(data)


def parse(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    return tags


def buy_until_review(shopper, items, gateway="bank_transfer"):
    for sku, qty in items:
        assert shopper.post("/cart/add", {"sku": sku, "qty": qty}).status_code == 303
    assert shopper.get("/checkout").status_code == 200
    resp = shopper.post("/checkout", {**ADDRESS, "gateway": gateway})
    assert (resp.status_code, resp.headers.get("location")) == (303, "/checkout/review"), resp.text
    return shopper.get("/checkout/review")


def review_key(page) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page.text).group(1)


def test_catalog_pages_and_searches(shop):
    for i in range(30):
        shop.add_product(f"TEA-{i:03d}", 500 + i, 3, name=f"Tea number {i}")
    shop.add_product("MUG-1", 900, 0, name="Blue mug")
    shopper = shop.shopper()
    first = shopper.get("/")
    assert first.status_code == 200
    assert first.text.count('class="product"') == 24
    following = re.search(r'id="next-page" href="([^"]+)"', first.text).group(1)
    second = shopper.get(following.replace("&amp;", "&"))
    assert second.text.count('class="product"') == 7 and "next-page" not in second.text
    assert "Blue mug" in first.text and "Sold out" in first.text  # MUG-1 sorts first
    assert "Tea number 29" in second.text
    found = shopper.get("/?q=mug")
    assert found.text.count('class="product"') == 1 and "Blue mug" in found.text
    assert shopper.get("/?q=100%25").text.count('class="product"') == 0  # % is literal


def test_cart_clamps_updates_and_removes(shop):
    shop.add_product("TEA", 1200, 5, name="Green tea")
    shop.add_product("CUP", 300, 10, name="Cup", max_per_order=2)
    shopper = shop.shopper()
    shopper.post("/cart/add", {"sku": "TEA", "qty": 9})
    cart = shopper.get("/cart")
    assert 'data-sku="TEA" data-qty="5"' in cart.text
    assert "Only 5 of Green tea can be bought now." in cart.text
    shopper.post("/cart/add", {"sku": "CUP", "qty": 1})
    shopper.post("/cart/update", {"sku": "CUP", "qty": 7})
    cart = shopper.get("/cart")
    assert 'data-sku="CUP" data-qty="2"' in cart.text
    assert f"Subtotal: {format_money(5 * 1200 + 2 * 300, 'JPY')}" in cart.text
    shopper.post("/cart/update", {"sku": "TEA", "qty": 1, "remove": "1"})
    cart = shopper.get("/cart")
    assert 'data-sku="TEA"' not in cart.text and 'data-sku="CUP"' in cart.text
    assert shopper.post("/cart/add", {"sku": "NOPE", "qty": 1}).status_code == 404
    shopper.post("/cart/update", {"sku": "CUP", "qty": "9" * 40})  # clamped, not dropped
    assert 'data-sku="CUP" data-qty="2"' in shopper.get("/cart").text
    shopper.post("/cart/update", {"sku": "CUP", "qty": "two"})  # not a number: unchanged
    assert 'data-sku="CUP" data-qty="2"' in shopper.get("/cart").text


def test_cart_survives_a_restart(make_shop):
    first = make_shop()
    first.add_product("TEA", 1200, 5)
    shopper = first.shopper()
    shopper.post("/cart/add", {"sku": "TEA", "qty": 2})
    again = make_shop()  # a new process on the same database and key
    shopper.client = again.client
    assert 'data-sku="TEA" data-qty="2"' in shopper.get("/cart").text


def test_a_form_post_without_the_csrf_token_is_refused(shop):
    shop.add_product("TEA", 1200, 5)
    shopper = shop.shopper()
    shopper.get("/")
    refused = shopper.post("/cart/add", {"sku": "TEA", "qty": 1}, csrf=False)
    assert refused.status_code == 403 and refused.headers["Content-Type"].startswith("text/html")
    assert 'data-code="csrf_failed"' in refused.text
    forged = shopper.post("/cart/add", {"sku": "TEA", "qty": 1, "csrf_token": "0" * 64}, csrf=False)
    assert forged.status_code == 403
    stranger = shop.shopper()  # no session at all
    assert (
        stranger.post("/cart/add", {"sku": "TEA", "csrf_token": "x"}, csrf=False).status_code == 403
    )
    assert "ecshop_session" not in stranger.cookies  # a refused request leaves no session
    assert 'data-sku="TEA"' not in shopper.get("/cart").text


def test_session_cookie_flags_follow_the_base_url(make_shop):
    plain = make_shop().client.simulate_get("/").headers["set-cookie"]
    assert plain.startswith("ecshop_session=") and "HttpOnly" in plain
    assert "SameSite=Lax" in plain and "Secure" not in plain
    https = make_shop(ECSHOP_BASE_URL="https://shop.example").client.simulate_get("/")
    cookie = https.headers["set-cookie"]
    assert cookie.startswith("__Host-ecshop_session=") and "Secure" in cookie
    assert "Path=/" in cookie and "Domain" not in cookie


def test_every_page_has_the_headers_and_no_inline_script(shop):
    shop.add_product("X-1", 5, 3, name="</script><script>alert(1)</script>\" onmouseover='x'")
    shopper = shop.shopper()
    review = buy_until_review(shopper, [("X-1", 1)])
    pages = [shopper.get("/"), shopper.get("/products/X-1"), shopper.get("/cart"),
             shopper.get("/checkout"), review, shopper.get("/nothing")]  # fmt: skip
    for page in pages:
        assert page.headers["Content-Type"].startswith("text/html")
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
        tags = parse(page.text)
        assert tags.inline == []
        for tag, attrs in tags.tags:
            assert "style" not in attrs and not any(a.startswith("on") for a in attrs), tag
            if tag == "script":
                assert attrs["src"].startswith("/static/")
        assert "<script>alert" not in page.text


def test_review_shows_the_checkout_totals_and_holds_nothing(shop):
    shop.add_product("TEA", 1200, 5, name="Green tea")
    shopper = shop.shopper()
    review = buy_until_review(shopper, [("TEA", 2)])
    # the built-in shipping plugin charges 500 below 5,000 through cart_totals
    assert 'class="shipping" data-amount="500"' in review.text
    assert 'id="summary-total" data-amount="2900"' in review.text
    levels = shop.client.simulate_get("/api/v1/admin/stock", headers=ADMIN).json["items"]
    assert [(i["sku"], i["available"], i["held"]) for i in levels] == [("TEA", 5, 0)]


def test_checkout_form_errors_are_a_400_page(shop):
    shop.add_product("TEA", 1200, 5)
    shopper = shop.shopper()
    shopper.post("/cart/add", {"sku": "TEA", "qty": 1})
    shopper.get("/checkout")
    bad = shopper.post("/checkout", {**ADDRESS, "email": "nope", "postal_code": "12",
                                     "prefecture": "Atlantis", "gateway": "sandbox"})  # fmt: skip
    assert bad.status_code == 400
    for name in ("email", "postal_code", "prefecture", "gateway"):
        assert f'id="error-{name}"' in bad.text
    assert 'value="千代田区"' in bad.text  # what was typed is kept


def test_placing_twice_with_one_key_makes_one_order(shop):
    shop.add_product("TEA", 1200, 5)
    shopper = shop.shopper()
    review = buy_until_review(shopper, [("TEA", 2)])
    key, token = review_key(review), shopper.csrf()
    first = shopper.post(
        "/checkout/place", {"idempotency_key": key, "csrf_token": token}, csrf=False
    )
    second = shopper.post(
        "/checkout/place", {"idempotency_key": key, "csrf_token": token}, csrf=False
    )
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(shop.orders()) == 1
    order_page = shopper.get(first.headers["location"])
    assert 'data-status="accepted"' in order_page.text
    assert "Example Bank 123-4567" in order_page.text and 'id="pay-by"' in order_page.text
    assert "〒100-0001 東京都千代田区" in order_page.text  # where it goes
    assert shopper.get("/cart").text.count('class="line"') == 0


def test_a_sell_out_during_checkout_goes_back_to_the_cart(shop):
    shop.add_product("TEA", 1200, 2, name="Green tea")
    shopper = shop.shopper()
    review = buy_until_review(shopper, [("TEA", 2)])
    rival = shop.shopper()
    buy_until_review(rival, [("TEA", 1)])
    rival.post("/checkout/place", {"idempotency_key": review_key(rival.last)})
    placed = shopper.post("/checkout/place", {"idempotency_key": review_key(review)})
    assert (placed.status_code, placed.headers["location"]) == (303, "/cart")
    cart = shopper.get("/cart")
    assert "Green tea sold out while you were checking out" in cart.text
    assert 'data-sku="TEA" data-qty="1"' in cart.text
    assert len(shop.orders()) == 1


def test_order_page_needs_its_token(shop):
    shop.add_product("TEA", 1200, 5)
    shopper = shop.shopper()
    review = buy_until_review(shopper, [("TEA", 1)])
    link = shopper.post("/checkout/place", {"idempotency_key": review_key(review)}).headers[
        "location"
    ]
    assert shop.shopper().get(link).status_code == 200
    wrong = shop.shopper().get(link.split("?")[0] + "?token=nope")
    assert wrong.status_code == 404 and "Page not found" in wrong.text


def test_language_from_accept_language_and_the_switch(shop):
    shop.add_product("TEA", 1200, 5)
    japanese = shop.shopper(**{"Accept-Language": "ja,en;q=0.5"})
    assert "カートに入れる" in japanese.get("/").text
    switched = japanese.get("/lang/en?next=/cart")
    assert (switched.status_code, switched.headers["location"]) == (303, "/cart")
    assert japanese.cookies["lang"] == "en" and "Add to cart" in japanese.get("/").text
    assert japanese.get("/lang/ja?next=//evil.example/").headers["location"] == "/"
    assert japanese.get("/lang/xx").status_code == 400


def test_browsers_get_html_errors_and_api_clients_json(shop):
    browser = shop.shopper()
    page = browser.get("/products/NOPE")
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")
    assert 'id="error-message"' in page.text
    api = browser.get("/api/v1/products/NOPE")
    assert api.status_code == 404 and api.json["error"]["code"] == "not_found"
    plain = shop.client.simulate_get("/products/NOPE")
    assert plain.headers["Content-Type"].startswith("application/json")


def test_maintenance_is_a_503_page_with_the_message(shop):
    assert shop.client.simulate_post("/api/v1/admin/maintenance", headers=ADMIN, json={
        "on": True, "message": "Moving to a new server"}).status_code == 200  # fmt: skip
    page = shop.shopper().get("/")
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "Moving to a new server" in page.text and page.headers["Content-Type"].startswith(
        "text/html"
    )
    api = shop.client.simulate_get("/api/v1/products")
    assert api.status_code == 503 and api.json["error"]["code"] == "maintenance"


def test_a_theme_overrides_templates_and_the_context_filter_applies(make_shop, tmp_path):
    theme = tmp_path / "theme"
    theme.mkdir()
    (theme / "cart.html").write_text('{% extends "base.html" %}{% block main %}<p id="themed">'
                                     "{{ cart.count }} items</p>{% endblock %}")  # fmt: skip
    shop = make_shop(ECSHOP_THEME_DIR=str(theme))
    shop.app.shop.hooks.add_filter("storefront_context",
                                   lambda ctx, template: {**ctx, "shop_name": "Ocha-ya"})  # fmt: skip
    shopper = shop.shopper()
    assert '<p id="themed">0 items</p>' in shopper.get("/cart").text
    assert ">Ocha-ya</a>" in shopper.get("/").text


class FormGateway:
    """A gateway whose provider takes a posted form (as FormPay does)."""

    title = "Form pay"
    test_mode = False

    def hold_seconds(self):
        return None

    def start_payment(self, order, *, notify_url, return_url):
        from ecshop.payments.base import PaymentStart

        return PaymentStart(form_action="https://pay.example/checkout",
                            form_fields={"order": order.number, "amount": str(order.amount),
                                         "note": '"><script>alert(1)</script>'})  # fmt: skip


def test_a_form_post_gateway_gets_a_hand_off_form_that_works_without_script(shop):
    shop.app.shop.plugins.gateways["formpay"] = FormGateway()
    shop.add_product("TEA", 6000, 5)
    shopper = shop.shopper()
    review = buy_until_review(shopper, [("TEA", 1)], gateway="formpay")
    page = shopper.post("/checkout/place", {"idempotency_key": review_key(review)})
    assert page.status_code == 200
    tags = parse(page.text)
    [form] = [attrs for tag, attrs in tags.tags if tag == "form" and attrs.get("id") == "handoff"]
    assert form["action"] == "https://pay.example/checkout" and form["method"] == "post"
    hidden = {
        a["name"]: a["value"] for t, a in tags.tags if t == "input" and a.get("type") == "hidden"
    }
    assert hidden["amount"] == "6000" and hidden["note"] == '"><script>alert(1)</script>'
    assert any(t == "button" and a.get("id") == "continue" for t, a in tags.tags)
    scripts = [a["src"] for t, a in tags.tags if t == "script"]
    assert len(scripts) == 1 and scripts[0].startswith("/static/handoff.js?v=")
    assert "http-equiv" not in page.text and tags.inline == []
    policy = page.headers["Content-Security-Policy"]
    assert "form-action 'self' https://pay.example;" in policy and "unsafe-inline" not in policy


def test_a_payment_method_switched_off_after_the_form_asks_again(shop):
    shop.add_product("TEA", 1200, 5)
    shopper = shop.shopper()
    buy_until_review(shopper, [("TEA", 1)], gateway="cod")
    del shop.app.shop.plugins.gateways["cod"]
    review = shopper.get("/checkout/review")
    assert (review.status_code, review.headers["location"]) == (303, "/checkout")
    assert "Choose a payment method." in shopper.get("/checkout").text


def test_a_plugins_checkout_check_is_shown_on_the_cart(shop):
    shop.add_product("TEA", 1200, 5)
    shopper = shop.shopper()
    review = buy_until_review(shopper, [("TEA", 1)])
    shop.app.shop.hooks.add_filter(
        "checkout_validate", lambda errors, cart: [*errors, "No tea today"]
    )
    placed = shopper.post("/checkout/place", {"idempotency_key": review_key(review)})
    assert (placed.status_code, placed.headers["location"]) == (303, "/cart")
    assert "No tea today" in shopper.get("/cart").text and shop.orders() == []


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cf000000030101009b0d1ac60000000049454e44ae426082"
)


def test_a_product_picture_from_the_media_folder_is_served_with_cache_headers(make_shop, tmp_path):
    folder = tmp_path / "media" / "products"
    folder.mkdir(parents=True)
    (folder / "TEA.png").write_bytes(PNG)
    (tmp_path / "media" / "secret.png").write_bytes(b"not for the web")
    shop = make_shop(ECSHOP_MEDIA_DIR=str(tmp_path / "media"))
    shop.add_product("TEA", 1200, 5)
    shop.add_product("MUG", 900, 5)
    shopper = shop.shopper()
    img = [a for t, a in parse(shopper.get("/products/TEA").text).tags if t == "img"]
    assert len(img) == 1 and img[0]["src"].startswith("/media/products/TEA.png?v=")
    assert [t for t, _ in parse(shopper.get("/products/MUG").text).tags].count("img") == 0
    picture = shopper.get(img[0]["src"].replace("&amp;", "&"))
    assert picture.status_code == 200 and picture.content == PNG
    assert picture.headers["Content-Type"] == "image/png"
    assert "max-age=" in picture.headers["Cache-Control"] and picture.headers["ETag"]
    again = shopper.get(
        "/media/products/TEA.png", headers={"If-None-Match": picture.headers["ETag"]}
    )
    assert again.status_code == 304
    for name in ("..%2Fsecret.png", "MUG.png", "TEA.svg", "TEA.png%00.txt"):
        assert shopper.get(f"/media/products/{name}").status_code in (400, 404), name
