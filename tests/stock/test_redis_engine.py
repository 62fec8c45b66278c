"""The Redis engine only: data loss, broken keys, the server it refuses, key layout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from ecshop._stockcore_py import EPOCH_KEY
from ecshop.errors import ConfigError, InsufficientStock, StockUnavailable
from ecshop.stock import Levels, RedisStockEngine
from ecshop.store import Store, open_store
from ecshop.testing.servers import RedisServer

from .conftest import OrderMirror, add_product, expire_hold


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = open_store(sqlite_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def eng(store: Store, redis_url: str) -> Iterator[RedisStockEngine]:
    e = RedisStockEngine(store, redis_url)
    e.rebuild()
    add_product(store, e, "TEA", 5)
    add_product(store, e, "CUP", 3)
    yield e
    e.close()


def test_flush_refuses_to_sell_until_rebuild(eng: RedisStockEngine, store: Store) -> None:
    mirror = OrderMirror(store, eng)
    mirror.place("o1", [("TEA", 2)])
    mirror.place("o2", [("TEA", 1), ("CUP", 1)])
    mirror.pay("o2")
    eng.adjust("TEA", 4, reason="received", actor="ann")
    eng.client.flushdb()
    with pytest.raises(StockUnavailable) as err:
        eng.reserve("o3", [("TEA", 1)], ttl=60)
    assert err.value.status == 503 and err.value.retry_after
    for call in (lambda: eng.commit("o1"), lambda: eng.release("o1"), lambda: eng.levels()):
        with pytest.raises(StockUnavailable):
            call()
    with pytest.raises(StockUnavailable):
        eng.adjust("TEA", -1, reason="damaged", actor="ann")
    assert eng.audit()[0]["sku"] is None
    eng.rebuild()
    assert eng.audit() == []
    assert eng.levels(["TEA"])["TEA"] == Levels(9, 6, 2, 1)
    eng.reserve("o3", [("TEA", 1)], ttl=60)
    assert eng.commit("o1") is True


def test_restart_loses_data_and_rebuild_restores_it(
    store: Store, private_redis: RedisServer
) -> None:
    e = RedisStockEngine(store, private_redis.unix_url)
    e.rebuild()
    add_product(store, e, "TEA", 5)
    OrderMirror(store, e).place("o1", [("TEA", 2)])
    private_redis.restart()
    with pytest.raises(StockUnavailable):
        e.reserve("o2", [("TEA", 1)], ttl=60)
    e.rebuild()
    assert e.levels(["TEA"])["TEA"] == Levels(5, 3, 2, 0)
    assert e.audit() == []
    e.close()


def test_unreachable_redis_is_unavailable(store: Store, private_redis: RedisServer) -> None:
    e = RedisStockEngine(store, private_redis.url)
    e.rebuild()
    private_redis.stop()
    with pytest.raises(StockUnavailable):
        e.reserve("o1", [("TEA", 1)], ttl=60)
    e.close()


@pytest.mark.parametrize("broken", ["h:o2", "exp", "s:CUP"])
def test_a_failing_script_writes_nothing(eng: RedisStockEngine, broken: str) -> None:
    """A key of the wrong type fails the script before its first write."""
    eng.reserve("o1", [("CUP", 1)], ttl=60)
    key = f"{eng.prefix}{broken}"
    saved = eng.client.dump(key)
    eng.client.delete(key)
    eng.client.set(key, "not a hash or zset")
    before = {k: eng.client.dump(k) for k in eng.client.keys(f"{eng.prefix}*")}
    with pytest.raises(StockUnavailable, match="wrong kind of value"):
        eng.reserve("o2", [("CUP", 1), ("TEA", 2)], ttl=60)
    after = {k: eng.client.dump(k) for k in eng.client.keys(f"{eng.prefix}*")}
    assert after == before
    eng.client.delete(key)
    if saved is not None:
        eng.client.restore(key, 0, saved)
    eng.reserve("o2", [("CUP", 1), ("TEA", 2)], ttl=60)
    assert eng.levels(["CUP"])["CUP"] == Levels(3, 1, 2, 0)


def test_a_failing_reclaim_writes_nothing(eng: RedisStockEngine, store: Store) -> None:
    """An expired hold whose other SKU is broken: nothing of the reserve is written."""
    eng.reserve("o1", [("CUP", 1), ("TEA", 1)], ttl=60)
    p = eng.prefix
    eng.client.zadd(f"{p}exp", {"o1": 0})
    eng.client.delete(f"{p}s:TEA")
    eng.client.set(f"{p}s:TEA", "broken")
    before = {k: eng.client.dump(k) for k in eng.client.keys(f"{p}*")}
    with pytest.raises(StockUnavailable):
        eng.reserve("o2", [("CUP", 3)], ttl=60)
    assert {k: eng.client.dump(k) for k in eng.client.keys(f"{p}*")} == before


def test_all_keys_share_one_hash_tag(eng: RedisStockEngine, store: Store) -> None:
    mirror = OrderMirror(store, eng)
    mirror.place("o1", [("TEA", 1), ("CUP", 1)])
    mirror.place("o2", [("TEA", 1)])
    mirror.pay("o2")
    keys = [k.decode() for k in eng.client.keys("*")]
    assert len(keys) >= 6
    # Redis Cluster hashes only the part between the first "{" and the next "}"
    tags = {k[k.index("{") + 1 : k.index("}", k.index("{"))] for k in keys}
    assert tags == {"stock"}


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_refuses_a_redis_that_evicts(store: Store, private_redis: RedisServer, policy: str) -> None:
    redis.Redis.from_url(private_redis.url).config_set("maxmemory-policy", policy)
    with pytest.raises(ConfigError, match="maxmemory-policy"):
        RedisStockEngine(store, private_redis.url)


def _server(tmp_path_factory: pytest.TempPathFactory, *renamed: str) -> RedisServer:
    args: list[str] = []
    for command in renamed:
        args += ["--rename-command", command, ""]
    return RedisServer(directory=tmp_path_factory.mktemp("redis"), extra_args=tuple(args)).start()


def test_policy_is_read_from_info_when_config_is_disabled(
    store: Store, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = _server(tmp_path_factory, "CONFIG")
    try:
        RedisStockEngine(store, server.url).close()
    finally:
        server.cleanup()


def test_says_so_when_config_and_info_are_disabled(
    store: Store, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = _server(tmp_path_factory, "CONFIG", "INFO")
    try:
        with pytest.raises(ConfigError, match="CONFIG GET and INFO are disabled"):
            RedisStockEngine(store, server.url)
    finally:
        server.cleanup()


def test_unix_socket_url(store: Store, redis_server: Any) -> None:
    if redis_server is None:
        pytest.skip("ECSHOP_TEST_REDIS_URL is set: no private socket to use")
    e = RedisStockEngine(store, redis_server.unix_url, prefix="unix:{stock}:")
    e.rebuild()
    add_product(store, e, "TEA", 2)
    e.reserve("o1", [("TEA", 2)], ttl=60)
    assert e.levels(["TEA"])["TEA"] == Levels(2, 0, 2, 0)
    e.close()


def test_one_rebuild_at_a_time(eng: RedisStockEngine) -> None:
    eng.client.set(f"{eng.prefix}rebuilding", "1", px=60_000)
    with pytest.raises(StockUnavailable, match="already running"):
        eng.rebuild()
    assert eng.needs_rebuild() is False  # the refused rebuild touched nothing
    eng.client.delete(f"{eng.prefix}rebuilding")
    eng.client.delete(f"{eng.prefix}{EPOCH_KEY}")
    assert eng.needs_rebuild() is True
    eng.rebuild()
    assert eng.needs_rebuild() is False
    assert eng.client.exists(f"{eng.prefix}rebuilding") == 0


def test_a_reserve_gives_back_expired_holds_of_any_sku(eng: RedisStockEngine, store: Store) -> None:
    """Lazy reclaim reads the one expiry index: an abandoned TEA cart comes back when
    someone holds CUP, before any sweep."""
    mirror = OrderMirror(store, eng)
    mirror.place("o1", [("TEA", 4)])
    mirror.place("o2", [("TEA", 1), ("CUP", 1)])
    expire_hold(eng, store, "o1")
    eng.reserve("o3", [("CUP", 1)], ttl=60)
    assert eng.levels(["TEA", "CUP"]) == {
        "TEA": Levels(5, 4, 1, 0),
        "CUP": Levels(3, 1, 2, 0),
    }
    assert eng.client.exists(f"{eng.prefix}h:o1") == 0
    assert eng.client.zscore(f"{eng.prefix}exp", "o1") is None
    assert eng.sweep() == 0
    assert eng.commit("o2") is True


def test_more_expired_holds_than_one_reserve_takes_back_are_swept_first(
    eng: RedisStockEngine, store: Store
) -> None:
    """A reserve gives back at most 64 expired holds, the earliest first. When those were
    of other SKUs and its own SKU is short, the engine sweeps and asks again rather than
    refusing units that sit in an abandoned cart."""
    add_product(store, eng, "JAM", 140)
    p = eng.prefix
    for n in range(140):
        eng.reserve(f"j{n}", [("JAM", 1)], ttl=60)
    eng.reserve("c1", [("CUP", 3)], ttl=60)
    # time passes: every JAM hold expired long ago, the CUP hold after all of them
    eng.client.zadd(f"{p}exp", {f"j{n}": n for n in range(140)} | {"c1": 1000})
    # the script alone: 64 JAM holds back, CUP still short, more may wait
    assert eng.link.reserve("c2", [("CUP", 2)], 60_000) == [4, 64]
    assert eng.levels(["JAM"])["JAM"] == Levels(140, 64, 76, 0)
    eng.reserve("c2", [("CUP", 2)], ttl=60)  # 64 more, then the sweep, then the hold
    assert eng.levels(["JAM", "CUP"]) == {
        "JAM": Levels(140, 140, 0, 0),
        "CUP": Levels(3, 1, 2, 0),
    }
    assert eng.client.zcard(f"{p}exp") == 1
    with pytest.raises(InsufficientStock):
        eng.reserve("c3", [("CUP", 2)], ttl=60)


def test_a_copy_in_the_old_key_layout_is_rebuilt_not_sold_from(
    eng: RedisStockEngine, store: Store
) -> None:
    """A copy written by the previous layout (marker at P.."epoch", an expiry zset per
    SKU at P.."x:"..sku) has no marker of this layout: the engine refuses to sell until
    the rebuild replaced it, old keys and all."""
    p = eng.prefix
    OrderMirror(store, eng).place("o1", [("TEA", 2)])
    marker = eng.client.get(f"{p}{EPOCH_KEY}")
    eng.client.delete(f"{p}{EPOCH_KEY}")
    eng.client.set(f"{p}epoch", marker)  # type: ignore[arg-type]
    eng.client.zadd(f"{p}x:TEA", {"o1": 0})
    eng.client.hset(f"{p}s:TEA", "a", 5)  # bookkeeping this layout would get wrong
    assert eng.needs_rebuild() is True
    with pytest.raises(StockUnavailable, match="rebuild pending"):
        eng.reserve("o2", [("TEA", 1)], ttl=60)
    with pytest.raises(StockUnavailable):
        eng.commit("o1")
    assert eng.sweep() == 0
    eng.rebuild()
    assert eng.client.exists(f"{p}epoch", f"{p}x:TEA") == 0
    assert eng.levels(["TEA"])["TEA"] == Levels(5, 3, 2, 0)
    assert eng.audit() == []
    eng.reserve("o2", [("TEA", 3)], ttl=60)
    assert eng.levels(["TEA"])["TEA"] == Levels(5, 0, 5, 0)
