"""The Redis engine when its server changes: a copy written elsewhere is never sold
from, a server that turned replica is a link failure, and behind Sentinel the engine
follows the new primary and rebuilds it from the database before it sells."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import redis

from ecshop import _stockcore_py
from ecshop._stockcore_py import EPOCH_KEY
from ecshop.errors import InsufficientStock, StockUnavailable
from ecshop.stock import Levels, RedisStockEngine
from ecshop.stock.scripts import load_scripts
from ecshop.store import Store, open_store
from ecshop.testing.sentinel import SERVICE, SentinelGroup
from ecshop.testing.servers import RedisServer

from .conftest import OrderMirror, add_product
from .test_stockcore import MODULES

P = "p:{stock}:"
EPOCH = P + EPOCH_KEY


@pytest.fixture(params=MODULES)
def mod(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = open_store(sqlite_url)
    s.migrate()
    yield s
    s.close()


def run_id(url: str) -> str:
    with redis.Redis.from_url(url, decode_responses=True) as client:
        return str(client.execute_command("INFO", "server")["run_id"])


def raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def replicated(primary: RedisServer) -> None:
    """Wait until the replica has every write the primary acknowledged."""
    with redis.Redis.from_url(primary.url, socket_timeout=30) as client:
        assert client.wait(1, 20_000) == 1


# -- the marker names its server --------------------------------------------------------
@pytest.mark.parametrize("marker", ["1.0:ab@" + "0" * 40, "1.0:ab"])
def test_a_copy_written_on_another_server_is_not_sold_from(
    mod: ModuleType, redis_url: str, marker: str
) -> None:
    """A marker of another server (or one older than the server check) is deleted by
    the first connection, before any script can sell from the copy."""
    client = raw(redis_url)
    client.set(EPOCH, marker)
    client.hset(P + "s:A", mapping={"a": 5, "h": 0, "c": 0})
    lk = mod.StockLink(redis_url, P, load_scripts())
    assert lk.script("adjust", [EPOCH, P + "s:A"], [-1, 0]) == [2]
    assert client.exists(EPOCH) == 0 and client.hget(P + "s:A", "a") == "5"
    lk.close()


def test_a_copy_sealed_here_is_kept(mod: ModuleType, redis_url: str) -> None:
    lk = mod.StockLink(redis_url, P, load_scripts())
    assert lk.script("seal", [EPOCH], ["1.0:ab", run_id(redis_url)]) == 1
    lk.close()
    again = mod.StockLink(redis_url, P, load_scripts())  # a new connection verifies
    assert again.script("adjust", [EPOCH, P + "s:A"], [5, 1]) == [0, 5]
    assert raw(redis_url).get(EPOCH) == f"1.0:ab@{run_id(redis_url)}"
    again.close()


def test_a_rebuild_seals_nothing_when_the_server_changed(mod: ModuleType, redis_url: str) -> None:
    lk = mod.StockLink(redis_url, P, load_scripts())
    assert lk.script("seal", [EPOCH], ["1.0:ab", "f" * 40]) == 0
    assert raw(redis_url).exists(EPOCH) == 0
    lk.close()


def test_a_replica_answers_as_a_link_failure(
    mod: ModuleType, redis_pair: tuple[RedisServer, RedisServer]
) -> None:
    primary, replica = redis_pair
    lk = mod.StockLink(primary.url, P, load_scripts())
    assert lk.script("seal", [EPOCH], ["1.0:ab", run_id(primary.url)]) == 1
    assert lk.script("adjust", [EPOCH, P + "s:A"], [5, 1]) == [0, 5]
    replicated(primary)
    on_replica = mod.StockLink(replica.url, P, load_scripts())
    with pytest.raises(_stockcore_py.LinkError, match="replica"):
        on_replica.command("PING")  # the connection's check would unseal: refused
    on_replica.close()
    # The open connection's server turns replica (of one with a copy of its own).
    raw(replica.url).replicaof("NO", "ONE")
    assert lk.command("PING") == b"PONG"
    raw(primary.url).replicaof("127.0.0.1", str(replica.port))
    with pytest.raises(_stockcore_py.LinkError, match="replica"):
        for _ in range(100):  # until the full sync has replaced its data
            lk.script("adjust", [EPOCH, P + "s:A"], [1, 0])
            time.sleep(0.05)
    lk.close()


# -- a promoted replica -----------------------------------------------------------------
def test_a_promoted_replica_is_rebuilt_before_it_sells(
    store: Store, redis_pair: tuple[RedisServer, RedisServer]
) -> None:
    primary, replica = redis_pair
    first = RedisStockEngine(store, primary.url)
    first.rebuild()
    add_product(store, first, "TEA", 10)
    mirror = OrderMirror(store, first)
    mirror.place("o1", [("TEA", 2)], ttl=None)
    mirror.place("o2", [("TEA", 1)], ttl=None)
    mirror.pay("o2")
    replicated(primary)
    raw(replica.url).replicaof("NO", "ONE")  # promoted: nothing more reaches it
    mirror.place("o3", [("TEA", 3)], ttl=None)  # acknowledged, never replicated
    mirror.pay("o1")
    first.close()
    assert raw(replica.url).hgetall(f"{first.prefix}s:TEA") == {"a": "7", "h": "2", "c": "1"}

    second = RedisStockEngine(store, replica.url)
    with pytest.raises(StockUnavailable, match="rebuild pending"):
        second.reserve("o4", [("TEA", 5)], ttl=None)  # 7 "available" here, 4 in truth
    assert second.needs_rebuild()
    second.rebuild()
    assert second.levels(["TEA"])["TEA"] == Levels(10, 4, 3, 3)
    assert second.audit() == []
    with pytest.raises(InsufficientStock):
        second.reserve("o4", [("TEA", 5)], ttl=None)
    second.reserve("o4", [("TEA", 4)], ttl=None)
    second.close()


# -- behind Sentinel --------------------------------------------------------------------
def until_answered(call: Callable[[], Any], errors: list[BaseException]) -> Any:
    """``call()`` again until it answers; what it raised meanwhile goes to ``errors``."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return call()
        except (StockUnavailable, _stockcore_py.LinkError) as exc:
            errors.append(exc)
            assert time.monotonic() < deadline, f"no answer after the failover: {exc}"
            time.sleep(0.1)


