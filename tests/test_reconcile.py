"""The reconciler's pass over stuck orders, on SQLite and on MariaDB. Their gateway
answers that it has no payment, so orders whose hold ended are cancelled as expired;
where no gateway can be asked, the stock stays held."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from ecshop.app import build_shop
from ecshop.catalog import create_product
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


# Gateways that cannot be asked: down (GatewayError), answering garbage, and buggy.
UNREACHABLE_GATEWAYS = """
from ecshop.errors import GatewayError
from ecshop.payments.base import Gateway, PaymentStart, PaymentStatus

NAME = "unreachable"
FLAGGED = []


class Down(Gateway):
    name = "down"

    def start_payment(self, order, *, notify_url, return_url):
        return PaymentStart(redirect_url="http://127.0.0.1:9/pay")

    def fetch_status(self, order_number):
        raise GatewayError("connection refused")


class Garbage(Down):
    name = "garbage"

    def fetch_status(self, order_number):
        return PaymentStatus(order_number, "sucess")


class Buggy(Down):
    name = "buggy"

    def fetch_status(self, order_number):
        raise KeyError("status")


def register(host):
    host.add_gateway(Down)
    host.add_gateway(Garbage)
    host.add_gateway(Buggy)
    host.add_action("order_gateway_unreachable",
                    lambda order: FLAGGED.append(order["number"] + ":" + order["customer_json"]))
"""
HOUR = 3600.0


@pytest.fixture
def make_shop(db_url, tmp_path):
    open_store(db_url).migrate()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "quiet.py").write_text(QUIET_GATEWAY)
    (tmp_path / "plugins" / "unreachable.py").write_text(UNREACHABLE_GATEWAYS)
    shops = []

    def make(**env: str):
        config = load_config({"ECSHOP_DATABASE_URL": db_url, "ECSHOP_PLUGINS_ENABLED": "quiet,unreachable",
                              "ECSHOP_PLUGINS_DIR": str(tmp_path / "plugins"), **env})  # fmt: skip
        shops.append(build_shop(config))
        return shops[-1]

    yield make
    for shop in shops:
        shop.close()


@pytest.fixture
def shop(make_shop):
    return make_shop()


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


def test_a_pass_pages_through_every_stuck_order_ties_included(shop, counted):
    base = time.time() - 1000  # past the grace period
    # Three share one created_at: the page boundary falls between them.
    add_stuck(shop, {"A1": base, "B1": base + 1, "B2": base + 1, "B3": base + 1, "C1": base + 2,
                     "D1": base + 3, "E1": base + 4})  # fmt: skip
    report = shop.reconciler.run_once(batch=2)
    assert (report.checked, report.expired, report.errors) == (7, 7, 0)
    assert set(statuses(shop).values()) == {"cancelled"}
    assert counted("ecshop_reconcile_passes_total", result="complete") == 1
    assert counted("ecshop_reconcile_settled_orders_total", outcome="expired") == 7
    assert counted("ecshop_order_transitions_total", from_status="pending_payment",
                   move="expire", to_status="cancelled") == 7  # fmt: skip


def test_a_pass_ends_when_keep_going_says_no(shop, counted):
    base = time.time() - 1000  # past the grace period
    add_stuck(shop, {f"N{i}": base + i for i in range(5)})
    asked = []
    report = shop.reconciler.run_once(batch=2, keep_going=lambda: asked.append(1) and False)
    assert (report.checked, len(asked)) == (2, 1)
    assert sorted(n for n, s in statuses(shop).items() if s == "cancelled") == ["N0", "N1"]
    rest = shop.reconciler.run_once(batch=2)
    assert rest.checked == 3 and set(statuses(shop).values()) == {"cancelled"}
    assert counted("ecshop_reconcile_passes_total", result="stopped") == 1
    assert counted("ecshop_reconcile_passes_total", result="complete") == 1


def test_an_order_whose_gateway_cannot_be_asked_keeps_its_stock(shop):
    """A buyer may have paid: with its gateway gone (not installed, not configured) the
    order's hold is not given back on a timer; the pass counts it as an error."""
    base = time.time() - 1000
    add_stuck(shop, {"G1": base}, gateway="gone")
    add_stuck(shop, {"Q1": base})
    report = shop.reconciler.run_once()
    assert statuses(shop) == {"G1": "pending_payment", "Q1": "cancelled"}
    assert (report.expired, report.errors) == (1, 1)


