"""What a shed answer costs a worker, next to the pages it sheds: a browser's request
stamped as queued too long, answered by the WSGI-level shedder (a stored copy) and by
the middleware alone (the shedder before the app turned off), against a product page and
the JSON catalog served, on one SQLite shop, in one process, side by side.

    .venv/bin/pytest bench/test_shed_cost.py -s
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.sidebyside import report, side_by_side
from ecshop.store import open_store

BROWSER = {"Accept": "text/html", "Accept-Language": "ja"}


def _call(app: Any, path: str, headers: dict[str, str], stamp: bool) -> Any:
    """One WSGI call of ``app`` (no test client in the way); the status line."""
    seen: list[str] = []

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
        seen.append(status)

    def call() -> str:
        extra = {"X-Request-Start": f"t={time.time() - 5:.3f}"} if stamp else {}
        env = testing.create_environ(path=path, headers={**headers, **extra})
        b"".join(app(env, start_response))
        return seen[-1]

    return call


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('shed'))}/shop.db"
    open_store(url).migrate()
    env = {"ECSHOP_DATABASE_URL": url, "ECSHOP_ADMIN_TOKEN": "b" * 32, "ECSHOP_SECRET_KEY": "k" * 32,
           "ECSHOP_PLUGINS_DIR": "-", "ECSHOP_SHED_QUEUE_MS": "1000"}  # fmt: skip
    early, late = create_app(load_config(env)), create_app(load_config(env))
    late.early_shed = None  # the middleware alone decides
    testing.TestClient(early).simulate_post("/api/v1/admin/products", headers={
        "Authorization": "Bearer " + "b" * 32},
        json={"sku": "TEA", "name": "Tea", "price": 1200, "on_hand": 5})  # fmt: skip
    yield early, late
    early.shop.close()
    late.shop.close()


def test_a_shed_answer_costs_a_fraction_of_a_page(apps: Any) -> None:
    early, late = apps
    calls = {
        "product_page": _call(early, "/products/TEA", BROWSER, stamp=False),
        "api_catalog": _call(early, "/api/v1/products", {}, stamp=False),
        "shed_middleware": _call(late, "/products/TEA", BROWSER, stamp=True),
        "shed_early": _call(early, "/products/TEA", BROWSER, stamp=True),
    }
    assert [call() for call in calls.values()] == [
        "200 OK", "200 OK", "503 Service Unavailable", "503 Service Unavailable"]  # fmt: skip
    timings = side_by_side(calls, per_route=2000, batches=10)
    print("\n" + report(timings, "product_page", "shed answers against the product page"))
