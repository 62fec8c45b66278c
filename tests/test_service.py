"""The service endpoints' answers (ecshop.resources.service)."""

from __future__ import annotations

import logging

import pytest
from falcon import testing

from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.store import open_store

LEAK = "redis://:hunter2@cache.internal:6379 refused (secret detail)"


@pytest.fixture
def client(sqlite_url, tmp_path):
    open_store(sqlite_url).migrate()
    app = create_app(load_config({"ECSHOP_DATABASE_URL": sqlite_url,
                                  "ECSHOP_PLUGINS_DIR": str(tmp_path / "no-plugins")}))  # fmt: skip
    yield testing.TestClient(app)
    app.shop.close()


def test_health_names_the_failing_part_but_never_its_error(client, monkeypatch, caplog):
    assert client.simulate_get("/healthz").json == {
        "ok": True, "parts": {"database": {"ok": True},
                              "stock": {"ok": True, "engine": "SQLStockEngine"}}}  # fmt: skip

    def broken(*args, **kwargs):
        raise ConnectionError(LEAK)

    shop = client.app.shop
    monkeypatch.setattr(shop.stock, "levels", broken)
    monkeypatch.setattr(shop.store, "read", broken)
    with caplog.at_level(logging.WARNING, logger="ecshop"):
        resp = client.simulate_get("/healthz", headers={"X-Request-Id": "probe-1"})
    assert resp.status_code == 503
    assert resp.json == {"ok": False, "parts": {"database": {"ok": False, "error": "not answering"},
                                                "stock": {"ok": False, "error": "not answering"}}}  # fmt: skip
    assert "hunter2" not in resp.text and "secret" not in resp.text and "cache" not in resp.text
    # The reason is in the log, with its traceback.
    logged = [r for r in caplog.records if r.exc_info]
    assert {str(r.exc_info[1]) for r in logged} == {LEAK}


def test_the_admin_api_lists_every_gateway_with_its_test_mode(sqlite_url, tmp_path):
    open_store(sqlite_url).migrate()
    app = create_app(load_config({
        "ECSHOP_DATABASE_URL": sqlite_url, "ECSHOP_PLUGINS_DIR": str(tmp_path / "no-plugins"),
        "ECSHOP_ADMIN_TOKEN": "t" * 32, "ECSHOP_GATEWAY_SANDBOX_URL": "http://127.0.0.1:9",
        "ECSHOP_GATEWAY_SANDBOX_SECRET": "s" * 32}))  # fmt: skip
    client = testing.TestClient(app)
    admin = {"Authorization": f"Bearer {'t' * 32}"}
    try:
        assert client.simulate_get("/api/v1/admin/gateways").status_code == 401
        resp = client.simulate_get("/api/v1/admin/gateways", headers=admin)
        page = client.simulate_get("/api/v1/admin/gateways", params={"limit": 1}, headers=admin)
        rest = client.simulate_get("/api/v1/admin/gateways", headers=admin,
                                   params={"after": page.json["next_after"]})  # fmt: skip
    finally:
        app.shop.close()
    assert resp.status_code == 200 and resp.json["next_after"] is None
    gateways = {g["name"]: g for g in resp.json["items"]}
    assert gateways["sandbox"] == {"name": "sandbox", "title": gateways["sandbox"]["title"],
                                   "live": True, "test_mode": True, "offline": False,
                                   "problems": []}  # fmt: skip
    transfer = gateways["bank_transfer"]
    assert (transfer["test_mode"], transfer["offline"]) == (False, True)
    assert not transfer["live"] and transfer["problems"]  # its account is not set
    # pages by name
    assert page.json["items"] == resp.json["items"][:1]
    assert page.json["next_after"] == resp.json["items"][0]["name"]
    assert rest.json["items"] == resp.json["items"][1:]