def test_a_link_follows_sentinel_to_the_new_primary(
    mod: ModuleType, sentinels: Callable[..., SentinelGroup]
) -> None:
    group = sentinels(1)
    lk = mod.StockLink(group.url, P, load_scripts(), timeout=2)
    old = group.primary()
    assert lk.script("seal", [EPOCH], ["1.0:ab", run_id(old.url)]) == 1
    assert lk.script("adjust", [EPOCH, P + "s:A"], [5, 1]) == [0, 5]
    replicated(old)
    group.kill_primary()
    new = group.wait_for_failover(old.port)
    errors: list[BaseException] = []
    reply = until_answered(lambda: lk.script("adjust", [EPOCH, P + "s:A"], [-1, 0]), errors)
    assert reply == [2]  # on the new primary, whose copy came from the old one
    assert all(isinstance(e, _stockcore_py.LinkError) for e in errors), errors
    assert raw(new.url).hget(P + "s:A", "a") == "5" and raw(new.url).exists(EPOCH) == 0
    lk.close()


def test_a_failover_by_hand_fences_the_old_primary(
    store: Store, sentinels: Callable[..., SentinelGroup]
) -> None:
    """The replaced primary stays up and takes writes until Sentinel demotes it: the
    rebuild of the new one first stops it from selling, and a worker still connected
    to it moves over."""
    group = sentinels(1)
    first = RedisStockEngine(store, group.url, timeout=2)
    first.rebuild()
    add_product(store, first, "TEA", 10)
    mirror = OrderMirror(store, first)
    mirror.place("o1", [("TEA", 2)], ttl=None)
    mirror.place("o2", [("TEA", 1)], ttl=None)
    mirror.pay("o2")
    old = group.primary()
    replicated(old)
    group.sentinels[0].ask(lambda client: client.sentinel_failover(SERVICE))
    new = group.wait_for_failover(old.port)
    # Another worker connects now: to the new primary, whose copy it unseals; it
    # rebuilds it, as the reconciler's loop would.
    second = RedisStockEngine(store, group.url, timeout=2)
    errors: list[BaseException] = []
    assert until_answered(second.needs_rebuild, errors) is True
    until_answered(second.rebuild, errors)
    marker = raw(old.url).get(f"{first.prefix}{EPOCH_KEY}")
    assert marker is None or marker.endswith("@" + run_id(new.url)), "the old primary sells"
    # The first worker still has its connection to the old primary: it gets 503s
    # until its next connection goes to the new one.
    until_answered(lambda: mirror.place("o3", [("TEA", 7)], ttl=None), errors)
    assert all(isinstance(e, StockUnavailable) for e in errors), errors
    assert first.levels(["TEA"])["TEA"] == Levels(10, 0, 9, 1)
    assert second.audit() == []
    assert second.client.connection_pool.get_master_address()[1] == new.port
    first.close()
    second.close()
