"""Hostile input through the WSGI app: media types, deep nesting, patterns anchored at
the very end, request ids and generic 500s, the storefront's script policy."""

from __future__ import annotations

import logging
import re

import pytest
from falcon import testing

from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.resources._http import MAX_DEPTH, nesting_depth_over
from ecshop.schema import EMAIL_PATTERN, SKU_PATTERN, matches
from ecshop.store import open_store

TOKEN = "t0ken-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
CART = b'{"lines": [{"sku": "TEA", "qty": 1}], "customer": {"email": "a@b.c"}, "gateway": "none"}'


@pytest.fixture
def client(sqlite_url, tmp_path):
    open_store(sqlite_url).migrate()
    config = load_config({"ECSHOP_DATABASE_URL": sqlite_url, "ECSHOP_ADMIN_TOKEN": TOKEN,
                          "ECSHOP_PLUGINS_DIR": str(tmp_path / "no-plugins")})  # fmt: skip
    app = create_app(config)
    yield testing.TestClient(app)
    app.shop.close()


def products(client) -> list[str]:
    with client.app.shop.store.read() as tx:
        return [r["sku"] for r in tx.query("SELECT sku FROM products")]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/json; charset=latin-1", "application/jsonp", "text/json"],
)  # fmt: skip
def test_json_endpoints_take_only_json_415_otherwise(client, content_type):
    headers = {**ADMIN, **({"Content-Type": content_type} if content_type else {})}
    body = b'{"sku": "TEA", "name": "Tea", "price": 100}'
    for path, extra in (("/api/v1/admin/products", ADMIN), ("/api/v1/checkout", {})):
        resp = client.simulate_post(path, body=body if "admin" in path else CART,
                                    headers={**headers, **extra})  # fmt: skip
        assert resp.status_code == 415, (path, resp.text)
        assert resp.json["error"]["code"] == "unsupported_media_type"
        assert "application/json" in resp.json["error"]["message"]
    # A form cannot post to a bodiless write either (cancel, ship…).
    if content_type:
        resp = client.simulate_post("/api/v1/admin/stock/rebuild", headers=headers)
        assert resp.status_code == 415
    assert products(client) == []


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON; Charset=UTF-8"])  # fmt: skip
def test_json_with_or_without_utf8_charset_is_taken(client, content_type):
    resp = client.simulate_post("/api/v1/admin/products", headers={**ADMIN, "Content-Type": content_type},
                                body=b'{"sku": "TEA", "name": "Tea", "price": 100}')  # fmt: skip
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"a":' * 50_000, b"[" * 100_000 + b"]" * 100_000,
     b'{"sku": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"],
)  # fmt: skip
def test_deep_nesting_is_400_with_a_readable_message(client, raw):
    for path in ("/api/v1/admin/products", "/api/v1/checkout"):
        resp = client.simulate_post(path, body=raw, headers={**ADMIN, **JSON})
        assert resp.status_code == 400, resp.text
        assert resp.json["error"]["code"] == "bad_request"
        assert "deeper than 32 levels" in resp.json["error"]["message"]
    assert products(client) == []


def test_nesting_depth_counts_brackets_outside_strings_only():
    assert not nesting_depth_over(b'{"name": "' + b"[" * 1000 + b'"}')
    assert not nesting_depth_over(b'{"a": "\\"[[[[", "b": [[1]]}', 3)
    assert nesting_depth_over(b"[[[[1]]]]", 3)
    assert not nesting_depth_over(b"[[[1]]]", 3)
    assert not nesting_depth_over(b"[1], " * 10_000 + b"[]", 1)


@pytest.mark.parametrize(
    "raw", [b'{"price": NaN}', b'{"price": Infinity}', b'{"price": -Infinity}']
)
def test_nan_and_infinity_are_not_json(client, raw):
    resp = client.simulate_post("/api/v1/admin/products", body=raw, headers={**ADMIN, **JSON})
    assert resp.status_code == 400 and "not valid JSON" in resp.json["error"]["message"]


def test_patterns_are_anchored_at_the_very_end():
    for pattern, good in ((SKU_PATTERN, "SKU-1"), (EMAIL_PATTERN, "a@b.c")):
        assert matches(good, pattern)
        for bad in (good + "\n", good + "\r\n", "\n" + good, good + "\n\n"):
            assert not matches(bad, pattern), (pattern, bad)


