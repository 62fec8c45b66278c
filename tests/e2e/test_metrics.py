"""``/metrics`` adds up every worker's counters, and keeps a killed worker's."""

from __future__ import annotations

import json
import os
import signal

from tests.e2e.test_checkout_flow import wait_for

ROUTE = 'ecshop_http_responses_total{route="/api/v1/products",status="200"}'


def served(stack) -> int:
    return stack.metrics(ROUTE).get(ROUTE, 0)


def per_worker(folder) -> dict[int, int]:
    counts = {}
    for path in folder.glob("worker-*.json"):
        pid = int(path.stem.split("-", 1)[1])
        counts[pid] = int(json.loads(path.read_text()).get(ROUTE, 0))
    return counts


def get_products(stack, n: int) -> None:
    for _ in range(n):  # a new connection each time, so the workers share them
        resp = stack.http.get(f"{stack.shop.url}/api/v1/products", headers={"Connection": "close"})
        assert resp.status_code == 200


def test_every_worker_counts_and_a_killed_one_is_not_forgotten(make_stack, tmp_path):
    folder = tmp_path / "metrics"
    stack = make_stack("embedded", ECSHOP_METRICS_DIR=str(folder))
    get_products(stack, 29)  # the 30th was the start-up check's
    assert wait_for(lambda: served(stack) == 30, timeout=15)
    counted = per_worker(folder)
    victim = max(counted, key=counted.get)
    assert counted[victim] > 0 and victim in stack.shop.worker_pids()
    os.kill(victim, signal.SIGKILL)
    assert wait_for(
        lambda: len(stack.shop.worker_pids()) == 2 and victim not in stack.shop.worker_pids()
    )
    get_products(stack, 30)
    # Whichever worker answers, the total holds the dead worker's count and the others'.
    assert wait_for(lambda: served(stack) == 60, timeout=15)
    after = per_worker(folder)
    assert after[victim] == counted[victim] and sum(after.values()) == 60
    assert len([pid for pid, n in after.items() if n]) >= 2


def test_a_new_server_starts_from_zero(make_stack, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "worker-1.json").write_text(json.dumps({ROUTE: 1000}))  # an earlier server's
    stack = make_stack("embedded", ECSHOP_METRICS_DIR=str(folder))
    get_products(stack, 3)
    assert wait_for(lambda: served(stack) == 4, timeout=15)  # and the start-up check
    assert not (folder / "worker-1.json").exists()
