"""End-to-end fixtures: gunicorn serving ecshop, the sandbox gateway process, and the
database and stock engine of each supported setup (embedded default, and MariaDB+Redis).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from ecshop.testing.sandbox import SandboxGatewayProcess
from ecshop.testing.servers import free_port
from ecshop.testing.shop import ShopProcess
from tests.e2e.browser import DESKTOP, PHONE, chromium, require_browser

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

SETUPS = ["embedded", "mariadb-redis"]
# The embedded default served by threaded workers, where checkouts share commits.
GROUPED = "embedded-grouped"


@dataclass
class Stack:
    shop: ShopProcess
    gateway: SandboxGatewayProcess
    admin_token: str
    store_url: str
    http: requests.Session

    @property
    def secret_key(self) -> str:
        return self.shop.env["ECSHOP_SECRET_KEY"]

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def add_product(self, sku: str, price: int, on_hand: int, name: str | None = None) -> None:
        resp = self.http.post(f"{self.shop.url}/api/v1/admin/products", headers=self.admin,
                              json={"sku": sku, "name": name or sku, "price": price, "on_hand": on_hand})  # fmt: skip
        assert resp.status_code == 201, resp.text

    def checkout(
        self, lines: list[tuple[str, int]], key: str | None = None, gateway: str = "sandbox"
    ) -> requests.Response:
        body = {"lines": [{"sku": s, "qty": q} for s, q in lines], "customer": {"email": "buyer@example.com"},
                "gateway": gateway}  # fmt: skip
        headers = {"Idempotency-Key": key} if key else {}
        return self.http.post(
            f"{self.shop.url}/api/v1/checkout", json=body, headers=headers, timeout=30
        )

    def settled(self, lines: list[tuple[str, int]], action: str, status: str) -> dict[str, Any]:
        """A checkout paid or declined on the gateway's page, once the shop shows ``status``."""
        order = dict(self.checkout(lines).json())
        assert self.gateway.settle(order["payment"]["redirect_url"], action) == 303
        deadline = time.monotonic() + 30
        while self.order(order["number"])["status"] != status:
            assert time.monotonic() < deadline, f"{order['number']} never became {status}"
            time.sleep(0.1)
        return order

    def order(self, number: str) -> dict[str, Any]:
        resp = self.http.get(
            f"{self.shop.url}/api/v1/admin/orders/{number}", headers=self.admin, timeout=30
        )
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def orders(self, status: str | None = None) -> list[dict[str, Any]]:
        items, after = [], None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if status:
                params["status"] = status
            if after:
                params["after"] = after
            page = self.http.get(
                f"{self.shop.url}/api/v1/admin/orders", headers=self.admin, params=params
            ).json()
            items += page["items"]
            after = page["next_after"]
            if not after:
                return items

    def levels(self) -> dict[str, dict[str, int]]:
        resp = self.http.get(
            f"{self.shop.url}/api/v1/admin/stock", headers=self.admin, params={"limit": 500}
        )
        assert resp.status_code == 200, resp.text
        return {item["sku"]: item for item in resp.json()["items"]}

    def metrics(self, prefix: str = "ecshop_") -> dict[str, int]:
        """The samples of ``/metrics`` whose name starts with ``prefix`` (all workers')."""
        text = self.http.get(f"{self.shop.url}/metrics", timeout=10).text
        samples = {}
        for line in text.splitlines():
            if line.startswith(prefix):
                name, value = line.rsplit(" ", 1)
                samples[name] = int(float(value))
        return samples

    def cli(self, *args: str, env: dict[str, str] | None = None, check: bool = False) -> Any:
        saved = dict(self.shop.env)
        self.shop.env.update(env or {})
        try:
            return self.shop.run_cli(*args, check=check)
        finally:
            self.shop.env.clear()
            self.shop.env.update(saved)


@pytest.fixture
def make_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Start a shop + sandbox gateway for a setup: ``make_stack(setup, gateway_switches, **env)``."""
    started: list[Any] = []

    def make(
        setup: str, switches: dict[str, Any] | None = None, workers: int = 2, **env: str
    ) -> Stack:
        gateway = SandboxGatewayProcess(directory=tmp_path, switches=switches or {}).start()
        started.append(gateway)
        if setup in ("embedded", GROUPED):
            # NOTE: each shop of a test has its own data folder (its pid file says one
            # gunicorn per folder): the first in tmp_path, the next ones below it.
            shops = sum(isinstance(p, ShopProcess) for p in started)
            folder = tmp_path / f"shop-{shops + 1}" if shops else tmp_path
            folder.mkdir(exist_ok=True)
            store_url = f"sqlite:///{folder}/shop.db"
            extra: dict[str, str] = {}
            if setup == GROUPED:
                extra = {"ECSHOP_THREADS": "8", "ECSHOP_GROUP_COMMIT": "auto"}
        else:
            store_url = request.getfixturevalue("mysql_url")
            extra = {"ECSHOP_REDIS_URL": request.getfixturevalue("redis_url")}
        port = free_port()
        token = secrets.token_hex(16)
        shop_env = {
            "ECSHOP_DATABASE_URL": store_url,
            "ECSHOP_ADMIN_TOKEN": token,
            "ECSHOP_SECRET_KEY": secrets.token_hex(32),
            "ECSHOP_BASE_URL": f"http://127.0.0.1:{port}",
            "ECSHOP_GATEWAY_SANDBOX_URL": gateway.url,
            "ECSHOP_GATEWAY_SANDBOX_SECRET": gateway.secret,
            "ECSHOP_PLUGINS_DIR": str(Path(__file__).resolve().parents[2] / "plugins"),
            "ECSHOP_RECONCILE_INTERVAL": "0",
            # every test client is 127.0.0.1: the limit has its own tests
            "ECSHOP_CHECKOUT_RATE_LIMIT": "0",
            "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": "Example Bank 123-4567",
            **extra,
            **env,
        }
        shop = ShopProcess(
            env=shop_env, workers=workers, port=port, log_path=tmp_path / "shop.log"
        ).start()
        started.append(shop)
        return Stack(shop, gateway, token, store_url, requests.Session())

    yield make
    for proc in reversed(started):
        getattr(proc, "cleanup", proc.stop)()


@pytest.fixture(params=[DESKTOP, PHONE])
def device(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def browser(tmp_path: Path, device: str) -> Iterator[WebDriver]:
    """A headless Chromium of this test's own (desktop or phone), driven by the system
    chromedriver."""
    require_browser()
    driver = chromium(tmp_path, device)
    driver.device = device  # type: ignore[attr-defined]
    yield driver
    driver.quit()
