"""Storefront pages against the JSON catalog, in one process and one run, on a
1,000-product SQLite shop: what rendering HTML (templates, session, CSRF, gettext) costs
next to the API. pytest-benchmark times each route in turn; ``test_ratios`` then takes
the routes side by side in batches (:mod:`ecshop.sidebyside`) and prints their ratios to
the JSON catalog, the figures kept in bench/README.md.

    .venv/bin/pytest bench/test_pages_render.py -s -p no:randomly --benchmark-columns=mean,median,ops
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.sidebyside import report, side_by_side
from ecshop.store import open_store

TOKEN = "b" * 32
PRODUCTS = 1000
PER_ROUTE = 1000
BROWSER = {"Accept": "text/html", "Accept-Language": "ja"}
MEANS: dict[str, float] = {}
ROUTES = {
    "api_catalog": ("/api/v1/products?limit=24", {}),
    "catalog_page": ("/", BROWSER),
    "catalog_search": ("/?q=Tea%20999", BROWSER),
    "product_page": ("/products/SKU-0500", BROWSER),
    "cart_page": ("/cart", BROWSER),
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[testing.TestClient, str]]:
    folder = Path(tmp_path_factory.mktemp("pages-bench"))
    url = f"sqlite:///{folder}/shop.db"
    open_store(url).migrate()
    app = create_app(load_config({
        "ECSHOP_DATABASE_URL": url, "ECSHOP_ADMIN_TOKEN": TOKEN, "ECSHOP_SECRET_KEY": "k" * 32,
        "ECSHOP_PLUGINS_DIR": str(folder / "none"), "ECSHOP_SHED_QUEUE_MS": "0"}))  # fmt: skip
    client = testing.TestClient(app)
    admin = {"Authorization": f"Bearer {TOKEN}"}
    for i in range(PRODUCTS):
        client.simulate_post("/api/v1/admin/products", headers=admin, json={
            "sku": f"SKU-{i:04d}", "name": f"Tea {i}", "price": 500 + i, "on_hand": 10})  # fmt: skip
    home = client.simulate_get("/", headers=BROWSER)
    cookie = f"ecshop_session={home.cookies['ecshop_session'].value}"
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', home.text).group(1)  # type: ignore[union-attr]
    for sku in ("SKU-0001", "SKU-0500", "SKU-0999"):
        client.simulate_post("/cart/add", body=f"csrf_token={token}&sku={sku}&qty=2", headers={
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    yield client, cookie
    app.shop.close()


@pytest.mark.parametrize("name", list(ROUTES))
def test_page(benchmark: Any, shop: tuple[testing.TestClient, str], name: str) -> None:
    client, cookie = shop
    path, headers = ROUTES[name]
    headers = {**headers, "Cookie": cookie} if headers else headers

    def get() -> Any:
        return client.simulate_get(path, headers=headers)

    assert get().status_code == 200
    benchmark(get)
    if benchmark.enabled:
        MEANS[name] = benchmark.stats.stats.mean


def test_ratios(shop: tuple[testing.TestClient, str]) -> None:
    """Each route's time over the JSON catalog's, taken side by side (printed with -s;
    ``cpu ms`` is this process's CPU time per request), then the same over
    pytest-benchmark's means of the runs above, when they ran."""
    client, cookie = shop
    calls = {}
    for name, (path, headers) in ROUTES.items():
        sent = {**headers, "Cookie": cookie} if headers else headers
        calls[name] = lambda path=path, sent=sent: client.simulate_get(path, headers=sent)
    timings = side_by_side(calls, per_route=PER_ROUTE, cpu=time.process_time)
    print("\n" + report(timings, "api_catalog", f"in-process, {PER_ROUTE} requests a route"))
    if "api_catalog" in MEANS:
        base = MEANS["api_catalog"]
        print("pytest-benchmark means, route by route:")
        for name, mean in MEANS.items():
            print(f"{name:16s} {mean * 1000:8.2f} ms  x{mean / base:5.2f}")
