"""A flash sale through a Redis failover (slow).

The shop's stock engine reaches Redis through Sentinel
(``ECSHOP_REDIS_URL=redis+sentinel://...``): a primary, one replica and three
Sentinels, each a throwaway ``redis-server`` on 127.0.0.1. Three Sentinels with a
quorum of two is the smallest set where a failover needs a majority to agree, as in
production; one Sentinel alone would decide by itself. Client processes buy while the
primary is killed (SIGKILL: no shutdown, no last write to its replica). The shop must
answer all along (503 with Retry-After while there is no primary it trusts, never a
500 or a dropped connection), sell again once Sentinel has promoted the replica and
the database has rebuilt its copy, and end with nothing oversold, no drift and every
paid order holding its units.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.e2e._drive import _settle
from tests.e2e.test_chaos import settle_and_check

pytestmark = pytest.mark.slow

STOCK = {"FLASH": 250, "BULK": 5000}  # FLASH sells out after the failover
CLIENTS = 6
BEFORE = 300  # checkouts accepted before the primary is killed
AFTER = 300  # checkouts accepted that were sent after the switch
MIX = (0.7, 0.15)  # pay, decline; the rest abandon on the gateway's page
WAIT = 120  # bound on any wait: turns a hang into a failure, times nothing


def _buyer(shop: str, gateway: str, stop: Any, accepted: Any, after: Any, switched_at: Any,
           seed: int, out: str) -> None:  # fmt: skip
    """One client process: checkouts of one unit until ``stop``; each accepted one is
    paid, declined or abandoned on the gateway's page. Every answer goes to ``out``."""
    rng = random.Random(seed)
    http = requests.Session()
    results = []
    while not stop.is_set():
        sku = rng.choice(list(STOCK))
        body = {"lines": [{"sku": sku, "qty": 1}], "gateway": "sandbox",
                "customer": {"email": "flash@example.com"}}  # fmt: skip
        sent = time.time()
        try:
            resp = http.post(f"{shop}/api/v1/checkout", json=body, timeout=30)
        except requests.RequestException as exc:
            results.append({"status": 0, "sent": sent, "error": str(exc)})
            continue
        entry: dict[str, Any] = {"status": resp.status_code, "sku": sku, "sent": sent}
        if resp.status_code == 201:
            order = resp.json()
            entry["number"] = order["number"]
            roll = rng.random()
            entry["action"] = (
                "pay" if roll < MIX[0] else "decline" if roll < sum(MIX) else "abandon"
            )
            if entry["action"] != "abandon":
                entry["gateway_status"] = _settle(
                    http, gateway, order["payment"]["redirect_url"], entry["action"]
                )
            with accepted.get_lock():
                accepted.value += 1
            if 0 < switched_at.value <= sent:
                with after.get_lock():
                    after.value += 1
        elif resp.status_code == 503:
            entry["retry_after"] = resp.headers.get("Retry-After")
            time.sleep(0.1)
        elif resp.status_code != 409:
            entry["body"] = resp.text[:500]
        results.append(entry)
    Path(out).write_text(json.dumps(results), encoding="utf-8")


def _until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def phases(results: list[dict[str, Any]], killed: float) -> dict[str, Counter[int]]:
    """Answers by when their request was sent: before the kill, while no checkout was
    accepted (from the kill to the first accepted one sent after it), and after."""
    back = min((r["sent"] for r in results if r["status"] == 201 and r["sent"] >= killed),
               default=float("inf"))  # fmt: skip
    out: dict[str, Counter[int]] = {"before": Counter(), "during": Counter(), "after": Counter()}
    for r in results:
        phase = "before" if r["sent"] < killed else "during" if r["sent"] < back else "after"
        out[phase][r["status"]] += 1
    return out


def test_a_flash_sale_rides_through_a_redis_failover(make_stack, sentinels, tmp_path):
    group = sentinels(3)
    stack = make_stack("mariadb-redis", ECSHOP_REDIS_URL=group.url, ECSHOP_HOLD_TTL="2",
                       ECSHOP_RECONCILE_INTERVAL="2")  # fmt: skip
    for sku, units in STOCK.items():
        stack.add_product(sku, 1000, units)
    ctx = multiprocessing.get_context("fork")
    stop, accepted, after = ctx.Event(), ctx.Value("i", 0), ctx.Value("i", 0)
    switched_at = ctx.Value("d", 0.0)
    outs = [tmp_path / f"buyer-{i}.json" for i in range(CLIENTS)]
    shared = (stack.shop.url, stack.gateway.url, stop, accepted, after, switched_at)
    buyers = [ctx.Process(target=_buyer, args=(*shared, 100 + i, str(out)))
              for i, out in enumerate(outs)]  # fmt: skip
    for buyer in buyers:
        buyer.start()
    try:
        _until(lambda: accepted.value >= BEFORE, "the sale never got going")
        old = group.primary()
        logged = len(stack.shop.log_text())
        killed = time.time()
        group.kill_primary()
        new = group.wait_for_failover(old.port)
        switched_at.value = switched = time.time()
        _until(lambda: after.value >= AFTER, "the shop never sold again after the failover")
    finally:
        stop.set()
        for buyer in buyers:
            buyer.join(WAIT)
    results = [r for out in outs for r in json.loads(out.read_text(encoding="utf-8"))]

    statuses = Counter(r["status"] for r in results)
    assert set(statuses) <= {201, 409, 503}, [
        r for r in results if r["status"] not in (201, 409, 503)
    ][:5]
    assert all(r.get("retry_after", "").isdigit() for r in results if r["status"] == 503)
    by_phase = phases(results, killed)
    assert set(by_phase["during"]) <= {503}, by_phase
    assert by_phase["after"][201] >= AFTER
    # The promoted replica was not trusted: the shop rebuilt it from the database.
    assert "stock rebuilt in Redis" in stack.shop.log_text()[logged:]

    time.sleep(3)  # the gateway's retries of notifications refused during the switch
    # The sale is over: the shop comes back without its reconciler loop (it gives its
    # lease back as it stops), so that the checks' own pass settles every order now.
    stack.shop.stop()
    stack.shop.env["ECSHOP_RECONCILE_INTERVAL"] = "0"
    stack.shop.start()
    summary = settle_and_check(stack, [r for r in results if r["status"] != 503], STOCK)
    held = redis.Redis(port=new.port, decode_responses=True)
    paid = [o for o in stack.orders() if o["status"] == "paid"]
    for order in paid:  # every paid order still holds its units in the new primary
        hold = held.hgetall(f"ecshop:{{stock}}:h:{order['number']}")
        assert hold == {"": "c", **{ln["sku"]: str(ln["qty"]) for ln in order["lines"]}}, order
    sold = Counter()
    for order in paid:
        for line in order["lines"]:
            sold[line["sku"]] += line["qty"]
    assert all(sold[sku] <= units for sku, units in STOCK.items()), sold
    figures = {
        "checkouts": {phase: dict(counts) for phase, counts in by_phase.items()},
        "answers_503": statuses[503],
        "seconds_without_primary": round(switched - killed, 2),
        "seconds_without_sales": round(
            min(r["sent"] for r in results if r["status"] == 201 and r["sent"] >= killed) - killed,
            2,
        ),
        "paid_units": dict(sold),
        "stock": STOCK,
        **{k: summary[k] for k in ("paid", "declined", "abandoned", "out_of_stock")},
    }
    print(f"\nredis failover: {json.dumps(figures, default=str)}")
