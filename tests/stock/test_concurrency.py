"""The last unit: many processes reserve it at once, exactly one wins, every round.

Real processes against real servers: 200 workers loop over the rounds in lock step
(a barrier starts each round, a second one ends it) while the test puts exactly one
unit on sale before each round.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from typing import Any

import pytest

from ecshop.errors import InsufficientStock
from ecshop.stock import Levels
from ecshop.store import Store, open_store

from .conftest import add_product, new_engine

WORKERS = 200
ROUNDS = 100


def _worker(
    kind: str, db_url: str, redis_url: str | None, prefix: str, idx: int, rounds: int,
    start: Any, end: Any, wins: Any, errors: Any,
) -> None:  # fmt: skip
    engine: Any = None
    try:
        store = open_store(db_url, lock_timeout=30)
        if kind == "redis":
            from ecshop.stock import RedisStockEngine

            assert redis_url
            engine = RedisStockEngine(store, redis_url, prefix=prefix)
        else:
            from ecshop.stock import SQLStockEngine

            engine = SQLStockEngine(store)
        for r in range(rounds):
            start.wait()
            try:
                engine.reserve(f"w{idx}r{r}", [("HOT", 1)], ttl=600)
            except InsufficientStock:
                pass
            else:
                with wins.get_lock():
                    wins[r] += 1
            end.wait()
    except BaseException:
        with errors.get_lock():
            errors.value += 1
        traceback.print_exc()
        start.abort()
        end.abort()
    finally:
        if engine is not None:
            engine.close()


def _last_unit(kind: str, store: Store, db_url: str, redis_url: str | None) -> None:
    engine = new_engine(kind, store, redis_url)
    add_product(store, engine, "HOT", 0)
    ctx = mp.get_context("fork")
    start, end = ctx.Barrier(WORKERS + 1, timeout=300), ctx.Barrier(WORKERS + 1, timeout=300)
    wins, errors = ctx.Array("i", ROUNDS), ctx.Value("i", 0)
    prefix = getattr(engine, "prefix", "")
    procs = [
        ctx.Process(
            target=_worker,
            args=(kind, db_url, redis_url, prefix, i, ROUNDS, start, end, wins, errors),
        )
        for i in range(WORKERS)
    ]
    for p in procs:
        p.start()
    try:
        for _ in range(ROUNDS):
            engine.adjust("HOT", 1, reason="one unit per round", actor="test")
            start.wait()
            end.wait()
    finally:
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    assert errors.value == 0
    assert list(wins) == [1] * ROUNDS
    assert engine.levels(["HOT"])["HOT"] == Levels(ROUNDS, 0, ROUNDS, 0)
    engine.close()


def test_last_unit_on_redis(redis_url: str, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    store.migrate()
    _last_unit("redis", store, sqlite_url, redis_url)


@pytest.mark.mysql
def test_last_unit_on_mariadb(mysql_url: str) -> None:
    store = open_store(mysql_url)
    store.migrate()
    _last_unit("mysql", store, mysql_url, None)
