"""What a gateway's notification costs the shop next to the checkout it pays for, in one
process and one run, on the embedded default and on MariaDB + Redis.

Side by side in batches (:mod:`ecshop.sidebyside`): a checkout (one unit, the sandbox
gateway), the signed ``payment.succeeded`` for an order the checkouts just placed
(verified, journaled, applied, committed), and a look at a paid order by its token (the
return page's JSON). A paid checkout costs the shop one of each; its CPU over the
checkout's is printed, with each route's ratio to the checkout.

    .venv/bin/pytest bench/test_notify_cost.py -s -p no:randomly
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ecshop._benchclient import BODY
from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.sandbox.protocol import SIGNATURE_HEADER, sign_body
from ecshop.sidebyside import report, side_by_side
from ecshop.store import open_store

TOKEN = "n" * 32
SECRET = "s" * 32
PER_ROUTE = 600
ADMIN = {"Authorization": f"Bearer {TOKEN}"}  # the per-address checkout limit lets it through


def _app(kind: str, folder: Path, request: pytest.FixtureRequest) -> Any:
    env = {"ECSHOP_ADMIN_TOKEN": TOKEN, "ECSHOP_SECRET_KEY": "k" * 32,
           "ECSHOP_PLUGINS_DIR": str(folder / "none"), "ECSHOP_SHED_QUEUE_MS": "0",
           "ECSHOP_MAIL_PROMPT": "0", "ECSHOP_GATEWAY_SANDBOX_URL": "http://127.0.0.1:9",
           "ECSHOP_GATEWAY_SANDBOX_SECRET": SECRET}  # fmt: skip
    if kind == "embedded":
        env["ECSHOP_DATABASE_URL"] = f"sqlite:///{folder}/shop.db"
    else:
        mariadb, redis = (
            request.getfixturevalue("bench_mariadb"),
            request.getfixturevalue("bench_redis"),
        )
        name = f"notify_{int(time.time() * 1000) % 10**9}"
        mariadb.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        env.update(ECSHOP_DATABASE_URL=mariadb.url(name), ECSHOP_REDIS_URL=redis.unix_url)
    open_store(env["ECSHOP_DATABASE_URL"]).migrate()
    return create_app(load_config(env))


@pytest.fixture(params=["embedded", "mariadb-redis"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[testing.TestClient]:
    app = _app(request.param, tmp_path, request)
    made = testing.TestClient(app)
    made.kind = request.param  # type: ignore[attr-defined]
    resp = made.simulate_post("/api/v1/admin/products", headers=ADMIN, json={
        "sku": "PAY", "name": "Pay", "price": 1000, "on_hand": 1_000_000})  # fmt: skip
    assert resp.status_code == 201, resp.text
    yield made
    app.shop.close()


def test_a_notification_costs_about_a_checkout(client: testing.TestClient) -> None:
    body = {**BODY, "gateway": "sandbox", "lines": [{"sku": "PAY", "qty": 1}]}
    pending: deque[dict[str, Any]] = deque()
    outcomes: list[str] = []

    def checkout() -> None:
        resp = client.simulate_post("/api/v1/checkout", json=body, headers=ADMIN)
        assert resp.status_code == 201, resp.text
        pending.append(resp.json)

    def notify() -> None:
        order = pending.popleft()
        now = int(time.time())
        raw = json.dumps({"id": f"evt_{order['number']}", "type": "payment.succeeded",
                          "order": order["number"], "amount": order["total"], "currency": "JPY",
                          "payment_id": f"pay_{order['number']}", "created": now}).encode()  # fmt: skip
        resp = client.simulate_post("/payments/sandbox/notify", body=raw, headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign_body(raw, SECRET, now)})  # fmt: skip
        assert resp.status_code == 200, resp.text
        outcomes.append(resp.json["outcome"])

    checkout()
    seen = pending[0]
    notify()
    look_path = f"/api/v1/orders/{seen['number']}"
    look_query = f"token={seen['access_token']}"

    def look() -> None:
        resp = client.simulate_get(look_path, query_string=look_query)
        assert resp.status_code == 200 and resp.json["status"] == "paid", resp.text

    # checkout first in every round: each notify batch pays the orders the batch before placed
    timings = side_by_side({"checkout": checkout, "notify": notify, "look": look},
                           per_route=PER_ROUTE, cpu=time.process_time)  # fmt: skip
    assert set(outcomes) == {"paid"}  # every notification applied, none a duplicate
    kind = client.kind  # type: ignore[attr-defined]
    print("\n" + report(timings, "checkout", f"{kind}, in-process, {PER_ROUTE} of each"))
    cpu = {name: t.cpu_per_call for name, t in timings.items()}
    if all(cpu.values()):
        paid = sum(cpu.values())  # type: ignore[arg-type]
        print(f"{kind}: a paid checkout (checkout + notification + one look) costs "
              f"{paid * 1000:.2f} ms of CPU, {paid / cpu['checkout']:.2f}x the checkout's")  # type: ignore[operator]  # fmt: skip
