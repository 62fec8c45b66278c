"""The storefront pages' security through gunicorn: CSRF refusals, the session
cookie's flags, and the Content-Security-Policy with no inline script on any page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import requests

from tests.pages.conftest import ADDRESS

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "en"}
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


class Inline(HTMLParser):
    """Finds inline script and style: <script> or <style> with text, style= and on*=."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.scripts: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self._open = tag if tag in ("script", "style") else None
        if tag == "script":
            self.scripts.append(names.get("src") or "")
        self.found += [f"{tag} {a}=" for a in names if a == "style" or a.startswith("on")]

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.found.append(f"<{self._open}>{data.strip()[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def check_page(resp: requests.Response) -> None:
    assert resp.headers["Content-Type"].startswith("text/html"), resp.url
    policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] in ("same-origin", "no-referrer", "strict-origin")
    parser = Inline()
    parser.feed(resp.text)
    assert parser.found == [], (resp.url, parser.found)
    assert all(src.startswith("/static/") for src in parser.scripts), parser.scripts


def shopper() -> requests.Session:
    http = requests.Session()
    http.headers.update(HTML)
    return http


def token(page: requests.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.url
    return found.group(1)


def test_a_form_post_without_a_csrf_token_is_refused(make_stack: Any) -> None:
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5)
    url = stack.shop.url
    http = shopper()
    home = http.get(f"{url}/")
    for form in ({"sku": "TEA"}, {"sku": "TEA", "csrf_token": "f" * 64}):
        refused = http.post(f"{url}/cart/add", data=form, allow_redirects=False)
        assert refused.status_code == 403, refused.text
        check_page(refused)
    stranger = requests.post(f"{url}/cart/add", data={"sku": "TEA", "csrf_token": token(home)},
                             headers=HTML, allow_redirects=False)  # fmt: skip
    assert stranger.status_code == 403  # another browser's token is worth nothing
    assert "Set-Cookie" not in stranger.headers
    for path in ("/checkout", "/checkout/place", "/cart/update"):
        assert http.post(f"{url}{path}", data={}, allow_redirects=False).status_code == 403
    ok = http.post(f"{url}/cart/add", data={"sku": "TEA", "csrf_token": token(home)},
                   allow_redirects=False)  # fmt: skip
    assert (ok.status_code, ok.headers["Location"]) == (303, "/cart")


def test_the_session_cookie_is_httponly_lax_and_secure_on_https(make_stack: Any) -> None:
    plain = make_stack("embedded")
    cookie = requests.get(f"{plain.shop.url}/", headers=HTML).headers["Set-Cookie"]
    name, value = cookie.split(";")[0].split("=", 1)
    assert name == "ecshop_session" and re.fullmatch(r"[0-9a-f]{32}\.[0-9a-f]{64}", value)
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "max-age", "samesite"} <= flags and "secure" not in flags
    assert "SameSite=Lax" in cookie
    https = make_stack("embedded", ECSHOP_BASE_URL="https://shop.example")
    cookie = requests.get(f"{https.shop.url}/", headers=HTML).headers["Set-Cookie"]
    assert cookie.startswith("__Host-ecshop_session=")
    assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie


def test_every_page_has_the_policy_and_no_inline_script(make_stack: Any) -> None:
    stack = make_stack("embedded")
    stack.add_product("TEA", 1200, 5, name='<script>alert(1)</script>" onload="x')
    url = stack.shop.url
    http = shopper()
    pages = [http.get(f"{url}/"), http.get(f"{url}/?q=tea"), http.get(f"{url}/products/TEA")]
    pages.append(
        http.post(f"{url}/cart/add", data={"sku": "TEA", "qty": 1, "csrf_token": token(pages[0])})
    )
    pages.append(http.get(f"{url}/checkout"))
    pages.append(http.post(f"{url}/checkout", data={**ADDRESS, "gateway": "sandbox",
                                                     "csrf_token": token(pages[0])}))  # fmt: skip
    review = pages[-1]
    assert review.url.endswith("/checkout/review"), review.text
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', review.text).group(1)  # type: ignore[union-attr]
    handoff = http.post(f"{url}/checkout/place", data={"idempotency_key": key,
                                                        "csrf_token": token(review)})  # fmt: skip
    assert 'http-equiv="refresh"' in handoff.text and stack.gateway.url in handoff.text
    [order] = stack.orders()
    assert stack.gateway.settle(re.search(r'id="continue" href="([^"]+)"', handoff.text)  # type: ignore[union-attr]
                                .group(1).replace("&amp;", "&"), "pay") == 303  # fmt: skip
    pages += [
        handoff,
        http.get(f"{url}/cart"),
        http.get(f"{url}/nothing"),
        http.get(f"{url}/products/NOPE"),
        http.post(f"{url}/cart/add", data={}),
    ]
    detail = stack.order(order["number"])
    assert detail["status"] in ("pending_payment", "paid")
    for page in pages:
        check_page(page)
    assert "<script>alert(1)" not in "".join(p.text for p in pages)
