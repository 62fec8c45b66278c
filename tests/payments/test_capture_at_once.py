"""A gateway's capture of a pending order with a live hold is journaled, applied and
recorded as applied in one durable commit; every other case keeps the journal-then-apply
path. On SQLite and on MariaDB."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest

from ecshop.app import build_shop
from ecshop.catalog import create_product
from ecshop.config import load_config
from ecshop.errors import StockUnavailable
from ecshop.payments.base import PaymentEvent
from ecshop.store import open_store
from tests.test_reconcile import QUIET_GATEWAY  # a gateway that knows of no payment


@pytest.fixture
def make_shop(db_url, tmp_path):
    open_store(db_url).migrate()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "quiet.py").write_text(QUIET_GATEWAY)
    shops = []

    def make(on_hand: int = 3, **env: str):
        shops.append(build_shop(load_config({
            "ECSHOP_DATABASE_URL": db_url, "ECSHOP_PLUGINS_ENABLED": "quiet",
            "ECSHOP_PLUGINS_DIR": str(tmp_path / "plugins"), **env})))  # fmt: skip
        create_product(shops[-1].store, shops[-1].stock, {"sku": "TEA", "name": "Tea",
                       "price": 500, "on_hand": on_hand}, currency="JPY", actor="test")  # fmt: skip
        return shops[-1]

    yield make
    for made in shops:
        made.close()


@pytest.fixture
def shop(make_shop):
    return make_shop()


def place(shop) -> dict:
    body = {"lines": [{"sku": "TEA", "qty": 1}], "customer": {"email": "a@example.com"},
            "gateway": "quiet"}  # fmt: skip
    return shop.checkout.place(body, gateways=shop.gateways, idempotency_key=None).order


def capture(order: dict, event_id: str = "") -> PaymentEvent:
    return PaymentEvent(event_id or f"evt_{order['number']}", "payment.succeeded",
                        order["number"], order["total"], "JPY", f"pay_{order['number']}",
                        int(time.time()))  # fmt: skip


@contextmanager
def transactions(shop):
    """Count the transactions the store opens, each as "write" or "read" (one inside
    another joins it; group commit's included)."""
    opened = []
    real = shop.store.tx

    @contextmanager
    def counting(*, write=True):
        if not getattr(shop.store._local, "depth", 0):
            opened.append("write" if write else "read")
        with real(write=write) as tx:
            yield tx

    shop.store.tx = counting
    try:
        yield opened
    finally:
        shop.store.tx = real


def journal(shop, number: str) -> list[dict]:
    with shop.store.read() as tx:
        return tx.query("SELECT event_id, outcome, applied_at FROM payments_journal "
                        "WHERE order_number = ?", (number,))  # fmt: skip


def status(shop, number: str) -> str:
    with shop.store.read() as tx:
        return str(tx.one("SELECT status FROM orders WHERE number = ?", (number,))["status"])


def tea(shop):
    return shop.stock.levels(["TEA"])["TEA"]


def test_a_capture_is_journaled_applied_and_paid_in_one_commit(shop):
    order = place(shop)
    with transactions(shop) as opened:
        assert shop.payments.receive("quiet", capture(order)) == "paid"
    assert opened == ["write"]  # a read (the check) and three writes (journal, move, outcome)
    [row] = journal(shop, order["number"])
    assert row["outcome"] == "paid" and row["applied_at"] is not None
    assert status(shop, order["number"]) == "paid"
    assert (tea(shop).held, tea(shop).sold_unshipped, tea(shop).available) == (0, 1, 2)


def test_a_failure_inside_the_commit_writes_nothing_and_the_retry_pays(shop, monkeypatch):
    """The gateway gets no 2xx and retries: no journal row, no half-paid order, the
    hold still there; the retry pays."""
    order = place(shop)
    real = shop.stock.commit

    def down(token):
        raise StockUnavailable("the stock engine is away")

    monkeypatch.setattr(shop.stock, "commit", down)
    with pytest.raises(StockUnavailable):
        shop.payments.receive("quiet", capture(order))
    assert journal(shop, order["number"]) == []
    assert status(shop, order["number"]) == "pending_payment"
    assert (tea(shop).held, tea(shop).available) == (1, 2)
    monkeypatch.setattr(shop.stock, "commit", real)
    assert shop.payments.receive("quiet", capture(order)) == "paid"
    assert [r["outcome"] for r in journal(shop, order["number"])] == ["paid"]


def test_the_same_event_again_is_a_duplicate_and_changes_nothing(shop):
    order = place(shop)
    event = capture(order)
    assert shop.payments.receive("quiet", event) == "paid"
    with transactions(shop) as opened:
        assert shop.payments.receive("quiet", event) == "duplicate"
    assert opened.count("write") <= 2  # the refused inserts: nothing else was written
    assert len(journal(shop, order["number"])) == 1
    assert (tea(shop).sold_unshipped, tea(shop).available) == (1, 2)


def test_an_event_id_replayed_for_another_order_is_refused(shop):
    from ecshop.errors import SignatureError

    first, second = place(shop), place(shop)
    assert shop.payments.receive("quiet", capture(first, "evt_same")) == "paid"
    with pytest.raises(SignatureError):
        shop.payments.receive("quiet", capture(second, "evt_same"))
    assert status(shop, second["number"]) == "pending_payment"
    assert journal(shop, second["number"]) == []


def test_a_capture_after_the_hold_ended_re_takes_the_stock_on_the_slow_path(shop):
    order = place(shop)
    shop.stock.release(order["number"])  # the hold expired and was reclaimed
    assert shop.payments.receive("quiet", capture(order)) == "paid"
    [row] = journal(shop, order["number"])
    assert row["outcome"] == "paid" and row["applied_at"] is not None
    with shop.store.read() as tx:
        reasons = [r["reason"] for r in tx.query(
            "SELECT reason FROM order_events WHERE order_number = ? AND to_status = 'paid'",
            (order["number"],))]  # fmt: skip
    assert len(reasons) == 1 and "stock re-taken" in reasons[0]
    assert (tea(shop).held, tea(shop).sold_unshipped) == (0, 1)


def test_a_listener_sees_the_event_journaled_before_it_is_applied(shop):
    """``payment_notification`` keeps its word: the journal row is committed, the order
    not yet paid, when the plugin's action runs."""
    order = place(shop)
    seen = []

    def listener(event):
        seen.append((journal(shop, event.order), status(shop, event.order)))

    shop.hooks.add_action("payment_notification", listener, plugin="watcher")
    assert shop.payments.receive("quiet", capture(order)) == "paid"
    [(rows, state)] = seen
    assert [(r["event_id"], r["outcome"]) for r in rows] == [(f"evt_{order['number']}", None)]
    assert state == "pending_payment"
    assert [r["outcome"] for r in journal(shop, order["number"])] == ["paid"]


@pytest.mark.parametrize("wrong", ["amount", "gateway", "order"])
def test_an_event_that_does_not_fit_its_order_is_refused_and_writes_nothing(shop, wrong):
    from ecshop.errors import NotFound, SignatureError

    order = place(shop)
    event = capture(order)
    gateway = "quiet"
    if wrong == "amount":
        event = PaymentEvent(event.id, event.type, event.order, event.amount - 1, "JPY",
                             event.payment_id, event.created)  # fmt: skip
    elif wrong == "gateway":
        gateway = "sandbox"  # an order of "quiet" named by another gateway's event
    else:
        event = PaymentEvent(event.id, event.type, "NO-SUCH-ORDER", event.amount, "JPY",
                             event.payment_id, event.created)  # fmt: skip
    with pytest.raises(NotFound if wrong == "order" else SignatureError):
        shop.payments.receive(gateway, event)
    with shop.store.read() as tx:
        assert tx.query("SELECT event_id FROM payments_journal") == []
    assert status(shop, order["number"]) == "pending_payment"
    assert (tea(shop).held, tea(shop).available) == (1, 2)


def test_concurrent_captures_share_group_commits_and_each_is_paid(make_shop):
    """With group commit on, captures ride it like checkouts: each thread's capture is a
    piece of a shared transaction, and each is paid and journaled once it returns."""
    import threading

    shop = make_shop(on_hand=16, ECSHOP_GROUP_COMMIT="on", ECSHOP_THREADS="8")
    orders = [place(shop) for _ in range(16)]
    pieces = shop.store.group.items
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def pay(mine: list[dict]) -> None:
        start.wait()
        for order in mine:
            outcomes.append(shop.payments.receive("quiet", capture(order)))

    threads = [threading.Thread(target=pay, args=(orders[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == ["paid"] * 16
    assert shop.store.group.items - pieces == 16  # every capture went through the group
    for order in orders:
        assert status(shop, order["number"]) == "paid"
        assert [r["outcome"] for r in journal(shop, order["number"])] == ["paid"]
    assert (tea(shop).held, tea(shop).sold_unshipped, tea(shop).available) == (0, 16, 0)
