"""A state machine over every stock operation keeps the books balanced after each step.

``on_hand = available + held + sold_unshipped`` and ``available >= 0`` for every SKU,
``on_hand`` and the sold units exactly as the model says, and every reserve decided as
the model decides it, through reserve, commit, release, expiry, sweep, restock, ship,
adjust, stale and fresh counts, audit and (Redis) flush + rebuild.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import defaultdict
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ecshop.errors import InsufficientStock, StaleStock, StockUnavailable
from ecshop.stock import RedisStockEngine
from ecshop.store import open_store

from .conftest import OrderMirror, add_product, expire_hold, new_engine

SKUS = ("A", "B", "C")
START = 3
SETTINGS = settings(
    max_examples=200,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
LINES = st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=3)


class StockMachine(RuleBasedStateMachine):
    kind = "sqlite"
    redis_url: str | None = None
    db_url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        url = self.db_url or f"sqlite:///{self.dir}/shop.db"
        self.store = open_store(url)
        self.store.migrate()
        if self.db_url:  # one database for every example: start from empty tables
            with self.store.tx() as tx:
                for table in ("stock_holds", "stock_changes", "order_lines", "orders", "stock"):
                    tx.execute(f"DELETE FROM {table}")
                tx.execute("DELETE FROM products")
        self.engine: Any = new_engine(self.kind, self.store, self.redis_url)
        self.mirror = OrderMirror(self.store, self.engine)
        self.tag = uuid.uuid4().hex[:6]
        self.skus = [f"{s}{self.tag}" for s in SKUS]
        for sku in self.skus:
            add_product(self.store, self.engine, sku, START)
        self.on_hand = dict.fromkeys(self.skus, START)
        self.orders: dict[str, dict[str, Any]] = {}
        self.count = 0

    def teardown(self) -> None:
        self.engine.close()
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model ----------------------------------------------------------------------
    def _units(self, state: str) -> dict[str, int]:
        units: dict[str, int] = defaultdict(int)
        for order in self.orders.values():
            if order["state"] == state:
                for sku, qty in order["lines"]:
                    units[sku] += qty
        return units

    def _in(self, *states: str) -> list[str]:
        return sorted(n for n, o in self.orders.items() if o["state"] in states)

    def _gone(self, number: str) -> None:
        del self.orders[number]
        self.mirror.state(number, "released")

    def _sku(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.skus))

    # -- rules --------------------------------------------------------------------------
    @rule(raw=LINES)
    def reserve(self, raw: list[tuple[str, int]]) -> None:
        lines = [(f"{sku}{self.tag}", qty) for sku, qty in raw]
        need: dict[str, int] = defaultdict(int)
        for sku, qty in lines:
            need[sku] += qty
        live, sold = self._units("held"), self._units("committed")
        cap = {s: self.on_hand[s] - live[s] - sold[s] for s in need}
        number = f"o{self.tag}-{self.count}"
        self.count += 1
        try:
            self.mirror.place(number, lines)
        except InsufficientStock as exc:
            assert any(need[s] > cap[s] for s in need)
            assert exc.items == [(s, need[s], cap[s]) for s in sorted(need) if need[s] > cap[s]]
            return
        assert all(need[s] <= cap[s] for s in need)
        for other in self._in("expired"):  # reclaimed on the way: they share a SKU
            if {s for s, _ in self.orders[other]["lines"]} & set(need):
                self._gone(other)
        self.orders[number] = {"lines": sorted(need.items()), "state": "held"}

    @precondition(lambda self: bool(self._in("held", "expired")))
    @rule(data=st.data())
    def pay(self, data: st.DataObject) -> None:
        number = data.draw(st.sampled_from(self._in("held", "expired")))
        ok = self.mirror.pay(number)
        if self.orders[number]["state"] == "held":
            assert ok
            self.orders[number]["state"] = "committed"
        else:
            assert not ok
            del self.orders[number]

    @precondition(lambda self: bool(self._in("held", "expired")))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        number = data.draw(st.sampled_from(self._in("held", "expired")))
        self.mirror.cancel(number)
        del self.orders[number]
        assert self.engine.release(number) is False

    @precondition(lambda self: bool(self._in("held")))
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        number = data.draw(st.sampled_from(self._in("held")))
        expire_hold(self.engine, self.store, number)
        self.orders[number]["state"] = "expired"

    @rule()
    def sweep(self) -> None:
        expired = self._in("expired")
        assert self.engine.sweep() <= len(expired)
        for number in expired:
            self._gone(number)

    @precondition(lambda self: bool(self._in("committed")))
    @rule(data=st.data())
    def restock(self, data: st.DataObject) -> None:
        number = data.draw(st.sampled_from(self._in("committed")))
        self.mirror.restock(number, self.orders[number]["lines"])
        self.engine.restock(number, self.orders[number]["lines"])  # idempotent
        del self.orders[number]

    @precondition(lambda self: bool(self._in("committed")))
    @rule(data=st.data())
    def ship(self, data: st.DataObject) -> None:
        number = data.draw(st.sampled_from(self._in("committed")))
        self.mirror.ship(number)
        for sku, qty in self.orders.pop(number)["lines"]:
            self.on_hand[sku] -= qty

    @rule(data=st.data(), delta=st.integers(-4, 4).filter(bool))
    def adjust(self, data: st.DataObject, delta: int) -> None:
        sku = self._sku(data)
        available = self.engine.levels([sku])[sku].available
        try:
            self.engine.adjust(sku, delta, reason="count", actor="test")
        except InsufficientStock:
            assert available + delta < 0
        else:
            assert available + delta >= 0
            self.on_hand[sku] += delta

    @rule(data=st.data(), off=st.integers(1, 3), new=st.integers(0, 8))
    def set_count(self, data: st.DataObject, off: int, new: int) -> None:
        sku = self._sku(data)
        with pytest.raises(StaleStock) as err:
            self.engine.set_on_hand(
                sku, new, expected_on_hand=self.on_hand[sku] + off, actor="t", reason="count"
            )
        assert err.value.details["on_hand"] == self.on_hand[sku]
        available = self.engine.levels([sku])[sku].available
        try:
            self.engine.set_on_hand(
                sku, new, expected_on_hand=self.on_hand[sku], actor="t", reason="count"
            )
        except InsufficientStock:
            assert available + new - self.on_hand[sku] < 0
        else:
            self.on_hand[sku] = new

    @rule()
    def audit(self) -> None:
        assert self.engine.audit() == []
        if isinstance(self.engine, RedisStockEngine):  # the Redis audit sweeps first
            for number in self._in("expired"):
                self._gone(number)

    @rule()
    def flush_and_rebuild(self) -> None:
        if isinstance(self.engine, RedisStockEngine):
            self.engine.client.flushdb()
            with pytest.raises(StockUnavailable):
                self.engine.reserve("after-flush", [(self.skus[0], 1)], ttl=60)
        self.engine.rebuild()
        for number in self._in("expired"):
            self._gone(number)
        assert self.engine.audit() == []

    @invariant()
    def balanced(self) -> None:
        levels = self.engine.levels()
        live, expired, sold = self._units("held"), self._units("expired"), self._units("committed")
        for sku in self.skus:
            lv = levels[sku]
            assert lv.on_hand == self.on_hand[sku]
            assert lv.on_hand == lv.available + lv.held + lv.sold_unshipped
            assert lv.available >= 0
            assert lv.sold_unshipped == sold[sku]
            assert live[sku] <= lv.held <= live[sku] + expired[sku]


def _run(kind: str, redis_url: str | None = None, db_url: str = "", **over: Any) -> None:
    machine = type(
        f"StockMachine_{kind}",
        (StockMachine,),
        {"kind": kind, "redis_url": redis_url, "db_url": db_url},
    )
    run_state_machine_as_test(machine, settings=settings(SETTINGS, **over))


def test_books_balance_on_redis(redis_url: str) -> None:
    _run("redis", redis_url)
    redis.Redis.from_url(redis_url).flushdb()


def test_books_balance_on_sqlite() -> None:
    _run("sqlite")


@pytest.mark.mysql
def test_books_balance_on_mariadb(mysql_url: str) -> None:
    _run("mysql", db_url=mysql_url)
