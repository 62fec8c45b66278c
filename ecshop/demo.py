"""The demo shop: a dozen products with Japanese and English names, and the secrets
it keeps in its data folder."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecshop import catalog
from ecshop.errors import NotFound
from ecshop.files import FILE_MODE, write_private

# Two files, so a data folder made before the secret key existed keeps working.
SECRETS_FILE = "secrets"  # the sandbox gateway's shared secret and the admin token
SECRET_KEY_FILE = "secret-key"  # ECSHOP_SECRET_KEY

DEMO_PRODUCTS: list[dict[str, Any]] = [
    {
        "sku": "SENCHA-100",
        "name": "静岡煎茶 Shizuoka Sencha 100g",
        "price": 1200,
        "on_hand": 40,
        "tax_class": "reduced",
    },
    {
        "sku": "MATCHA-30",
        "name": "宇治抹茶 Uji Matcha 30g",
        "price": 2400,
        "on_hand": 25,
        "tax_class": "reduced",
    },
    {
        "sku": "HOJICHA-80",
        "name": "ほうじ茶 Roasted Hojicha 80g",
        "price": 980,
        "on_hand": 60,
        "tax_class": "reduced",
    },
    {
        "sku": "GENMAI-200",
        "name": "玄米茶 Genmaicha 200g",
        "price": 860,
        "on_hand": 50,
        "tax_class": "reduced",
    },
    {"sku": "YUNOMI-BLUE", "name": "藍染湯呑 Indigo Yunomi Cup", "price": 3200, "on_hand": 12},
    {"sku": "KYUSU-300", "name": "常滑焼急須 Tokoname Kyusu Teapot", "price": 8800, "on_hand": 5},
    {"sku": "CHASEN-80", "name": "茶筅 Bamboo Matcha Whisk", "price": 2900, "on_hand": 20},
    {"sku": "FUROSHIKI-M", "name": "風呂敷 Furoshiki Wrapping Cloth", "price": 1800, "on_hand": 30},
    {
        "sku": "TENUGUI-WAVE",
        "name": "手ぬぐい 波 Tenugui Towel, Waves",
        "price": 1100,
        "on_hand": 45,
    },
    {
        "sku": "WAGASHI-BOX",
        "name": "和菓子詰め合わせ Wagashi Sweets Box",
        "price": 3600,
        "on_hand": 8,
        "tax_class": "reduced",  # food: the reduced rate
    },
    {"sku": "SAKURA-TIN", "name": "桜の茶缶 Sakura Tea Caddy", "price": 2500, "on_hand": 15},
    {
        "sku": "LIMITED-1",
        "name": "限定 黒楽茶碗 Limited Black Raku Bowl",
        "price": 48000,
        "on_hand": 1,
    },
]


def seed(store: Any, stock: Any, currency: str) -> int:
    """Add the demo products that are missing; return how many were added."""
    added = 0
    for product in DEMO_PRODUCTS:
        try:
            catalog.get_product(store, product["sku"], include_inactive=True)
            continue
        except NotFound:
            pass
        data = {**product, "description": f"{product['name']} — demo product"}
        catalog.create_product(store, stock, data, currency=currency, actor="demo")
        added += 1
    return added


def _kept(path: Path, make: Callable[[], str]) -> str:
    """The text of ``path``, written first (mode 0600) from ``make()`` if missing."""
    if not path.exists():
        write_private(path, make())
    os.chmod(path, FILE_MODE)  # an older demo wrote it with the umask's mode
    return path.read_text(encoding="utf-8")


def secrets_in(data: Path) -> tuple[str, str, str]:
    """The demo's gateway secret, admin token and secret key, made on its first start
    and kept in ``data`` so that they survive restarts."""
    pair = _kept(data / SECRETS_FILE,
                 lambda: f"{secrets.token_hex(16)} {secrets.token_urlsafe(24)}\n")  # fmt: skip
    gateway_secret, admin_token = pair.split()
    key = _kept(data / SECRET_KEY_FILE, lambda: secrets.token_hex(32) + "\n").strip()
    return gateway_secret, admin_token, key


DEMO_OWNER = "owner"


def owner_account(store: Any, data: Path) -> tuple[str, str]:
    """The demo's owner account for the admin pages (``owner`` and a password made on the
    first start, kept in ``data/admin-password``)."""
    from ecshop.admins import AdminUsers
    from ecshop.throttle import Throttle

    password = _kept(data / "admin-password", lambda: secrets.token_urlsafe(12) + "\n").strip()
    admins = AdminUsers(store, Throttle(store))
    if not any(a["username"] == DEMO_OWNER for a in admins.all()):
        admins.create(DEMO_OWNER, password, "owner")
    return DEMO_OWNER, password
