"""Fixtures of the stock suite: each engine on a migrated store, and an orders mirror.

``engine`` runs a test on the Redis engine, the SQL engine on SQLite and the SQL engine
on MariaDB. The Redis engine's record of holds is the orders table, so tests that
rebuild or audit write minimal ``orders`` rows through :class:`OrderMirror`, as the
orders service does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from ecshop.stock import RedisStockEngine, SQLStockEngine
from ecshop.store import Store, open_store

ENGINES = ["redis", "sqlite", "mysql"]


def add_product(store: Store, engine: Any, sku: str, on_hand: int) -> None:
    """A product row and its stock, as the catalog creates them."""
    with store.tx() as tx:
        now = time.time()
        tx.execute(
            "INSERT INTO products (sku, name, description, price, currency, created_at, "
            "updated_at) VALUES (?, ?, '', 100, 'JPY', ?, ?)",
            (sku, sku, now, now),
        )
        engine.add_sku(sku, on_hand, actor="test")


class OrderMirror:
    """Writes the orders rows that record holds and sales, like the orders service."""

    def __init__(self, store: Store, engine: Any) -> None:
        self.store = store
        self.engine = engine

    def place(
        self, number: str, lines: Iterable[tuple[str, int]], *, ttl: float | None = 600
    ) -> None:
        """A hold with a ``ttl`` is an offline order's (``accepted``, its pay window);
        ``ttl=None`` is a gateway order's (``pending_payment``, held until released)."""
        lines = list(lines)
        self.engine.reserve(number, lines, ttl=ttl)
        now = time.time()
        status = "pending_payment" if ttl is None else "accepted"
        with self.store.tx() as tx:
            tx.execute(
                "INSERT INTO orders (number, access_token, status, stock_state, gateway, currency, "
                "subtotal, total, customer_json, hold_expires_at, created_at, updated_at) "
                "VALUES (?, 't', ?, 'held', 'sandbox', 'JPY', 0, 0, '{}', ?, ?, ?)",
                (number, status, now + (ttl or 900), now, now),
            )
            tx.executemany(
                "INSERT INTO order_lines (order_number, line_no, sku, name, unit_price, qty, "
                "line_total) VALUES (?, ?, ?, ?, 100, ?, 0)",
                [(number, i, sku, sku, qty) for i, (sku, qty) in enumerate(lines, 1)],
            )

    def state(self, number: str, stock_state: str, **extra: Any) -> None:
        sets = ", ".join(["stock_state = ?", *(f"{k} = ?" for k in extra)])
        with self.store.tx() as tx:
            tx.execute(
                f"UPDATE orders SET {sets} WHERE number = ?", (stock_state, *extra.values(), number)
            )

    def pay(self, number: str) -> bool:
        with self.store.tx():
            ok = bool(self.engine.commit(number))
            self.state(number, "committed" if ok else "released")
        return ok

    def cancel(self, number: str) -> None:
        with self.store.tx():
            self.engine.release(number)
            self.state(number, "released")

    def restock(self, number: str, lines: list[tuple[str, int]]) -> None:
        with self.store.tx():
            self.engine.restock(number, lines)
            self.state(number, "released")

    def ship(self, number: str) -> None:
        with self.store.tx():
            self.engine.ship(number, actor="test")
            self.state(number, "shipped")


def expire_hold(engine: Any, store: Store, token: str) -> None:
    """Make a hold expire now: time passes for this one hold."""
    with store.tx() as tx:
        tx.execute("UPDATE orders SET hold_expires_at = 0 WHERE number = ?", (token,))
        tx.execute("UPDATE stock_holds SET expires_at = 0 WHERE token = ?", (token,))
    if isinstance(engine, RedisStockEngine):
        p = engine.prefix
        pipe = engine.client.pipeline()
        if engine.client.zscore(f"{p}exp", token) is not None:
            pipe.zadd(f"{p}exp", {token: 0})
        pipe.execute()


def new_engine(kind: str, store: Store, redis_url: str | None = None) -> Any:
    if kind == "redis":
        assert redis_url
        engine = RedisStockEngine(store, redis_url, prefix=f"t{uuid.uuid4().hex[:8]}:{{stock}}:")
        engine.rebuild()
        return engine
    return SQLStockEngine(store)


@pytest.fixture(params=ENGINES)
def engine_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stock_store(engine_kind: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    url = request.getfixturevalue("mysql_url" if engine_kind == "mysql" else "sqlite_url")
    store = open_store(url)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def engine(engine_kind: str, stock_store: Store, request: pytest.FixtureRequest) -> Iterator[Any]:
    url = request.getfixturevalue("redis_url") if engine_kind == "redis" else None
    eng = new_engine(engine_kind, stock_store, url)
    yield eng
    eng.close()


@pytest.fixture
def mirror(stock_store: Store, engine: Any) -> OrderMirror:
    return OrderMirror(stock_store, engine)


@pytest.fixture
def shelf(stock_store: Store, engine: Any) -> Any:
    add_product(stock_store, engine, "TEA", 5)
    add_product(stock_store, engine, "CUP", 2)
    add_product(stock_store, engine, "POT", 0)
    return engine
