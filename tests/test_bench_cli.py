"""``ecshop bench`` against a throwaway shop: real gunicorn, real client processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ecshop.config import child_environ
from ecshop.store import open_store


def bench(*args):
    return subprocess.run([sys.executable, "-m", "ecshop.cli", "bench", "--clients", "2", "--seconds", "1",
                           "--json", *args], env=child_environ({}), capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.mark.parametrize("engine", ["sql", "redis"])
def test_bench_measures_checkouts_paid_checkouts_pages_and_a_flash_sale(engine, request):
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
    assert "accepted checkouts (order placed, unit held, not paid)" in done.stdout
    check_paid_pages_and_ratios(figures, done)


def check_paid_pages_and_ratios(figures, done):
    """The paid-checkout and pages phases add up; the ratios are what the figures say."""
    assert set(figures) == {"clients", "checkouts", "paid", "pages", "flash_sale", "ratios"}
    paid = figures["paid"]
    assert paid["errors"] == {"checkout": 0, "pay": 0, "not_paid": 0}
    # every accepted checkout was paid, and each payment's notification applied once
    assert 0 < paid["paid"] == paid["accepted"] == paid["notifications"]
    assert paid["per_second"] == pytest.approx(paid["paid"] / paid["seconds"])
    assert paid["polls_per_paid"] >= 1
    assert 0 <= paid["wait_p50_ms"] <= paid["wait_p99_ms"]
    assert paid["wait_p50_ms"] <= paid["flow_p50_ms"] <= paid["flow_p99_ms"]
    routes = figures["pages"]["routes"]
    assert set(routes) == {"json_catalog", "catalog_page", "product_page"}
    assert all(r["count"] > 0 and r["errors"] == 0 for r in routes.values())
    assert routes["json_catalog"]["cost_vs_json"] == 1.0
    for r in routes.values():
        assert r["cost_vs_json"] == pytest.approx(
            routes["json_catalog"]["per_second"] / r["per_second"]
        )
    ratios, accepted = figures["ratios"], figures["checkouts"]["per_second"]
    assert ratios["paid_vs_accepted"] == pytest.approx(paid["per_second"] / accepted)
    assert ratios["notifications_vs_accepted"] == pytest.approx(
        paid["notifications_per_second"] / accepted
    )
    assert ratios["targets"] == {"paid_vs_accepted": 0.5, "notifications_vs_accepted": 0.8}
    assert set(ratios["met"]) == set(ratios["targets"])
    for phrase in ("paid checkouts (checkout, pay, notification, seen paid)",
                   "notifications applied", "catalog_page", "paid checkouts / accepted checkouts",
                   "notifications applied / accepted checkouts"):  # fmt: skip
        assert phrase in done.stdout
    # progress goes to stderr, one line as each phase begins
    for phase in ("accepted checkouts", "paid checkouts", "pages", "flash sale"):
        assert f"bench: {phase}" in done.stderr


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


def test_a_phase_longer_than_the_heartbeat_says_how_far_it_got(monkeypatch):
    import multiprocessing
    from multiprocessing.pool import ThreadPool

    from ecshop import benchrun

    monkeypatch.setattr(benchrun, "HEARTBEAT", 0.2)
    lines: list[str] = []
    counter = multiprocessing.Value("q", 0)

    def loop(deadline):
        while time.monotonic() < deadline:
            with counter.get_lock():
                counter.value += 1
            time.sleep(0.01)
        return "done"

    with ThreadPool(2) as threads:
        pool = benchrun._Pool(threads, counter, lines.append)
        pool.phase_begins("warm-up", "bench: warm-up")
        results, elapsed = pool.run(loop, lambda deadline: [(deadline,)] * 2, 0.9)
    assert results == ["done", "done"] and elapsed >= 0.9
    assert lines[0] == "bench: warm-up"
    beats = lines[1:]
    assert len(beats) >= 2 and all(
        b.startswith("  warm-up: ") and b.endswith(" done") for b in beats
    )
