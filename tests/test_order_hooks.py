"""The order hooks plugin authors know from WordPress and Welcart: every status change,
money received, shipping and refunds, fired after their transaction commits."""

from __future__ import annotations

import pytest

from ecshop import catalog
from ecshop.app import build_shop
from ecshop.config import load_config
from ecshop.store import open_store

RECORDER = """
NAME = "recorder"
calls = []


def register(host):
    host.add_action("order_status_changed",
                    lambda old, new, order: calls.append(("changed", old, new, order["status"])))
    host.add_action("payment_received", lambda amount, order: calls.append(("paid", amount)))
    host.add_action("refund_made", lambda amount, order: calls.append(("refund", amount)))
    host.add_action("order_shipped", lambda order: calls.append(("shipped", order["number"])))
"""


@pytest.fixture
def shop(db_url, tmp_path):
    open_store(db_url).migrate()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "recorder.py").write_text(RECORDER)
    shop = build_shop(load_config({"ECSHOP_DATABASE_URL": db_url,
                                   "ECSHOP_PLUGINS_DIR": str(tmp_path / "plugins"),
                                   "ECSHOP_PLUGINS_DISABLED": "shipping_fee",
                                   "ECSHOP_SECRET_KEY": "k" * 32}))  # fmt: skip
    catalog.create_product(shop.store, shop.stock, {"sku": "TEA", "name": "Tea", "price": 1000,
                           "on_hand": 5}, currency="JPY", actor="test")  # fmt: skip
    yield shop
    shop.close()


def place(shop):
    body = {"lines": [{"sku": "TEA", "qty": 1}], "customer": {"email": "a@example.com"},
            "gateway": "cod"}  # fmt: skip
    result = shop.checkout.place(body, gateways=shop.gateways, idempotency_key=None)
    shop.flow.start(result.order, result.lines)  # offline: pending_payment -> accepted
    return result.order["number"]


def calls(shop):
    import sys

    return sys.modules["ecshop_plugin_recorder"].calls


def test_every_transition_and_every_refund_fires_its_hooks(shop):
    number = place(shop)
    shop.orders.mark_paid(number, amount=1000, payment_id=None, actor="admin",
                          reason="cash", move="mark_paid")  # fmt: skip
    shop.orders.ship(number, actor="admin")
    with shop.store.read() as tx:
        from ecshop.orders import load

        row = load(tx, number)
    shop.flow.refund(row, 300, actor="admin", reason="partial")
    shop.flow.refund(row, 700, actor="admin", reason="the rest")
    assert calls(shop) == [
        ("changed", "pending_payment", "accepted", "accepted"),
        ("changed", "accepted", "paid", "paid"),
        ("paid", 1000),
        ("shipped", number),
        ("changed", "paid", "shipped", "shipped"),
        ("refund", 300),  # a partial refund changes no status
        ("refund", 700),
        ("changed", "shipped", "refunded", "refunded"),
    ]


def test_a_cancellation_fires_the_status_change_and_no_payment(shop):
    number = place(shop)
    calls(shop).clear()
    shop.orders.cancel(number, move="customer_cancel", actor="customer", reason="changed mind")
    assert calls(shop) == [("changed", "accepted", "cancelled", "cancelled")]