def place(shop, gateway: str, qty: int = 2) -> dict:
    """A real checkout of ``qty`` TEA through ``gateway``: the order and its hold."""
    try:
        create_product(shop.store, shop.stock, {"sku": "TEA", "name": "Tea", "price": 500,
                       "on_hand": 10}, currency="JPY", actor="test")  # fmt: skip
    except Exception:
        pass  # the second order of a test
    body = {"lines": [{"sku": "TEA", "qty": qty}], "customer": {"email": "a@example.com"},
            "gateway": gateway}  # fmt: skip
    return shop.checkout.place(body, gateways=shop.gateways, idempotency_key=None).order


def attention_events(shop, number: str) -> list[dict]:
    with shop.store.read() as tx:
        return tx.query(
            "SELECT from_status, to_status, actor, reason FROM order_events "
            "WHERE order_number = ? AND reason LIKE 'gateway_unreachable:%'", (number,))  # fmt: skip


def available(shop) -> int:
    return shop.stock.levels(["TEA"])["TEA"].available


@pytest.mark.parametrize("gateway", ["down", "garbage", "buggy"])
def test_an_unreachable_gateway_keeps_the_stock_held_until_the_bound(shop, gateway):
    order = place(shop, gateway)
    hold_end = float(order["hold_expires_at"])
    report = shop.reconciler.run_once(now=hold_end + 23 * HOUR)  # default bound: 24 h
    assert (report.errors, report.unreachable, report.expired) == (1, 0, 0)
    assert statuses(shop)[order["number"]] == "pending_payment"
    assert available(shop) == 8 and attention_events(shop, order["number"]) == []


def test_past_the_bound_the_admin_is_told_once_and_the_stock_stays_held(shop, caplog):
    order, other = place(shop, "down"), place(shop, "buggy", qty=1)
    number = order["number"]
    flagged = __import__("sys").modules["ecshop_plugin_unreachable"].FLAGGED
    past = float(order["hold_expires_at"]) + 25 * HOUR
    with caplog.at_level(logging.WARNING, logger="ecshop.reconcile"):
        first = shop.reconciler.run_once(now=past)
    assert (first.checked, first.unreachable, first.expired) == (2, 2, 0)
    assert [r["reason"] for r in attention_events(shop, number)] == [
        "gateway_unreachable: connection refused"]  # fmt: skip
    assert any(f"order {number} needs the admin" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)  # fmt: skip
    # a mail plugin gets the whole order, the customer included
    assert sorted(flagged) == sorted(
        f"{n}:" + '{"email": "a@example.com"}' for n in (number, other["number"])
    )
    # the buyer may have paid: nothing is given back
    assert statuses(shop)[number] == "pending_payment" and available(shop) == 7
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ecshop.reconcile"):
        again = shop.reconciler.run_once(now=past + HOUR)
    assert again.unreachable == 2  # counted on every pass while pending
    assert len(attention_events(shop, number)) == 1 and len(flagged) == 2  # told once
    assert not any("needs the admin" in r.getMessage() for r in caplog.records)


