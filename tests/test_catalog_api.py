"""The catalog and admin product API, on SQLite and on MariaDB."""

from __future__ import annotations

import json

import pytest
from falcon import testing

from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.resources._declare import operation_of

TOKEN = "t0ken-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def snapshot(store) -> dict[str, list[dict]]:
    with store.read() as tx:
        return {
            table: tx.query(f"SELECT * FROM {table} ORDER BY 1")
            for table in ("products", "stock", "stock_changes", "orders")
        }


@pytest.fixture
def client(db_url, tmp_path):
    config = load_config({"ECSHOP_DATABASE_URL": db_url, "ECSHOP_ADMIN_TOKEN": TOKEN,
                          "ECSHOP_PLUGINS_DIR": str(tmp_path / "no-plugins")})  # fmt: skip
    from ecshop.store import open_store

    open_store(db_url).migrate()
    app = create_app(config)
    yield testing.TestClient(app)
    app.shop.close()


def add(client, **fields):
    body = {"sku": "TEA-1", "name": "Tea", "price": 500, **fields}
    return client.simulate_post("/api/v1/admin/products", json=body, headers=ADMIN)


def test_create_list_get_product(client):
    created = add(client, sku="TEA-1", name="Sencha", price=1200, on_hand=7, description="green")
    assert created.status_code == 201, created.text
    assert created.json["sku"] == "TEA-1"
    listed = client.simulate_get("/api/v1/products")
    assert listed.status_code == 200
    assert listed.json["next_after"] is None
    [item] = listed.json["items"]
    assert item == {"sku": "TEA-1", "name": "Sencha", "description": "green", "price": 1200,
                    "currency": "JPY", "active": True, "max_per_order": None, "available": 7,
                    "tax_class": "standard"}  # fmt: skip
    assert client.simulate_get("/api/v1/products/TEA-1").json["available"] == 7


def test_japanese_name_round_trips_byte_for_byte(client):
    name = "テスト商品 🍵"
    assert add(client, sku="JP-1", name=name).status_code == 201
    raw = client.simulate_get("/api/v1/products/JP-1").content
    assert json.loads(raw.decode("utf-8"))["name"].encode("utf-8") == name.encode("utf-8")
    assert name.encode("utf-8") in raw


def test_paging_walks_every_product_once(client):
    for i in range(7):
        assert add(client, sku=f"P-{i}").status_code == 201
    seen, after = [], None
    while True:
        page = client.simulate_get(
            "/api/v1/products", params={"limit": 3, **({"after": after} if after else {})}
        )
        seen += [p["sku"] for p in page.json["items"]]
        after = page.json["next_after"]
        if after is None:
            break
    assert seen == [f"P-{i}" for i in range(7)]


