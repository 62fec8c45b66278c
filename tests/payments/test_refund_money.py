"""Refunds carry the order's money: the core passes the currency and the order total,
and a gateway written for ``refund(order_number, amount)`` keeps working."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ecshop.app import build_shop
from ecshop.config import load_config
from ecshop.payments.base import RefundResult, refund_through
from ecshop.store import open_store

RECORDING = """
from ecshop.payments.base import Gateway, PaymentStart, RefundResult

NAME = "recording"
CALLS = []


class NewStyle(Gateway):
    name = "newpay"

    def start_payment(self, order, *, notify_url, return_url):
        return PaymentStart(redirect_url="http://127.0.0.1:9/pay")

    def refund(self, order_number, amount, *, currency=None, order_total=None):
        CALLS.append((self.name, order_number, amount, currency, order_total))
        return RefundResult(f"re_{len(CALLS)}", order_number, amount, amount)


class OldStyle(NewStyle):
    name = "oldpay"

    def refund(self, order_number, amount):
        CALLS.append((self.name, order_number, amount))
        return RefundResult(f"re_{len(CALLS)}", order_number, amount, amount)


def register(host):
    host.add_gateway(NewStyle)
    host.add_gateway(OldStyle)
"""


@pytest.fixture
def shop(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/shop.db"
    open_store(url).migrate()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "recording.py").write_text(RECORDING)
    shop = build_shop(load_config({"ECSHOP_DATABASE_URL": url, "ECSHOP_CURRENCY": "USD",
                                   "ECSHOP_PLUGINS_DIR": str(tmp_path / "plugins"),
                                   "ECSHOP_PLUGINS_ENABLED": "recording"}))  # fmt: skip
    yield shop
    shop.close()
    sys.modules.pop("ecshop_plugin_recording", None)


def paid_order(shop, number: str, gateway: str, total: int = 2599) -> dict:
    with shop.store.tx() as tx:
        tx.execute(
            "INSERT INTO orders (number, access_token, status, stock_state, gateway, currency, "
            "subtotal, shipping, total, customer_json, hold_expires_at, paid_amount, created_at, "
            "updated_at) VALUES (?, 't', 'paid', 'none', ?, 'USD', ?, 0, ?, '{}', 0, ?, 0, 0)",
            (number, gateway, total, total, total),
        )  # fmt: skip
        return dict(tx.one("SELECT * FROM orders WHERE number = ?", (number,)))


def test_the_core_passes_the_currency_and_the_order_total(shop):
    calls = sys.modules["ecshop_plugin_recording"].CALLS
    shop.flow.refund(paid_order(shop, "N1", "newpay"), 1000, actor="admin", reason="part")
    assert calls == [("newpay", "N1", 1000, "USD", 2599)]
    outcome = shop.payments.refund_unsellable("newpay", paid_order(shop, "N2", "newpay"))
    assert outcome == "refunded" and calls[-1] == ("newpay", "N2", 2599, "USD", 2599)


def test_a_two_argument_refund_keeps_working(shop):
    calls = sys.modules["ecshop_plugin_recording"].CALLS
    shop.flow.refund(paid_order(shop, "O1", "oldpay"), 2599, actor="admin", reason="all")
    assert calls == [("oldpay", "O1", 2599)]
    with shop.store.read() as tx:
        assert tx.one("SELECT status FROM orders WHERE number = 'O1'")["status"] == "refunded"


def test_refund_through_passes_keywords_to_a_gateway_taking_any_keywords():
    seen = {}

    class Loose:
        def refund(self, order_number, amount, **extra):
            seen.update(extra)
            return RefundResult("r", order_number, amount, amount)

    refund_through(Loose(), "X", 5, currency="KWD", order_total=7)
    assert seen == {"currency": "KWD", "order_total": 7}
