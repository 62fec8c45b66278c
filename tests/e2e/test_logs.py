"""The served shop's log: one configuration for gunicorn and the shop, and an access
line per request under its id."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import requests

from ecshop.testing.shop import ShopProcess

PLUGINS = str(Path(__file__).resolve().parents[2] / "plugins")
WAIT = 60  # bound on any wait: turns a hang into a failure, times nothing
ADMIN = secrets.token_hex(16)


def _shop(tmp_path, **env: str) -> ShopProcess:
    return ShopProcess(env={"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db",
                            "ECSHOP_PLUGINS_DIR": PLUGINS, "ECSHOP_RECONCILE_INTERVAL": "0",
                            "ECSHOP_ADMIN_TOKEN": ADMIN, **env},
                       log_path=tmp_path / "shop.log")  # fmt: skip


def test_master_workers_and_requests_log_json_lines(tmp_path):
    shop = _shop(tmp_path, ECSHOP_LOG_FORMAT="json")
    try:
        shop.start()
        resp = requests.get(f"{shop.url}/api/v1/products", headers={"X-Request-Id": "edge-1"},
                            timeout=WAIT)  # fmt: skip
        assert resp.headers["X-Request-Id"] == "edge-1"
        missing = requests.get(f"{shop.url}/nothing/here", timeout=WAIT)
    finally:
        shop.stop()
    items = [json.loads(line) for line in shop.log_text().splitlines()]  # JSON, each one
    assert {"gunicorn.error", "ecshop.access"} <= {item["logger"] for item in items}
    access = {item["request_id"]: item for item in items if item["logger"] == "ecshop.access"}
    assert access["edge-1"]["http"]["route"] == "/api/v1/products"
    assert access["edge-1"]["http"]["status"] == 200
    assert access[missing.headers["X-Request-Id"]]["http"]["status"] == 404
