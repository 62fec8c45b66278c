"""``ecshop bench`` against a throwaway shop: real gunicorn, real client processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ecshop.config import child_environ
from ecshop.store import open_store


def bench(*args):
    return subprocess.run([sys.executable, "-m", "ecshop.cli", "bench", "--clients", "2", "--seconds", "1",
                           "--json", *args], env=child_environ({}), capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.mark.parametrize("engine", ["sql", "redis"])
def test_bench_measures_checkouts_and_a_flash_sale_that_sells_exactly_its_stock(engine, request):
    extra = ["--redis-url", request.getfixturevalue("redis_url")] if engine == "redis" else []
    done = bench("--stock", "30", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    checkouts, sale = figures["checkouts"], figures["flash_sale"]
    assert checkouts["count"] > 0 and checkouts["errors"] == 0
    assert checkouts["per_second"] == pytest.approx(checkouts["count"] / checkouts["seconds"])
    assert (sale["sold"], sale["oversold"], sale["errors"]) == (30, 0, 0)
    assert sale["refused"] == 2  # each client stops at its first 409
    assert (sale["held_after"], sale["available_after"]) == (30, 0)
    assert "flash sale: 30 units gone" in done.stdout


def test_bench_refuses_a_database_that_holds_a_shop(sqlite_url):
    store = open_store(sqlite_url)
    store.migrate()
    with store.tx() as tx:
        tx.execute(
            "INSERT INTO products (sku, name, description, price, currency, created_at, updated_at) "
            "VALUES ('A', 'a', '', 1, 'JPY', 0, 0)"
        )
    done = bench("--database-url", sqlite_url)
    assert done.returncode == 2 and "empty database" in done.stderr
    with store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM orders") == 0
