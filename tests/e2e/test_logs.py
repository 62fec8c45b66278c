"""The served shop's log: one configuration for gunicorn and the shop, an access line
per request under its id, and one line per outage rather than one per request."""

from __future__ import annotations

import json
import re
import secrets
import time
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


def test_redis_down_is_one_line_with_its_traceback_then_counts(tmp_path, private_redis):
    shop = _shop(tmp_path, ECSHOP_REDIS_URL=private_redis.url, ECSHOP_LOG_REPEAT_EVERY="0.5")
    shop.workers = 1
    try:
        shop.start()
        created = requests.post(f"{shop.url}/api/v1/admin/products", timeout=WAIT,
                                headers={"Authorization": f"Bearer {ADMIN}"},
                                json={"sku": "TEA", "name": "Tea", "price": 100, "on_hand": 3})  # fmt: skip
        assert created.status_code == 201, created.text
        private_redis.stop()
        ids = []
        for _ in range(40):
            resp = requests.get(f"{shop.url}/api/v1/products", timeout=WAIT)
            assert resp.status_code == 503
            ids.append(resp.headers["X-Request-Id"])
        deadline = time.monotonic() + WAIT
        while _counted(shop.log_text()) < len(ids) - 1:  # the summaries come on a timer
            assert time.monotonic() < deadline, shop.log_text()[-3000:]
            time.sleep(0.1)
    finally:
        shop.stop()
    log = shop.log_text()
    whole = [line for line in log.splitlines()
             if "stock_engine_unavailable" in line and "more like this" not in line]  # fmt: skip
    assert len(whole) == 1 and f"[{ids[0]}] request {ids[0]}: GET /api/v1/products" in whole[0]
    after = log.split(whole[0], 1)[1]
    assert after.lstrip("\n").startswith("Traceback (most recent call last)")  # its traceback
    assert _counted(log) == len(ids) - 1  # the rest are counted, none lost, none twice
    for rid in ids:  # and each request still has its access line
        assert f'[{rid}] 127.0.0.1 "GET /api/v1/products" 503 ' in log


def _counted(log: str) -> int:
    return sum(int(n) for n in re.findall(r"\] (\d+) more like this in the last 0.5s; the last: "
                                          r"request \w+: GET /api/v1/products: stock_engine_unavailable",
                                          log))  # fmt: skip