def test_the_owner_may_accept_the_risk_and_release_the_stock(make_shop):
    shop = make_shop(ECSHOP_GATEWAY_UNREACHABLE_AFTER="60", ECSHOP_GATEWAY_UNREACHABLE_RELEASE="1")
    order = place(shop, "garbage")
    hold_end = float(order["hold_expires_at"])
    assert shop.reconciler.run_once(now=hold_end + 30).expired == 0
    assert available(shop) == 8
    report = shop.reconciler.run_once(now=hold_end + 61)
    assert (report.unreachable, report.expired) == (1, 1)
    assert statuses(shop)[order["number"]] == "cancelled" and available(shop) == 10
    assert len(attention_events(shop, order["number"])) == 1


def test_an_order_whose_gateway_is_gone_is_flagged_past_the_bound(shop):
    base = time.time() - 1000
    add_stuck(shop, {"G1": base}, gateway="gone")
    report = shop.reconciler.run_once(now=base + 1 + 86401)
    assert (report.unreachable, report.expired) == (1, 0)
    assert [r["reason"] for r in attention_events(shop, "G1")] == [
        "gateway_unreachable: gateway gone is not live"]  # fmt: skip


def test_a_capture_already_recorded_under_another_event_id_is_not_applied_again(shop):
    """The return page's status answer and the webhook name one capture under two event
    ids. Once the order was paid, refunded and cancelled, the late webhook must not
    mark it paid again and re-take stock for money already given back; a capture with
    another payment id is still never dropped."""
    from ecshop import catalog
    from ecshop.payments.base import PaymentEvent

    catalog.create_product(shop.store, shop.stock, {"sku": "MUG", "name": "Mug", "price": 800,
                           "on_hand": 2}, currency="JPY", actor="test")  # fmt: skip
    body = {"lines": [{"sku": "MUG", "qty": 1}], "customer": {"email": "a@example.com"},
            "gateway": "quiet"}  # fmt: skip
    order = shop.checkout.place(body, gateways=shop.gateways, idempotency_key=None).order
    number, total = order["number"], order["total"]

    def capture(event_id: str, payment_id: str) -> str:
        event = PaymentEvent(event_id, "payment.succeeded", number, total, "JPY", payment_id,
                             int(time.time()))  # fmt: skip
        return shop.payments.receive("quiet", event)

    assert capture(f"status:{number}:succeeded", "pay_1") == "paid"
    shop.orders.record_refund(number, total, gateway="quiet", refund_id="re_1", origin="shop",
                              actor="admin", reason="refund", settle=False)  # fmt: skip
    shop.orders.cancel(number, move="admin_cancel", actor="admin", reason="cancel")
    assert capture("evt_webhook", "pay_1") == "ignored:already_paid"
    assert statuses(shop)[number] == "cancelled"
    assert shop.stock.levels(["MUG"])["MUG"].available == 2
    assert capture("evt_second", "pay_2") == "paid"  # another capture: never dropped


class LosesItsCopy:
    """A stock engine that says it lost its copy once ``lost`` is set, until rebuilt."""

    def __init__(self, engine):
        self.engine = engine
        self.looks = 0
        self.lost = threading.Event()
        self.rebuilt = threading.Event()

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def needs_rebuild(self):
        self.looks += 1
        return self.lost.is_set() and not self.rebuilt.is_set()

    def rebuild(self):
        self.rebuilt.set()


def test_the_loop_rebuilds_a_lost_copy_between_passes(shop):
    """Redis restarted, or a failover promoted a replica, right after a pass: the leader
    rebuilds the stock engine at its next look, not an interval later."""
    engine = shop.reconciler.stock = LosesItsCopy(shop.reconciler.stock)
    stop = threading.Event()
    loop = threading.Thread(target=shop.reconciler.run_forever, args=(3600, stop))
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while engine.looks < 2:  # the pass's own look, then the loop's between passes
            assert time.monotonic() < deadline, "the loop never looked between passes"
            time.sleep(0.05)
        engine.lost.set()
        assert engine.rebuilt.wait(30), "the lost copy waited for the next pass"
    finally:
        stop.set()
        loop.join(30)
    assert not loop.is_alive()
