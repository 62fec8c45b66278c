"""Export and import, backup and restore: a shop moved from the embedded default to
MariaDB + Redis arrives whole, an import is all or nothing, and an export taken while
customers check out is one consistent moment."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time

from ecshop import dataio
from ecshop.config import child_environ
from ecshop.store import open_store
from tests.e2e.test_checkout_flow import wait_for


def ecshop(*args, **env):
    return subprocess.run([sys.executable, "-m", "ecshop.cli", *args], env=child_environ(env),
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def table_rows(url):
    """Every exported table's rows; the audit line an import itself writes is left out."""
    store = open_store(url)
    with store.read() as tx:
        rows = {t: sorted(map(repr, tx.iterate(f"SELECT * FROM {t}")[1])) for t in dataio.TABLES}
    rows["audit_log"] = [r for r in rows["audit_log"] if "'shop.import'" not in r]
    return rows


def imports_audited(url):
    store = open_store(url)
    with store.read() as tx:
        return tx.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'shop.import'")


FEE_PLUGIN = """
from ecshop.totals import add_fee

NAME = "wrapping"


def register(host):
    host.add_filter("cart_totals", lambda t: add_fee(t, "Gift wrapping", 250, taxable=True),
                    accepted_args=1)
"""


def busy_shop(make_stack, tmp_path):
    plugins = tmp_path / "fee-plugins"
    plugins.mkdir()
    (plugins / "wrapping.py").write_text(FEE_PLUGIN)
    stack = make_stack("embedded", ECSHOP_PLUGINS_DIR=str(plugins),
                       ECSHOP_MAIL_DIR=str(tmp_path / "mail"))  # fmt: skip
    stack.add_product("TEA", 1200, 50)
    stack.add_product("MUG", 800, 20)
    paid = stack.checkout([("TEA", 2), ("MUG", 1)]).json()
    declined = stack.checkout([("MUG", 3)]).json()
    stack.checkout([("TEA", 1)], key="k-1")  # left pending, with its idempotency key
    assert stack.gateway.settle(paid["payment"]["redirect_url"], "pay") == 303
    assert stack.gateway.settle(declined["payment"]["redirect_url"], "decline") == 303
    assert wait_for(lambda: stack.order(paid["number"])["status"] == "paid")
    assert wait_for(lambda: stack.order(declined["number"])["status"] == "cancelled")
    return stack


