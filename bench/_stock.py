"""Helpers of the stock benchmarks: a primed Redis stock, CPU and wall time per call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from ecshop._stockcore_py import EPOCH_KEY
from ecshop.stock._redis_admin import server_id
from ecshop.stock.scripts import load_scripts

PREFIX = "bench:{stock}:"
CART = [("SKU-0001", 1), ("SKU-0002", 2), ("SKU-0003", 1)]


def prime(url: str, skus: list[str], units: int = 10**9) -> redis.Redis:
    """Empty the database, set the epoch marker and give every SKU ``units``."""
    client = redis.Redis.from_url(url, protocol=2)
    client.flushdb()
    # the marker names this server, as a rebuild's does (lua/verify.lua)
    client.set(f"{PREFIX}{EPOCH_KEY}", f"bench@{server_id(client)}")
    load = "for i = 1, #ARGV do redis.call('HSET', KEYS[1] .. ARGV[i], 'a', KEYS[2]) end"
    for start in range(0, len(skus), 5000):
        client.eval(load, 2, f"{PREFIX}s:", units, *skus[start : start + 5000])
    for source in load_scripts().values():
        client.script_load(source)
    return client


@dataclass
class PerCall:
    """Median-free plain means over a fixed loop: wall and client CPU per call, in µs."""

    wall_us: float
    cpu_us: float


def measure(fn: Callable[[], object], calls: int, *, per: int = 1) -> PerCall:
    """Run ``fn`` ``calls`` times; ``per`` round trips per run (time is per round trip)."""
    for _ in range(min(200, calls)):
        fn()  # warm up: connections, script cache
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    n = calls * per
    return PerCall(wall / n * 1e6, cpu / n * 1e6)
