"""Admin stock endpoints and the ``ecshop stock`` CLI functions, over each engine."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import falcon
import falcon.testing
import pytest

from ecshop.errors import ShopError
from ecshop.resources import admin_stock, errors
from ecshop.stock import cli
from ecshop.store import Store

from .conftest import OrderMirror


@pytest.fixture
def client(shelf: Any) -> falcon.testing.TestClient:
    app = falcon.App()
    app.add_error_handler(ShopError, errors.handle_shop_error)
    app.set_error_serializer(errors.serialize_http_error)
    admin_stock.add_routes(app, SimpleNamespace(stock=shelf))
    return falcon.testing.TestClient(app)


def test_list_pages_by_sku(client: falcon.testing.TestClient) -> None:
    first = client.simulate_get("/api/v1/admin/stock", params={"limit": 2}).json
    assert [i["sku"] for i in first["items"]] == ["CUP", "POT"]
    assert first["items"][0] == {
        "sku": "CUP", "on_hand": 2, "available": 2, "held": 0, "sold_unshipped": 0,
    }  # fmt: skip
    rest = client.simulate_get("/api/v1/admin/stock", params={"after": first["next_after"]}).json
    assert [i["sku"] for i in rest["items"]] == ["TEA"] and rest["next_after"] is None


def test_adjust_and_put(client: falcon.testing.TestClient) -> None:
    r = client.simulate_post(
        "/api/v1/admin/stock/TEA/adjust", json={"delta": -2, "reason": "damaged"}
    )
    assert r.status_code == 200 and r.json["on_hand"] == 3
    r = client.simulate_post("/api/v1/admin/stock/TEA/adjust", json={"delta": -9, "reason": "lost"})
    assert r.status_code == 409 and r.json["error"]["code"] == "out_of_stock"
    r = client.simulate_post("/api/v1/admin/stock/TEA/adjust", json={"delta": "x", "reason": "a"})
    assert r.status_code == 400
    r = client.simulate_post("/api/v1/admin/stock/TEA/adjust", body="{not json",
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 400
    r = client.simulate_post("/api/v1/admin/stock/NOPE/adjust", json={"delta": 1, "reason": "a"})
    assert r.status_code == 404
    r = client.simulate_put("/api/v1/admin/stock/TEA", json={"on_hand": 40, "expected_on_hand": 42})
    assert r.status_code == 409 and r.json["error"]["on_hand"] == 3
    r = client.simulate_put("/api/v1/admin/stock/TEA", json={"on_hand": 40, "expected_on_hand": 3})
    assert r.status_code == 200 and r.json["on_hand"] == 40
    r = client.simulate_put("/api/v1/admin/stock/TEA", json={"on_hand": 40})
    assert r.status_code == 400
    assert client.simulate_get("/api/v1/admin/stock/TEA").json["available"] == 40


def test_import_dry_run_then_apply(client: falcon.testing.TestClient, shelf: Any) -> None:
    csv = "sku,on_hand,expected_on_hand\nTEA,7,5\nCUP,1\n"
    r = client.simulate_post("/api/v1/admin/stock/import", params={"dry_run": "1"}, body=csv)
    assert r.status_code == 200 and r.json["dry_run"] is True
    assert [(i["sku"], i["delta"]) for i in r.json["items"]] == [("TEA", 2), ("CUP", -1)]
    assert shelf.levels(["TEA"])["TEA"].on_hand == 5
    r = client.simulate_post("/api/v1/admin/stock/import", body=csv)
    assert r.status_code == 200 and r.json["applied"] is True
    assert shelf.levels(["TEA"])["TEA"].on_hand == 7
    r = client.simulate_post("/api/v1/admin/stock/import", body=csv)
    assert r.status_code == 409  # TEA's base is stale now
    assert shelf.levels(["CUP"])["CUP"].on_hand == 1


def test_import_reports_malformed_rows_by_line(
    client: falcon.testing.TestClient, shelf: Any
) -> None:
    csv = "TEA,9\nCUP,-1\nPOT\n\nTEA,3\nPOT,x,1\n"
    r = client.simulate_post("/api/v1/admin/stock/import", body=csv)
    assert r.status_code == 400
    assert [e["line"] for e in r.json["error"]["errors"]] == [2, 3, 5, 6]
    assert shelf.levels(["TEA"])["TEA"].on_hand == 5


def test_audit_and_rebuild(
    client: falcon.testing.TestClient,
    shelf: Any,
    stock_store: Store,
    capsys: pytest.CaptureFixture[str],
) -> None:
    OrderMirror(stock_store, shelf).place("o1", [("TEA", 2)])
    assert client.simulate_get("/api/v1/admin/stock/audit").json == {
        "items": [], "next_after": None, "consistent": True,
    }  # fmt: skip
    r = client.simulate_post("/api/v1/admin/stock/rebuild")
    assert r.status_code == 200 and r.json["consistent"] is True
    shop = SimpleNamespace(stock=shelf)
    assert cli.audit(shop, fix=False) == 0
    with stock_store.tx() as tx:  # drift: on_hand changed behind the ledger's back
        tx.execute(
            "UPDATE stock SET on_hand = on_hand + 1, available = available + 1 WHERE sku = 'CUP'"
        )
    assert cli.audit(shop, fix=False) == 1
    out = capsys.readouterr().out
    assert "CUP" in out and "drift" in out
    # the audit trail no longer sums to on_hand: a rebuild cannot make that right
    assert cli.audit(shop, fix=True) == 1
    assert cli.rebuild(shop) == 1
