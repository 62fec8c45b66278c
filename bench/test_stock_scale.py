"""Reserve cost as the catalog and the live holds grow: 1k to 1M SKUs, then 100k holds.

Each step measures one reserve + release pair of a 3-line cart through the compiled
core (wall and client CPU per round trip) and the server's own time per EVALSHA from
``INFO commandstats``, the figure least disturbed by a noisy machine.

    .venv/bin/pytest bench/test_stock_scale.py -s
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from _stock import PREFIX, measure, prime

from ecshop._stockcore_py import EPOCH_KEY
from ecshop.stock.scripts import load_scripts
from ecshop.stockcore import core
from ecshop.testing.servers import RedisServer

CALLS = 3_000
REPEATS = 5
RESULTS: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    s = RedisServer().start()
    yield s
    s.cleanup()


def _skus(n: int) -> list[str]:
    return [f"SKU-{i:07d}" for i in range(n)]


def _step(url: str, client: redis.Redis, name: str, cart: list[tuple[str, int]]) -> None:
    link = core.StockLink(url, PREFIX, load_scripts())

    def pair() -> None:
        assert link.reserve("scale-token", cart, 600_000)[0] == 0
        link.hold_call("release", "scale-token", "h")

    measure(pair, 500, per=2)
    best: dict[str, float] = {}
    for _ in range(REPEATS):  # NOTE: the least disturbed of a few runs: the machine is shared
        client.config_resetstat()
        per = measure(pair, CALLS, per=2)
        server_us = float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])
        run = {"wall_us": per.wall_us, "cpu_us": per.cpu_us, "server_us": server_us}
        best = {k: min(v, best.get(k, v)) for k, v in run.items()}
    RESULTS[name] = best
    link.close()


def _hold_many(client: redis.Redis, skus: list[str], count: int) -> None:
    """``count`` live holds of one unit each, through the real reserve script."""
    sha = client.script_load(load_scripts()["reserve"])
    rng = random.Random(7)
    p = PREFIX
    for start in range(0, count, 5000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(count, start + 5000)):
            sku, token = rng.choice(skus), f"live-{i}"
            keys = [p + EPOCH_KEY, p + "h:" + token, p + "exp", p + "s:" + sku]
            pipe.evalsha(sha, len(keys), *keys, p, token, 3_600_000, sku, 1)
        pipe.execute()


@pytest.mark.parametrize("n", [1_000, 10_000, 100_000, 1_000_000])
def test_catalog_size(server: RedisServer, n: int, benchmark: Any) -> None:
    skus = _skus(n)
    client = prime(server.url, skus)
    cart = [(skus[0], 1), (skus[n // 2], 2), (skus[-1], 1)]
    benchmark.pedantic(_step, args=(server.url, client, f"{n} SKUs", cart), rounds=1)


def test_live_holds(server: RedisServer, benchmark: Any) -> None:
    skus = _skus(1_000_000)
    client = prime(server.url, skus)
    cart = [(skus[0], 1), (skus[500_000], 2), (skus[-1], 1)]
    _hold_many(client, skus, 100_000)
    benchmark.pedantic(_step, args=(server.url, client, "1M SKUs + 100k holds", cart), rounds=1)
    _hold_many(client, [s for s, _ in cart], 100_000)  # now on the cart's own SKUs
    name = "1M SKUs + 100k holds on the cart's SKUs"
    benchmark.extra_info["holds_on_cart"] = int(client.hget(f"{PREFIX}s:{skus[0]}", "h") or 0)
    _step(server.url, client, name, cart)


def test_zz_report() -> None:
    if not RESULTS:
        pytest.skip("nothing measured")
    print("\nreserve+release per round trip        wall µs   client CPU µs   server µs/EVALSHA")
    for name, r in RESULTS.items():
        print(f"  {name:40} {r['wall_us']:7.1f}   {r['cpu_us']:8.1f}   {r['server_us']:10.2f}")
    base = RESULTS.get("1000 SKUs")
    if base:
        for name, r in RESULTS.items():
            print(
                f"  {name:40} server x{r['server_us'] / base['server_us']:.2f}, "
                f"wall x{r['wall_us'] / base['wall_us']:.2f} of 1k SKUs (target within 1.2)"
            )
