"""``/metrics`` adds up every gunicorn worker's counts, and keeps those of workers that
are gone: killed, recycled, replaced by a HUP or a USR2 upgrade."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from tests.e2e.test_checkout_flow import wait_for

# NOTE: a route the start-up check (ShopProcess asks /healthz) does not use: a check that
# timed out may still be answered later, so that route's count is not known in advance.
COUNTED = "/api/openapi.json"
ROUTE = f'ecshop_http_responses_total{{route="{COUNTED}",status="200"}}'
WAIT = 30  # bound on any wait: turns a hang into a failure, times nothing


def served(stack) -> int:
    return stack.metrics(ROUTE).get(ROUTE, 0)


def per_file(folder: Path) -> dict[str, int]:
    """The counted route's count in each counter file: ``<pid>`` or ``archive``."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        [family] = [m for m in MultiProcessCollector.merge([str(path)])
                    if m.name == "ecshop_http_responses"] or [None]  # fmt: skip
        samples = family.samples if family else []
        counts[path.stem.split("_", 1)[1]] = int(sum(
            s.value for s in samples if s.labels == {"route": COUNTED, "status": "200"}
        ))  # fmt: skip
    return counts


def get_health(stack, n: int) -> None:
    for _ in range(n):  # a new connection each time, so the workers share them
        resp = stack.http.get(f"{stack.shop.url}{COUNTED}", headers={"Connection": "close"})
        assert resp.status_code == 200


def test_every_worker_counts_and_a_killed_one_is_not_forgotten(make_stack, tmp_path):
    stack = make_stack("embedded")
    folder = tmp_path / "metrics"  # beside the SQLite database: the data folder
    get_health(stack, 30)
    assert served(stack) == 30
    counted = per_file(folder)
    live = [int(k) for k in counted if k.isdigit()]
    assert sorted(live) == sorted(stack.shop.worker_pids()) and sum(counted.values()) == 30
    victim = max(live, key=lambda pid: counted[str(pid)])
    assert counted[str(victim)] > 0
    os.kill(victim, signal.SIGKILL)
    assert wait_for(
        lambda: len(stack.shop.worker_pids()) == 2 and victim not in stack.shop.worker_pids()
    )
    # The master folded the dead worker's counts into the archive and dropped its gauges.
    assert wait_for(lambda: not (folder / f"counter_{victim}.db").exists(), timeout=WAIT)
    assert not list(folder.glob(f"gauge_*_{victim}.db"))
    assert per_file(folder)["archive"] == counted[str(victim)]
    get_health(stack, 30)
    # Whichever worker answers, the total holds the dead worker's count and the others'.
    assert served(stack) == 60
    after = per_file(folder)
    assert sum(after.values()) == 60 and len([k for k, n in after.items() if n]) >= 2


def test_a_new_server_starts_from_zero(make_stack, tmp_path):
    folder = tmp_path / "counts"
    folder.mkdir()
    earlier = MmapedDict(str(folder / "counter_1.db"))  # an earlier server's worker
    earlier.write_value(mmap_key("ecshop_http_responses_total", "ecshop_http_responses_total",
                                 ["route", "status"], [COUNTED, "200"], "x"), 1000, 0)  # fmt: skip
    earlier.close()
    stack = make_stack("embedded", ECSHOP_METRICS_DIR=str(folder))
    get_health(stack, 3)
    assert served(stack) == 3
    assert not (folder / "counter_1.db").exists()


def _children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def test_counts_survive_hup_and_usr2(make_stack):
    stack = make_stack("embedded")
    master = stack.shop.proc
    readings = []

    def read() -> int:
        readings.append(served(stack))
        return readings[-1]

    get_health(stack, 10)
    assert read() == 10
    # HUP: gunicorn reloads its configuration and replaces every worker.
    old = set(stack.shop.worker_pids())
    master.send_signal(signal.SIGHUP)
    assert wait_for(lambda: read() >= 0 and not old & set(stack.shop.worker_pids())
                    and len(stack.shop.worker_pids()) == 2, timeout=WAIT)  # fmt: skip
    get_health(stack, 10)
    assert read() == 20
    # USR2: a new master (a child of the old one) starts its own workers on the same
    # socket; the old master is then stopped and the new one serves alone.
    old = set(stack.shop.worker_pids())
    master.send_signal(signal.SIGUSR2)
    assert wait_for(lambda: _children(master.pid) - old, timeout=WAIT)
    [new_master] = _children(master.pid) - old
    try:
        assert wait_for(lambda: len(_children(new_master)) == 2, timeout=WAIT)
        get_health(stack, 10)  # old and new workers share them
        assert read() == 30
        master.send_signal(signal.SIGTERM)
        master.wait(WAIT)
        get_health(stack, 10)
        assert read() == 40
    finally:
        if not _gone(new_master):
            os.kill(new_master, signal.SIGTERM)
        deadline = time.monotonic() + WAIT
        while not _gone(new_master) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert readings == sorted(readings), readings  # never went down on the way


def test_promtool_accepts_every_family(make_stack, promtool):
    """The scrape after a paid order, a refusal and a 404 passes ``promtool check
    metrics`` (HELP and TYPE on every family, names and suffixes as Prometheus wants
    them), and holds the shop's events counted in the workers."""
    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 1)
    stack.settled([("TEA", 1)], "pay", "paid")
    assert stack.checkout([("TEA", 1)]).status_code == 409
    assert stack.http.get(f"{stack.shop.url}/no/such/page").status_code == 404
    text = stack.http.get(f"{stack.shop.url}/metrics").text
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=WAIT)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    described = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    typed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert described == typed
    samples = stack.metrics()
    for name in samples:  # every sample belongs to a family with HELP and TYPE
        base = name.split("{")[0]
        assert any(base == f or base.startswith(f + "_") for f in described), name
    assert samples['ecshop_order_transitions_total{from_status="pending_payment",'
                   'move="capture",to_status="paid"}'] == 1  # fmt: skip
    assert samples['ecshop_payment_notifications_total{gateway="sandbox",outcome="applied",'
                   'reason=""}'] >= 1  # fmt: skip
    assert samples['ecshop_stock_holds_total{event="granted"}'] == 1
    assert samples['ecshop_stock_holds_total{event="refused"}'] == 1
    assert samples['ecshop_checkout_duration_seconds_count{result="placed"}'] == 1
    assert samples['ecshop_checkout_duration_seconds_count{result="out_of_stock"}'] == 1
    assert samples['ecshop_http_responses_total{route="unmatched",status="404"}'] == 1
    assert any(k.startswith('ecshop_build_info{python="') for k in samples)
    pids = {int(k.split('pid="')[1].split('"')[0]) for k in samples
            if k.startswith("ecshop_process_resident_memory_bytes{")}  # fmt: skip
    assert pids == set(stack.shop.worker_pids())  # one series per live worker