def test_embedded_shop_moves_to_mariadb_and_redis_whole(make_stack, tmp_path, mysql_url, redis_url):
    stack = busy_shop(make_stack, tmp_path)
    dump = tmp_path / "shop.jsonl.gz"
    done = stack.cli("export", str(dump))
    assert done.returncode == 0, done.stderr
    assert "orders 3" in done.stdout
    done = ecshop("import", str(dump), ECSHOP_DATABASE_URL=mysql_url, ECSHOP_REDIS_URL=redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    source, target = table_rows(stack.store_url), table_rows(mysql_url)
    assert imports_audited(mysql_url) == 1 and target["audit_log"]  # the API's changes came too
    assert source == target and len(target["orders"]) == 3 and len(target["payments_journal"]) == 2
    assert len(target["order_fees"]) == 3 and len(target["order_taxes"]) == 3
    assert len(target["outbox"]) == 1  # the paid order's mail, not yet sent
    audit = ecshop("stock", "audit", ECSHOP_DATABASE_URL=mysql_url, ECSHOP_REDIS_URL=redis_url)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_import_refuses_a_database_that_is_not_empty(make_stack, tmp_path):
    stack = busy_shop(make_stack, tmp_path)
    dump = tmp_path / "shop.jsonl.gz"
    assert stack.cli("export", str(dump)).returncode == 0
    before = table_rows(stack.store_url)
    done = stack.cli("import", str(dump))
    assert done.returncode == 2 and "not empty" in done.stderr
    assert table_rows(stack.store_url) == before


def test_a_cut_short_or_damaged_file_imports_nothing(make_stack, tmp_path):
    stack = busy_shop(make_stack, tmp_path)
    dump = tmp_path / "shop.jsonl.gz"
    assert stack.cli("export", str(dump)).returncode == 0
    lines = gzip.open(dump, "rt").read().splitlines()
    cut = tmp_path / "cut.jsonl.gz"
    with gzip.open(cut, "wt") as out:
        out.write("\n".join(lines[:-3]) + "\n")  # the last table's end and the footer are gone
    lost_row = tmp_path / "lost-row.jsonl.gz"
    orders_at = next(i for i, ln in enumerate(lines) if ln.startswith('{"table":"orders"'))
    with gzip.open(lost_row, "wt") as out:
        out.write("\n".join(lines[: orders_at + 1] + lines[orders_at + 2 :]) + "\n")
    # Column names become SQL: one that is not a column of its table is refused.
    forged = tmp_path / "forged.jsonl.gz"
    with gzip.open(forged, "wt") as out:
        out.write("\n".join(
            ln.replace('"columns":["number"', '"columns":["number`) VALUES (1); DROP TABLE stock; -- "', 1)
            if ln.startswith('{"table":"orders"') else ln for ln in lines) + "\n")  # fmt: skip
    for bad in (cut, lost_row, forged, tmp_path / "missing.jsonl.gz"):
        url = f"sqlite:///{tmp_path}/{bad.stem}.db"
        done = ecshop("import", str(bad), ECSHOP_DATABASE_URL=url)
        assert done.returncode == 2, (bad, done.stdout, done.stderr)
        assert all(rows == [] for rows in table_rows(url).values())
        if bad is forged:
            assert "has no column" in done.stderr, done.stderr


def test_export_during_checkouts_is_one_consistent_moment(make_stack, tmp_path):
    stack = make_stack("embedded")
    stack.add_product("TEA", 100, 100_000)
    stop = threading.Event()

    def shoppers():
        while not stop.is_set():
            assert stack.checkout([("TEA", 1)]).status_code == 201

    threads = [threading.Thread(target=shoppers) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        dumps = []
        for n in range(5):
            dump = tmp_path / f"during-{n}.jsonl.gz"
            assert stack.cli("export", str(dump)).returncode == 0
            dumps.append(dump)
    finally:
        stop.set()
        for t in threads:
            t.join()
    for dump in dumps:
        tables, columns, current = {}, {}, None
        for raw in gzip.open(dump, "rt"):
            rec = json.loads(raw)
            if isinstance(rec, dict) and "table" in rec:
                current, columns[rec["table"]] = rec["table"], rec["columns"]
                tables[current] = []
            elif isinstance(rec, list):
                tables[current].append(dict(zip(columns[current], rec, strict=True)))
        orders = {o["number"] for o in tables["orders"]}
        assert orders, "the export caught no order"
        assert {ln["order_number"] for ln in tables["order_lines"]} == orders
        assert {h["token"] for h in tables["stock_holds"]} == orders
        stock = tables["stock"][0]
        held = sum(h["qty"] for h in tables["stock_holds"])
        assert stock["on_hand"] - stock["available"] == held  # counts and holds agree


def test_backup_keeps_the_newest_and_restores(make_stack, tmp_path):
    stack = busy_shop(make_stack, tmp_path)
    folder = tmp_path / "backups"
    for _ in range(3):
        done = stack.cli("backup", "--dir", str(folder), "--keep", "2")
        assert done.returncode == 0 and "(verified)" in done.stdout, done.stdout + done.stderr
        time.sleep(1.1)  # backups are named by the second
    kept = sorted(folder.glob("ecshop-*.jsonl.gz"))
    assert len(kept) == 2
    url = f"sqlite:///{tmp_path}/restored.db"
    done = ecshop("restore", str(kept[-1]), ECSHOP_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert table_rows(url) == table_rows(stack.store_url)


def forge(lines, table, row, column, value):
    """The export's lines with ``column`` of ``row`` (from 1) of ``table`` set to ``value``."""
    at = next(i for i, ln in enumerate(lines) if ln.startswith(f'{{"table":"{table}"'))
    columns = json.loads(lines[at])["columns"]
    values = json.loads(lines[at + row])
    if column is None:
        values = value
    else:
        values[columns.index(column)] = value
    return [*lines[: at + row], json.dumps(values), *lines[at + row + 1 :]]


FORGED = [  # (table, row, column, value, what the one-line error must name)
    ("products", 1, "sku", "SKU-1\n", "sku"),
    ("products", 2, "price", -5, "price"),
    ("products", 1, "active", 2, "active"),
    ("stock", 1, "available", 10**6, "available"),
    ("stock", 1, "on_hand", "50", "on_hand"),
    ("orders", 1, "status", "stolen", "status"),
    ("orders", 2, "total", -1, "total"),
    ("orders", 1, "refunded_amount", 10**9, "refunded_amount"),
    ("orders", 1, "customer_json", '{"email": "a@b.c\\n"}', "customer_json"),
    ("orders", 1, "access_token", "", "access_token"),
    ("order_lines", 1, "qty", 0, "qty"),
    ("order_lines", 1, "line_total", 1, "line_total"),
    ("order_events", 1, "to_status", "shipped-ish", "to_status"),
    ("stock_holds", 1, "state", "free", "state"),
    ("idempotency_keys", 1, "key", "", "key"),
    ("payments_journal", 1, "currency", "yen", "currency"),
    ("order_lines", 1, None, ["too", "few"], "row 1"),
    ("order_fees", 1, "taxable", 2, "taxable"),
    ("order_fees", 1, "amount", "250", "amount"),
    ("order_fees", 1, "order_number", "no-such-order", "order_number"),
    ("products", 1, "tax_class", "Luxury!", "tax_class"),
    ("order_taxes", 1, "rate", 101, "rate"),
    ("order_taxes", 1, "tax", 10**9, "tax"),
    ("orders", 1, "delivery_json", '{"slot": 5}', "delivery_json"),
    ("outbox", 1, "status", "lost", "status"),
    ("outbox", 1, "order_number", "no-such-order", "order_number"),
]


def test_a_forged_row_is_refused_in_one_line_and_nothing_is_written(make_stack, tmp_path):
    stack = busy_shop(make_stack, tmp_path)
    dump = tmp_path / "shop.jsonl.gz"
    assert stack.cli("export", str(dump)).returncode == 0
    lines = gzip.open(dump, "rt").read().splitlines()
    for n, (table, row, column, value, names) in enumerate(FORGED):
        forged = tmp_path / f"forged-{n}.jsonl.gz"
        with gzip.open(forged, "wt") as out:
            out.write("\n".join(forge(lines, table, row, column, value)) + "\n")
        url = f"sqlite:///{tmp_path}/forged-{n}.db"
        done = ecshop("import", str(forged), ECSHOP_DATABASE_URL=url)
        case = (table, column, value, done.stdout, done.stderr)
        assert done.returncode == 2, case
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, case
        assert f"table {table}, row {row}" in done.stderr and names in done.stderr, case
        assert all(rows == [] for rows in table_rows(url).values()), case
    # The untouched export still imports: the rules refuse only what breaks them.
    url = f"sqlite:///{tmp_path}/whole.db"
    done = ecshop("restore", str(dump), ECSHOP_DATABASE_URL=url)
    assert done.returncode == 0, done.stderr
    assert table_rows(url) == table_rows(stack.store_url)
