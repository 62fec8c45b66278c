"""Carrying the journal across a server move: the old shop's notifications that its
backup does not hold are exported and replayed into the new shop (on SQLite and on
MariaDB), once, through the payment service; what the new shop cannot settle is
reported, never dropped."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time

import pytest

from ecshop import dataio, journalio
from ecshop.app import build_shop
from ecshop.catalog import create_product
from ecshop.config import load_config
from ecshop.errors import BadRequest
from ecshop.payments.base import PaymentEvent
from ecshop.store import open_store

GATEWAY = """
from ecshop.payments.base import Gateway, PaymentStart, PaymentStatus

NAME = "carrytest"


class CarryTest(Gateway):
    name = "carrytest"

    def start_payment(self, order, *, notify_url, return_url):
        return PaymentStart(redirect_url="http://127.0.0.1:9/pay")

    def fetch_status(self, order_number):
        return PaymentStatus(order_number, "pending")


def register(host):
    host.add_gateway(CarryTest)
"""


@pytest.fixture
def plugins(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "carrytest.py").write_text(GATEWAY)
    return folder


def env_for(url, plugins):
    return {"ECSHOP_DATABASE_URL": url, "ECSHOP_PLUGINS_DIR": str(plugins),
            "ECSHOP_PLUGINS_ENABLED": "carrytest"}  # fmt: skip


@pytest.fixture
def make_shop(plugins):
    shops = []

    def make(url):
        open_store(url).migrate()
        shops.append(build_shop(load_config(env_for(url, plugins))))
        return shops[-1]

    yield make
    for shop in shops:
        shop.close()


def place(shop, qty=1):
    body = {"lines": [{"sku": "TEA", "qty": qty}], "customer": {"email": "a@example.com"},
            "gateway": "carrytest"}  # fmt: skip
    return shop.checkout.place(body, gateways=shop.gateways, idempotency_key=None).order


def event(order, kind="payment.succeeded", amount=None, event_id=None):
    number = order["number"]
    return PaymentEvent(event_id or f"evt-{number}-{kind}", kind, number,
                        int(order["total"] if amount is None else amount), "JPY", f"pay-{number}",
                        int(time.time()), raw=json.dumps({"order": number}).encode())  # fmt: skip


def statuses(shop):
    with shop.store.read() as tx:
        return {r["number"]: r["status"] for r in tx.query("SELECT number, status FROM orders")}


@pytest.fixture
def moved(make_shop, tmp_path, db_url):
    """An old shop on SQLite with three pending orders and one paid, backed up and
    restored into a new shop (SQLite or MariaDB)."""
    old = make_shop(f"sqlite:///{tmp_path}/old.db")
    create_product(old.store, old.stock, {"sku": "TEA", "name": "Tea", "price": 500,
                   "on_hand": 10}, currency="JPY", actor="test")  # fmt: skip
    orders = [place(old) for _ in range(4)]
    assert old.payments.receive("carrytest", event(orders[0])) == "paid"
    backup = tmp_path / "backup.jsonl.gz"
    dataio.export(old.store, backup)
    target = open_store(db_url)
    target.migrate()
    dataio.import_(target, backup)
    target.close()
    return old, make_shop(db_url), orders, backup


def test_what_reached_the_old_shop_after_the_backup_is_carried_once(moved, tmp_path):
    old, new, orders, backup = moved
    a, b, c, d = (o["number"] for o in orders)
    # After the backup, the old shop still takes notifications: B paid, C declined.
    assert old.payments.receive("carrytest", event(orders[1])) == "paid"
    assert old.payments.receive("carrytest", event(orders[2], "payment.failed")) == "declined"
    carried = tmp_path / "journal.jsonl.gz"
    assert journalio.export_journal(old.store, carried, after_backup=backup) == 2
    assert oct(carried.stat().st_mode & 0o777) == "0o600"
    header, entries = journalio.read_journal(carried)
    assert header["after_backup"]["file"] == backup.name
    assert [(e.gateway, e.event.order, e.event.type) for e in entries] == [
        ("carrytest", b, "payment.succeeded"), ("carrytest", c, "payment.failed")]  # fmt: skip
    first = journalio.replay(new.payments, entries)
    assert [(c.kind, c.result) for c in first] == [("received", "paid"), ("received", "declined")]
    assert statuses(new) == {a: "paid", b: "paid", c: "cancelled", d: "pending_payment"}
    # Replaying again, or events the gateway retried into the new shop, change nothing.
    again = journalio.replay(new.payments, entries)
    assert [c.kind for c in again] == ["duplicate", "duplicate"] and all(c.settled for c in again)
    assert statuses(new) == {a: "paid", b: "paid", c: "cancelled", d: "pending_payment"}
    with new.store.read() as tx:
        journal = tx.query("SELECT event_id, payload_json FROM payments_journal ORDER BY id")
    assert [j["event_id"] for j in journal] == [f"evt-{a}-payment.succeeded",
        f"evt-{b}-payment.succeeded", f"evt-{c}-payment.failed"]  # fmt: skip
    assert json.loads(journal[1]["payload_json"]) == {"order": b}  # the gateway's own words
    assert new.stock.audit() == []


def test_a_payment_the_reconciler_settled_first_is_not_taken_twice(moved, tmp_path):
    old, new, orders, backup = moved
    b = orders[1]["number"]
    assert old.payments.receive("carrytest", event(orders[1])) == "paid"
    # The new shop learnt of B from the gateway's status answer before the carry.
    status = PaymentEvent(f"status:{b}:succeeded", "payment.succeeded", b, int(orders[1]["total"]),
                          "JPY", f"pay-{b}", int(time.time()))  # fmt: skip
    assert new.payments.receive("carrytest", status) == "paid"
    carried = tmp_path / "journal.jsonl.gz"
    journalio.export_journal(old.store, carried, after_backup=backup)
    [done] = journalio.replay(new.payments, journalio.read_journal(carried)[1])
    assert (done.kind, done.result) == ("received", "ignored:paid")
    with new.store.read() as tx:
        assert tx.scalar("SELECT paid_amount FROM orders WHERE number = ?", (b,)) == 500
        assert tx.scalar("SELECT COUNT(*) FROM stock_holds WHERE token = ?", (b,)) == 1
    assert new.stock.audit() == []


def test_an_unknown_order_or_a_changed_amount_is_reported_and_the_rest_settles(moved, tmp_path):
    old, new, orders, backup = moved
    late = place(old)  # an order the new shop never saw
    for order in (late, orders[1], orders[3]):
        assert old.payments.receive("carrytest", event(order)) == "paid"
    carried = tmp_path / "journal.jsonl.gz"
    assert journalio.export_journal(old.store, carried, after_backup=backup) == 3
    lines = gzip.open(carried, "rt").read().splitlines()
    columns = json.loads(lines[1])["columns"]
    row = json.loads(lines[4])
    row[columns.index("amount")] = 1  # not what order D costs
    lines[4] = json.dumps(row)
    with gzip.open(carried, "wt") as out:
        out.write("\n".join(lines) + "\n")
    results = journalio.replay(new.payments, journalio.read_journal(carried)[1])
    assert [c.kind for c in results] == ["unknown_order", "received", "refused"]
    assert f"this shop has no order {late['number']}" in results[0].describe()
    assert "NOT SETTLED" in results[2].describe() and "amount 1" in results[2].result
    assert statuses(new)[orders[1]["number"]] == "paid"
    assert statuses(new)[orders[3]["number"]] == "pending_payment"


def test_a_cut_short_or_foreign_file_is_refused_whole(moved, tmp_path):
    old, _, orders, backup = moved
    assert old.payments.receive("carrytest", event(orders[1])) == "paid"
    carried = tmp_path / "journal.jsonl.gz"
    journalio.export_journal(old.store, carried, after_backup=backup)
    lines = gzip.open(carried, "rt").read().splitlines()
    cut = tmp_path / "cut.jsonl.gz"
    with gzip.open(cut, "wt") as out:
        out.write("\n".join(lines[:-1]) + "\n")
    for bad, says in [(cut, "cut short"), (backup, "not an ecshop journal"),
                      (tmp_path / "missing.jsonl.gz", "damaged")]:  # fmt: skip
        with pytest.raises(BadRequest, match=says):
            journalio.read_journal(bad)
    with pytest.raises(BadRequest, match="not an ecshop export"):
        journalio.export_journal(old.store, tmp_path / "x.jsonl.gz", after_backup=carried)
    assert not (tmp_path / "x.jsonl.gz").exists()


def test_since_takes_a_time_with_its_offset_or_unix_seconds(moved, tmp_path):
    old, new, orders, _ = moved
    before = time.time()
    assert old.payments.receive("carrytest", event(orders[1])) == "paid"
    carried = tmp_path / "journal.jsonl.gz"
    assert journalio.export_journal(old.store, carried, since=before) == 1
    assert journalio.export_journal(old.store, carried, since=0) == 2  # the backup's event too
    entries = journalio.read_journal(carried)[1]
    assert [c.kind for c in journalio.replay(new.payments, entries)] == ["duplicate", "received"]
    assert journalio.parse_time("2025-03-01T02:00:00+09:00") == 1740762000.0
    assert journalio.parse_time("2025-02-28T17:00:00Z") == 1740762000.0
    assert journalio.parse_time("1740762000") == 1740762000.0
    for bad in ("2025-03-01T02:00:00", "yesterday", "nan"):
        with pytest.raises(BadRequest):
            journalio.parse_time(bad)
    with pytest.raises(BadRequest, match="name the backup"):
        journalio.export_journal(old.store, carried)


def ecshop(*args, env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("ECSHOP_")}
    return subprocess.run([sys.executable, "-m", "ecshop.cli", *args], env={**base, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_commands_print_each_event_and_fail_on_one_not_settled(make_shop, plugins, tmp_path):
    old_url, new_url = f"sqlite:///{tmp_path}/old.db", f"sqlite:///{tmp_path}/new.db"
    old = make_shop(old_url)
    create_product(old.store, old.stock, {"sku": "TEA", "name": "Tea", "price": 500,
                   "on_hand": 10}, currency="JPY", actor="test")  # fmt: skip
    kept = place(old)
    backup = tmp_path / "backup.jsonl.gz"
    dataio.export(old.store, backup)
    assert ecshop("restore", str(backup), env=env_for(new_url, plugins)).returncode == 0
    late = place(old)
    for order in (kept, late):
        old.payments.receive("carrytest", event(order))
    carried = tmp_path / "journal.jsonl.gz"
    done = ecshop("journal", "export", str(carried), "--after-backup", str(backup),
                  env=env_for(old_url, plugins))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "exported 2 journaled notification(s)" in done.stdout
    done = ecshop("journal", "replay", str(carried), env=env_for(new_url, plugins))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"order {kept['number']} payment.succeeded 500 JPY -> paid" in done.stdout
    assert f"order {late['number']} payment.succeeded 500 JPY -> NOT SETTLED" in done.stdout
    assert f"{late['number']} is not settled" in done.stderr  # logged as a WARNING too
    reason = done.stderr.splitlines()[-1]
    assert reason.startswith("ecshop: 1 notification(s) could not be settled")
    again = ecshop("journal", "replay", str(carried), env=env_for(new_url, plugins))
    assert again.returncode == 1 and "duplicate 1, unknown_order 1" in again.stdout
    store = open_store(new_url)
    with store.read() as tx:
        audited = tx.query("SELECT after_json FROM audit_log WHERE action = 'journal.replay'")
    assert len(audited) == 2
    assert json.loads(audited[0]["after_json"])["not_settled"][0].endswith(
        f"this shop has no order {late['number']}"
    )
    done = ecshop("journal", "export", str(carried), env=env_for(old_url, plugins))
    assert done.returncode == 2 and "--after-backup" in done.stderr
