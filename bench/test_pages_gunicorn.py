"""Storefront pages against the JSON catalog through gunicorn: the shop as
``ecshop serve`` runs it (2 workers, threaded), on a 1,000-product SQLite shop, driven
by one client on one kept-alive connection (``requests.Session``). The routes are taken
in turn, in batches, in one run (:mod:`ecshop.sidebyside`); the ratios to the JSON
catalog are printed at the end and kept in bench/README.md.

    .venv/bin/pytest bench/test_pages_gunicorn.py -s -p no:randomly --benchmark-disable

Each route's figure is the median of its batch means of wall time per request, as the
client sees it (the client shares the two cores). ``cpu ms`` is the workers' own CPU time
per request (``/proc/<pid>/stat``, 10 ms ticks summed over all of a route's batches). The
session's cookie goes with every request, the JSON catalog's too (it ignores it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ecshop.sidebyside import Timing, report, side_by_side
from ecshop.testing.shop import ShopProcess

TOKEN = "bench-admin-token-of-32-characters"
PRODUCTS = 1000
PER_ROUTE = 300
BATCHES = 20
BROWSER = {"Accept": "text/html", "Accept-Language": "ja"}
ROUTES = {
    "api_catalog": ("/api/v1/products?limit=24", {}),
    "catalog_page": ("/", BROWSER),
    "catalog_search": ("/?q=Tea%20999", BROWSER),
    "product_page": ("/products/SKU-0500", BROWSER),
    "cart_page": ("/cart", BROWSER),
}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes, all their threads."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ShopProcess, requests.Session]]:
    folder = Path(tmp_path_factory.mktemp("pages-gunicorn"))
    shop = ShopProcess(env={
        "ECSHOP_DATABASE_URL": f"sqlite:///{folder}/shop.db", "ECSHOP_ADMIN_TOKEN": TOKEN,
        "ECSHOP_PLUGINS_DIR": str(folder / "none"), "ECSHOP_RECONCILE_INTERVAL": "0"},
        workers=2, log_path=folder / "shop.log").start()  # fmt: skip
    http = requests.Session()
    try:
        admin = {"Authorization": f"Bearer {TOKEN}"}
        for i in range(PRODUCTS):
            resp = http.post(f"{shop.url}/api/v1/admin/products", headers=admin, json={
                "sku": f"SKU-{i:04d}", "name": f"Tea {i}", "price": 500 + i, "on_hand": 10})  # fmt: skip
            assert resp.status_code == 201, resp.text
        home = http.get(f"{shop.url}/", headers=BROWSER)
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', home.text).group(1)  # type: ignore[union-attr]
        for sku in ("SKU-0001", "SKU-0500", "SKU-0999"):
            resp = http.post(f"{shop.url}/cart/add", data={"csrf_token": token, "sku": sku, "qty": "2"},
                             headers=BROWSER, allow_redirects=False)  # fmt: skip
            assert resp.status_code == 303, resp.text
        yield shop, http
    finally:
        http.close()
        shop.stop()


def test_pages_against_the_json_catalog(
    benchmark: Any, served: tuple[ShopProcess, requests.Session]
) -> None:
    shop, http = served
    calls = {}
    for name, (path, headers) in ROUTES.items():
        url = shop.url + path
        resp = http.get(url, headers=headers)
        assert resp.status_code == 200 and resp.text, (name, resp.status_code)
        calls[name] = lambda url=url, headers=headers: http.get(url, headers=headers)
    cart = http.get(shop.url + "/cart", headers=BROWSER).text
    assert '<span class="count">6</span>' in cart  # three lines of two, in the session
    pids = shop.worker_pids()
    assert pids

    def measure() -> dict[str, Timing]:
        return side_by_side(
            calls, per_route=PER_ROUTE, batches=BATCHES, cpu=lambda: cpu_seconds(pids)
        )

    timings = benchmark.pedantic(measure, rounds=1, iterations=1)
    print("\n" + report(timings, "api_catalog", f"through gunicorn, {PER_ROUTE} requests a route"))
