"""``ecshop bench`` against a throwaway shop: real gunicorn, real client processes, and
the report it writes. The recommendation's rules have their own tests
(tests/test_benchadvice.py); ``--url`` against a running shop is in tests/e2e."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time

import pytest

from ecshop import benchadvice
from ecshop.benchremote import check_url, pick_gateway
from ecshop.cli import _bench_command
from ecshop.config import child_environ
from ecshop.errors import BadRequest
from ecshop.store import open_store

#: a tiny run: one second a phase, a sweep of two steps of one second
TINY = ("--clients", "2", "--seconds", "1", "--sweep", "1,2", "--step-seconds", "1", "--json")


def bench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ecshop.cli", "bench", *TINY, *args],
                          env=child_environ({}), capture_output=True, text=True, timeout=900,
                          cwd=cwd)  # fmt: skip


@pytest.mark.parametrize("engine", ["sql", "redis"])
def test_bench_measures_checkouts_paid_checkouts_pages_and_a_flash_sale(engine, request, tmp_path):
    extra = ["--redis-url", request.getfixturevalue("redis_url")] if engine == "redis" else []
    done = bench("--stock", "30", "--report", str(tmp_path / "report"), *extra)
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
    check_ceilings_settings_and_sweep(figures, engine)
    check_report(tmp_path / "report", figures, done)


def check_paid_pages_and_ratios(figures, done):
    """The paid-checkout and pages phases add up; the ratios are what the figures say."""
    assert set(figures) == {"clients", "mode", "context", "checkouts", "notifications", "paid",
                            "pages", "flash_sale", "ratios", "ceilings", "settings",
                            "transports", "sweep", "recommendation", "cleanup"}  # fmt: skip
    # the notify endpoint on its own: one signed notification per accepted order, each
    # applied (the order paid), none refused or failed
    notified = figures["notifications"]
    assert notified["orders"] == figures["checkouts"]["count"]
    assert 0 < notified["applied"] == notified["sent"] <= notified["orders"]
    assert (notified["errors"], notified["answers"]) == (0, {})
    assert notified["per_second"] == pytest.approx(notified["applied"] / notified["seconds"])
    assert 0 < notified["p50_ms"] <= notified["p99_ms"]
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
    assert ratios["notifications_vs_accepted"] == pytest.approx(notified["per_second"] / accepted)
    assert ratios["targets"] == {"paid_vs_accepted": 0.5, "notifications_vs_accepted": 0.8}
    assert set(ratios["met"]) == set(ratios["targets"])
    for phrase in ("paid checkouts (checkout, pay, notification, seen paid)",
                   "notifications (signed payment.succeeded for the",
                   "notifications applied", "catalog_page", "paid checkouts / accepted checkouts",
                   "notifications applied / accepted checkouts"):  # fmt: skip
        assert phrase in done.stdout
    # progress goes to stderr, one line as each phase begins
    for phase in ("accepted checkouts", "notifications for", "paid checkouts", "pages", "flash sale", "ceilings",
                  "settings", "concurrency sweep"):  # fmt: skip
        assert f"bench: {phase}" in done.stderr


def check_ceilings_settings_and_sweep(figures, engine):
    """The ceilings, the settings and the sweep ran side by side without errors, and
    their ratios are what their figures say."""
    ceilings = figures["ceilings"]
    names = ["bare_falcon", "durable_insert", "for_update_checkout", "ecshop_checkout"]
    assert list(ceilings["routes"]) == names
    assert ceilings["order"] == [*names, *reversed(names)]
    assert all(r["count"] > 0 and r["errors"] == 0 for r in ceilings["routes"].values())
    ours = ceilings["routes"]["ecshop_checkout"]["per_second"]
    assert ceilings["ecshop_vs"] == {name: pytest.approx(ours / ceilings["routes"][name]["per_second"])
                                     for name in names[:3]}  # fmt: skip
    settings = figures["settings"]
    grid = [c for c in settings["candidates"] if c["grid"]]
    assert {c["threads"] for c in grid} == {1, 8} and len({c["workers"] for c in grid}) >= 1
    assert all(c["count"] > 0 and c["errors"] == 0 for c in settings["candidates"])
    # the other stock engine ran beside the shop's own, with the same workers and threads
    assert set(settings["engines"]) == {"sql", "redis"}
    assert {c["engine"] for c in settings["candidates"] if not c["grid"]} == (
        {"sql", "redis"} - {engine}
    )
    sweep = figures["sweep"]
    assert [s["clients"] for s in sweep["steps"]] == [1, 2] and sweep["step_seconds"] == 1
    for s in sweep["steps"]:
        assert s["count"] > 0 and s["errors"] == 0
        assert s["per_second"] == pytest.approx(s["count"] / s["seconds"])
        assert 0 < s["p50_ms"] <= s["p99_ms"]
    assert set(figures["transports"]) == {"redis"}  # a Redis of its own, or the given one


def check_report(folder, figures, done):
    """report.md and report.json are written; the recommendation follows the sweep."""
    assert f"report (--report): {folder / 'report.md'}, {folder / 'report.json'}" in done.stdout
    saved = json.loads((folder / "report.json").read_text())
    assert saved["recommendation"] == figures["recommendation"]
    rec = figures["recommendation"]
    for part in ("workers", "threads", "redis", "unix_socket"):
        assert set(rec[part]) >= {"value", "why"} and rec[part]["why"]
    assert rec["capacity"] == benchadvice.capacity(figures["sweep"]["steps"])
    assert rec == benchadvice.recommend(figures)
    assert figures["sweep"]["target"].startswith(
        benchadvice.setting_name(rec["workers"]["value"], rec["threads"]["value"])
    )
    assert figures["context"]["command"].startswith("ecshop bench --clients 2")
    assert figures["context"]["load_before"] and figures["context"]["cpus"] >= 1
    text = (folder / "report.md").read_text()
    for heading in ("## Recommendation", "## How this was derived", "## Concurrency sweep",
                    "## Ceilings side by side", "## Settings side by side", "## Round trips"):  # fmt: skip
        assert heading in text
    at_least = "at least " if rec["capacity"]["at_least"] else ""
    assert (
        f"**Capacity: {at_least}{rec['capacity']['orders_per_minute']} orders per minute**" in text
    )
    plotted = importlib.util.find_spec("matplotlib") is not None
    assert (folder / "sweep.png").exists() == plotted
    assert ("![sweep](sweep.png)" in text) == plotted
    assert "clients checkouts/s orders/min" in text  # the sweep as a table either way


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

    from ecshop import benchphases

    monkeypatch.setattr(benchphases, "HEARTBEAT", 0.2)
    lines: list[str] = []
    counter = multiprocessing.Value("q", 0)

    def loop(deadline):
        while time.monotonic() < deadline:
            with counter.get_lock():
                counter.value += 1
            time.sleep(0.01)
        return "done"

    with ThreadPool(2) as threads:
        pool = benchphases.Pool(threads, counter, lines.append)
        pool.phase_begins("warm-up", "bench: warm-up")
        results, elapsed = pool.run(loop, lambda deadline: [(deadline,)] * 2, 0.9)
    assert results == ["done", "done"] and elapsed >= 0.9
    assert lines[0] == "bench: warm-up"
    beats = lines[1:]
    assert len(beats) >= 2 and all(
        b.startswith("  warm-up: ") and b.endswith(" done") for b in beats
    )


def test_the_sweep_doubles_up_to_its_last_step():
    from ecshop.benchphases import sweep_levels

    assert sweep_levels(64) == [1, 2, 4, 8, 16, 32, 64]
    assert sweep_levels(12) == [1, 2, 4, 8, 12]
    assert sweep_levels(1) == [1]


@pytest.mark.parametrize("url", ["ftp://shop.example/", "shop.example", "file:///etc/passwd",
                                 "https://"])  # fmt: skip
def test_bench_refuses_a_url_that_is_not_http_in_one_line(url, tmp_path):
    done = bench("--url", url, "--admin-token", "t" * 32, cwd=tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"ecshop: --url must be an http:// or https:// address, not {url!r}"
    )
    assert list(tmp_path.iterdir()) == []  # no report of a run that never was
    with pytest.raises(BadRequest):
        check_url(url)
    assert check_url("https://shop.example:8443/shop/") == "https://shop.example:8443"


def test_bench_with_url_refuses_the_settings_of_a_throwaway_shop():
    done = bench("--url", "http://127.0.0.1:9", "--workers", "4", "--redis-url", "redis://x")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "ecshop: --url measures a running shop as it is: --redis-url, --workers cannot apply"
    )


def test_a_running_shop_is_benched_through_a_test_mode_gateway_only():
    sandbox = {"name": "sandbox", "live": True, "test_mode": True, "offline": False}
    other = {"name": "stripe", "live": True, "test_mode": True, "offline": False}
    live = {"name": "card", "live": True, "test_mode": False, "offline": False}
    cod = {"name": "cod", "live": True, "test_mode": True, "offline": True}
    assert pick_gateway([other, sandbox], "u") == "sandbox"
    assert pick_gateway([live, other], "u") == "stripe"
    for gateways in ([live, cod], [{**sandbox, "live": False}], []):
        with pytest.raises(BadRequest, match="has no live test-mode gateway"):
            pick_gateway(gateways, "u")


def test_the_report_shows_the_command_without_the_admin_token():
    assert _bench_command(["bench", "--url", "https://s.example", "--admin-token", "SECRET"]) == (
        "ecshop bench --url https://s.example --admin-token '***'"
    )
    assert "SECRET" not in _bench_command(["bench", "--admin-token=SECRET"])


def test_a_run_on_a_running_shop_keeps_every_order_and_every_unanswered_key():
    from ecshop import _benchclient as client
    from ecshop.benchphases import Phases

    assert client._what_came(201, b'{"number": "N1"}', "bench-x-c0-0") == "N1"
    assert client._what_came(201, b'{"number": "N1"}', "") == ""  # a throwaway shop's run
    # no answer, a server error, an answer that is not the shop's: the order may exist
    for status, body in ((0, b""), (500, b""), (502, b"Bad Gateway"), (200, b"<html>")):
        assert client._what_came(status, body, "bench-x-c0-1") == "bench-x-c0-1"
    # refused: no order was placed
    for status in (400, 409, 429, 503):
        assert client._what_came(status, b"{}", "bench-x-c0-2") == ""
    phases = Phases(1, 1, 1, tag="bench-x")
    phases._keep([(201, 0.1, "N1"), (0, 0.1, "bench-x-c0-1"), (409, 0.1, ""), (201, 0.1, "N2")])
    assert (phases.placed, phases.lost) == (["N1", "N2"], ["bench-x-c0-1"])


@pytest.mark.parametrize("flag", ["--stock", "--workers", "--step-seconds"])
def test_bench_refuses_a_count_that_is_not_positive(flag):
    done = bench(flag, "0")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "ecshop: --clients, --seconds, --step-seconds, --stock and --workers must be positive"
    )