def test_trailing_newline_in_sku_or_email_is_400(client):
    created = client.simulate_post("/api/v1/admin/products", headers=ADMIN,
                                   json={"sku": "SKU-1\n", "name": "n", "price": 1})  # fmt: skip
    assert created.status_code == 400 and created.json["error"]["field"] == "sku"
    assert products(client) == []
    for cart, field in (
        ({"lines": [{"sku": "SKU-1\n", "qty": 1}], "customer": {"email": "a@b.c"}}, "lines[0].sku"),
        (
            {"lines": [{"sku": "SKU-1", "qty": 1}], "customer": {"email": "a@b.c\n"}},
            "customer.email",
        ),
    ):
        resp = client.simulate_post("/api/v1/checkout", json={**cart, "gateway": "sandbox"})
        assert resp.status_code == 400, resp.text
        assert resp.json["error"]["field"] == field
    for path in ("/api/v1/products/SKU-1%0A", "/api/v1/admin/stock/SKU-1%0A"):
        resp = client.simulate_get(path, headers=ADMIN)
        assert resp.status_code == 400 and resp.json["error"]["field"] == "sku", path


def test_parameters_are_checked_with_the_field_named(client):
    for params, field in (({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
                          ({"limit": "501"}, "limit"), ({"after": ""}, "after")):  # fmt: skip
        resp = client.simulate_get("/api/v1/products", params=params)
        assert resp.status_code == 400 and resp.json["error"]["field"] == field, params
    resp = client.simulate_get("/api/v1/admin/orders", params={"status": "stolen"}, headers=ADMIN)
    assert resp.status_code == 400 and resp.json["error"]["field"] == "status"
    key = {"Idempotency-Key": "k" * 256}
    resp = client.simulate_post("/api/v1/checkout", body=CART, headers={**JSON, **key})
    assert resp.status_code == 400 and resp.json["error"]["field"] == "Idempotency-Key"


def test_a_plugin_error_is_a_generic_500_with_the_request_id(client, caplog):
    def leaky(product):
        raise RuntimeError("secret-db-password-in-plugin-text")

    assert client.simulate_post("/api/v1/admin/products", headers=ADMIN,
                                json={"sku": "TEA", "name": "Tea", "price": 1}).status_code == 201  # fmt: skip
    client.app.shop.hooks.add_filter("product_view", leaky, plugin="leaky")
    with caplog.at_level(logging.ERROR, logger="ecshop.http"):
        given = client.simulate_get("/api/v1/products/TEA", headers={"X-Request-Id": "front-42.a"})
        made = client.simulate_get("/api/v1/products", headers={"X-Request-Id": "bad id\n<x>"})
    for resp in (given, made):
        assert resp.status_code == 500
        assert "secret" not in resp.text and "leaky" not in resp.text
        error = resp.json["error"]
        assert error["code"] == "internal_error"
        assert error["request_id"] == resp.headers["X-Request-Id"] in error["message"]
    assert given.headers["X-Request-Id"] == "front-42.a"
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["X-Request-Id"])
    logged = [r for r in caplog.records if r.exc_info]
    assert [given.headers["X-Request-Id"] in r.getMessage() for r in logged] == [True, False]
    assert all("secret-db-password" in str(r.exc_info[1].__cause__) for r in logged)


def test_every_answer_carries_a_request_id(client):
    for resp in (client.simulate_get("/healthz"), client.simulate_get("/nothing"),
                 client.simulate_post("/api/v1/admin/products", json={})):  # fmt: skip
        assert re.fullmatch(r"[0-9a-f]{16}", resp.headers["X-Request-Id"])


def test_storefront_has_no_inline_script_and_escapes_data(client):
    name = "</script><script>alert(1)</script>\" onmouseover='x'"
    assert client.simulate_post("/api/v1/admin/products", headers=ADMIN,
                                json={"sku": "X-1", "name": name, "price": 5}).status_code == 201  # fmt: skip
    page = client.simulate_get("/")
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S) == []
    assert "onclick" not in page.text and "<script>alert" not in page.text
    assert 'data-sku="X-1"' in page.text and "&lt;/script&gt;" in page.text
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text).group(1)
    css = client.simulate_get(href.replace("&amp;", "&"))
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "max-age=" in css.headers["Cache-Control"] and css.headers["ETag"]
    again = client.simulate_get(href, headers={"If-None-Match": css.headers["ETag"]})
    assert again.status_code == 304
    js = client.simulate_get("/static/handoff.js")
    assert js.status_code == 200 and js.headers["Content-Type"].startswith("text/javascript")
    assert client.simulate_get("/static/../app.py").status_code in (400, 404)
    assert client.simulate_get("/static/nothing.js").status_code == 404
