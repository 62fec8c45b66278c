"""An in-process shop for the storefront pages, and a browser-like client with a
cookie jar that reads forms' CSRF tokens."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from argon2 import PasswordHasher
from falcon import testing

from ecshop.admins import AdminUsers
from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.store import open_store
from ecshop.throttle import Throttle

TOKEN = "a" * 32
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
}
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
OWNER_PASSWORD = "owner password 123"
STAFF_PASSWORD = "staff password 123"
#: argon2 at its cheapest, for accounts made by tests: a login verifies a password with
#: the parameters its hash was made with
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class Shopper:
    """A browser: keeps its cookies, sends HTML Accept headers, posts forms."""

    client: testing.TestClient
    cookies: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=lambda: dict(BROWSER))
    last: Any = None

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        resp = self.client.simulate_request(method, path, headers=headers, **kwargs)
        for name, cookie in resp.cookies.items():
            self.cookies[name] = cookie.value
        self.last = resp
        return resp

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._send("GET", path, **kwargs)

    def csrf(self) -> str:
        found = CSRF.search(self.last.text) if self.last is not None else None
        if found is None:
            found = CSRF.search(self.get("/").text)
        assert found, "no form on the page"
        return found.group(1)

    def post(self, path: str, data: dict[str, Any] | list[tuple[str, Any]], *,
             csrf: bool = True) -> Any:  # fmt: skip
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        body = [*([("csrf_token", self.csrf())] if csrf else []), *pairs]
        return self._send("POST", path, body=urlencode(body),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip

    def upload(self, path: str, data: dict[str, str], files: dict[str, tuple[str, bytes]], *,
               csrf: bool = True) -> Any:  # fmt: skip
        """A ``multipart/form-data`` POST, as a form with a file input sends it."""
        boundary = "----ecshoptest" + secrets.token_hex(8)
        fields = {**({"csrf_token": self.csrf()} if csrf else {}), **data}
        chunks = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                  f"{value}\r\n".encode() for name, value in fields.items()]  # fmt: skip
        for name, (filename, content) in files.items():
            chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                          f'filename="{filename}"\r\nContent-Type: application/octet-stream'
                          "\r\n\r\n".encode() + content + b"\r\n")  # fmt: skip
        chunks.append(f"--{boundary}--\r\n".encode())
        return self._send("POST", path, body=b"".join(chunks),
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip


@dataclass
class PageShop:
    app: Any
    client: testing.TestClient

    def add_product(self, sku: str, price: int, on_hand: int, **extra: Any) -> None:
        resp = self.client.simulate_post("/api/v1/admin/products", headers=ADMIN, json={
            "sku": sku, "name": extra.pop("name", sku), "price": price, "on_hand": on_hand, **extra})  # fmt: skip
        assert resp.status_code == 201, resp.text

    def shopper(self, **headers: str) -> Shopper:
        shopper = Shopper(self.client)
        shopper.headers.update(headers)
        return shopper

    def orders(self) -> list[dict[str, Any]]:
        return list(self.client.simulate_get("/api/v1/admin/orders", headers=ADMIN).json["items"])


ADDRESS = {"email": "hanako@example.com", "name": "山田花子", "phone": "0312345678",
           "postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区",
           "line1": "千代田1-1", "line2": ""}  # fmt: skip


@pytest.fixture
def make_shop(sqlite_url: str, tmp_path: Path) -> Iterator[Callable[..., PageShop]]:
    apps: list[Any] = []

    def make(**env: str) -> PageShop:
        open_store(sqlite_url).migrate()
        config = load_config({
            "ECSHOP_DATABASE_URL": sqlite_url, "ECSHOP_ADMIN_TOKEN": TOKEN,
            "ECSHOP_SECRET_KEY": "k" * 32, "ECSHOP_PLUGINS_DIR": str(tmp_path / "no-plugins"),
            "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": "Example Bank 123-4567",
            "ECSHOP_CHECKOUT_RATE_LIMIT": "0", **env})  # fmt: skip
        app = create_app(config)
        apps.append(app)
        return PageShop(app, testing.TestClient(app))

    yield make
    for app in apps:
        app.shop.close()


@pytest.fixture
def shop(make_shop: Callable[..., PageShop]) -> PageShop:
    return make_shop()


def admin_login(shopper: Shopper, username: str = "owner", password: str = OWNER_PASSWORD,
                code: str = "", next_path: str = "") -> Any:  # fmt: skip
    shopper.get("/admin/login" + (f"?next={next_path}" if next_path else ""))
    return shopper.post("/admin/login", {"username": username, "password": password, "code": code,
                                         **({"next": next_path} if next_path else {})})  # fmt: skip


@pytest.fixture
def media_shop(make_shop: Callable[..., PageShop], tmp_path: Path) -> PageShop:
    """A shop with a media folder (``shop.media``: its products' pictures), an owner and
    a staff account."""
    shop = make_shop(ECSHOP_MEDIA_DIR=str(tmp_path / "media"))
    store = shop.app.shop.store
    admins = AdminUsers(store, Throttle(store), hasher=QUICK_HASHER)
    admins.create("owner", OWNER_PASSWORD, "owner")
    admins.create("staff", STAFF_PASSWORD, "staff")
    shop.media = tmp_path / "media" / "products"  # type: ignore[attr-defined]
    return shop


@pytest.fixture
def owner(media_shop: PageShop) -> Shopper:
    """The owner, logged in to the admin of ``media_shop``."""
    who = media_shop.shopper()
    admin_login(who)
    return who