def test_update_and_delete(client):
    add(client)
    changed = client.simulate_put(
        "/api/v1/admin/products/TEA-1", json={"price": 650, "name": "Tea 2"}, headers=ADMIN
    )
    assert changed.status_code == 200 and changed.json["price"] == 650
    assert client.simulate_delete("/api/v1/admin/products/TEA-1", headers=ADMIN).status_code == 204
    assert client.simulate_get("/api/v1/products/TEA-1").status_code == 404
    assert client.simulate_get("/api/v1/products").json["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sku": "X", "name": "n", "price": -1}, "price"),
        ({"sku": "X", "name": "n", "price": "100"}, "price"),
        ({"sku": "X", "name": "n", "price": 1.5}, "price"),
        ({"sku": "X", "name": "n", "price": True}, "price"),
        ({"sku": "X", "name": "", "price": 1}, "name"),
        ({"sku": "X", "name": 5, "price": 1}, "name"),
        ({"sku": "bad sku!", "name": "n", "price": 1}, "sku"),
        ({"sku": "X", "name": "n", "price": 1, "currency": "USD"}, "currency"),
        ({"sku": "X", "name": "n", "price": 1, "on_hand": -3}, "on_hand"),
        ({"sku": "X", "name": "n", "price": 1, "colour": "red"}, "colour"),
    ],
)
def test_bad_product_input_is_400_and_writes_nothing(client, body, field):
    before = snapshot(client.app.shop.store)
    resp = client.simulate_post("/api/v1/admin/products", json=body, headers=ADMIN)
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "validation_error"
    assert resp.json["error"]["field"] == field
    assert resp.json["error"]["message"]
    assert snapshot(client.app.shop.store) == before


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b"", b"\xff\xfe", b'{"sku": "X", "name": "n", "price": 1'],
)
def test_malformed_json_is_400_and_writes_nothing(client, raw):
    before = snapshot(client.app.shop.store)
    resp = client.simulate_post(
        "/api/v1/admin/products", body=raw, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert set(resp.json["error"]) >= {"code", "message"}
    assert snapshot(client.app.shop.store) == before


def test_two_mib_body_is_413_and_writes_nothing(client):
    before = snapshot(client.app.shop.store)
    body = json.dumps(
        {"sku": "BIG", "name": "n", "price": 1, "description": "x" * (2 * 1024 * 1024)}
    )
    resp = client.simulate_post("/api/v1/admin/products", body=body,
                                headers={**ADMIN, "Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 413
    assert resp.json["error"]["code"] == "payload_too_large"
    assert snapshot(client.app.shop.store) == before


def test_unknown_sku_is_404(client):
    for method, path in [("GET", "/api/v1/products/NOPE"), ("PUT", "/api/v1/admin/products/NOPE"),
                         ("DELETE", "/api/v1/admin/products/NOPE")]:  # fmt: skip
        resp = client.simulate_request(method, path, json={"price": 1}, headers=ADMIN)
        assert resp.status_code == 404, (method, path)
        assert resp.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="},
                                     {"Authorization": f"Bearer {TOKEN}x"}])  # fmt: skip
def test_missing_or_wrong_admin_token_is_401_and_writes_nothing(client, headers):
    before = snapshot(client.app.shop.store)
    resp = client.simulate_post(
        "/api/v1/admin/products", json={"sku": "X", "name": "n", "price": 1}, headers=headers
    )
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "unauthorized"
    assert snapshot(client.app.shop.store) == before


def test_admin_api_refuses_when_no_token_is_configured(sqlite_url, tmp_path):
    from ecshop.store import open_store

    open_store(sqlite_url).migrate()
    config = load_config(
        {"ECSHOP_DATABASE_URL": sqlite_url, "ECSHOP_PLUGINS_DIR": str(tmp_path / "none")}
    )
    app = create_app(config)
    client = testing.TestClient(app)
    for headers in ({}, {"Authorization": "Bearer "}):
        resp = client.simulate_post(
            "/api/v1/admin/products", json={"sku": "X", "name": "n", "price": 1}, headers=headers
        )
        assert resp.status_code == 403
    app.shop.close()


def test_wrong_method_is_405_and_unknown_route_404(client):
    resp = client.simulate_delete("/api/v1/products")
    assert resp.status_code == 405
    assert resp.json["error"]["code"]
    assert client.simulate_get("/api/v1/nothing-here").status_code == 404


def test_duplicate_sku_is_409(client):
    assert add(client).status_code == 201
    resp = add(client)
    assert resp.status_code == 409 and resp.json["error"]["sku"] == "TEA-1"


def test_openapi_document_lists_exactly_the_routes(client):
    doc = client.simulate_get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    app = client.app
    expected = set()
    for path, resource, suffix in app.route_table:
        for method in ("get", "post", "put", "patch", "delete"):
            responder = getattr(resource, f"on_{method}" + (f"_{suffix}" if suffix else ""), None)
            op = operation_of(responder)
            if responder is not None and not (op is not None and op.page):  # HTML pages: not API
                expected.add((path, method))
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert documented == expected
    assert ("/api/v1/products/{sku}", "get") in documented
    assert ("/api/v1/admin/products", "post") in documented
    for path, item in doc["paths"].items():
        for op in item.values():
            assert op["summary"] and op["responses"]
            if path.startswith("/api/v1/admin"):
                assert op["security"] == [{"adminToken": []}]
