"""The reconciler's pass over stuck orders, on SQLite and on MariaDB. Their gateway
answers that it has no payment, so orders whose hold ended are cancelled as expired;
where no gateway can be asked, the stock stays held."""

from __future__ import annotations

import time

import pytest

from ecshop.app import build_shop
from ecshop.config import load_config
from ecshop.store import open_store

QUIET_GATEWAY = """
from ecshop.payments.base import Gateway, PaymentStatus

NAME = "quiet"


class Quiet(Gateway):
    name = "quiet"

    def fetch_status(self, order_number):
        return PaymentStatus(order_number, "pending")


def register(host):
    host.add_gateway(Quiet)
"""


@pytest.fixture
def shop(db_url, tmp_path):
    open_store(db_url).migrate()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "quiet.py").write_text(QUIET_GATEWAY)
    config = load_config({"ECSHOP_DATABASE_URL": db_url,
                          "ECSHOP_PLUGINS_DIR": str(tmp_path / "plugins")})  # fmt: skip
    shop = build_shop(config)
    yield shop
    shop.close()


def add_stuck(shop, numbers_at: dict[str, float], gateway: str = "quiet") -> None:
    """Orders left in pending_payment, their hold ended, that the gateway has no payment for."""
    with shop.store.tx() as tx:
        for number, created in numbers_at.items():
            tx.execute(
                "INSERT INTO orders (number, access_token, status, stock_state, gateway, currency, "
                "subtotal, shipping, total, customer_json, hold_expires_at, created_at, updated_at) "
                "VALUES (?, 'token', 'pending_payment', 'released', ?, 'JPY', 100, 0, 100, '{}', ?, ?, ?)",
                (number, gateway, created + 1, created, created),
            )


def statuses(shop) -> dict[str, str]:
    with shop.store.read() as tx:
        return {r["number"]: r["status"] for r in tx.query("SELECT number, status FROM orders")}


def test_a_pass_pages_through_every_stuck_order_ties_included(shop):
    base = time.time() - 1000  # past the grace period
    # Three share one created_at: the page boundary falls between them.
    add_stuck(shop, {"A1": base, "B1": base + 1, "B2": base + 1, "B3": base + 1, "C1": base + 2,
                     "D1": base + 3, "E1": base + 4})  # fmt: skip
    report = shop.reconciler.run_once(batch=2)
    assert (report.checked, report.expired, report.errors) == (7, 7, 0)
    assert set(statuses(shop).values()) == {"cancelled"}


def test_a_pass_ends_when_keep_going_says_no(shop):
    base = time.time() - 1000  # past the grace period
    add_stuck(shop, {f"N{i}": base + i for i in range(5)})
    asked = []
    report = shop.reconciler.run_once(batch=2, keep_going=lambda: asked.append(1) and False)
    assert (report.checked, len(asked)) == (2, 1)
    assert sorted(n for n, s in statuses(shop).items() if s == "cancelled") == ["N0", "N1"]
    rest = shop.reconciler.run_once(batch=2)
    assert rest.checked == 3 and set(statuses(shop).values()) == {"cancelled"}


def test_an_order_whose_gateway_cannot_be_asked_keeps_its_stock(shop):
    """A buyer may have paid: with its gateway gone (not installed, not configured) the
    order's hold is not given back on a timer; the pass counts it as an error."""
    base = time.time() - 1000
    add_stuck(shop, {"G1": base}, gateway="gone")
    add_stuck(shop, {"Q1": base})
    report = shop.reconciler.run_once()
    assert statuses(shop) == {"G1": "pending_payment", "Q1": "cancelled"}
    assert (report.expired, report.errors) == (1, 1)
