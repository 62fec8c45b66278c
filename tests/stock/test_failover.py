"""The Redis engine when its server changes: a server that turned replica is a link
failure, and behind Sentinel the stock core follows the new primary."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import redis

from ecshop import _stockcore_py
from ecshop.errors import StockUnavailable
from ecshop.stock.scripts import load_scripts
from ecshop.testing.sentinel import SentinelGroup
from ecshop.testing.servers import RedisServer

from .test_stockcore import MODULES

P = "p:{stock}:"
EPOCH = P + "epoch"


@pytest.fixture(params=MODULES)
def mod(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def replicated(primary: RedisServer) -> None:
    """Wait until the replica has every write the primary acknowledged."""
    with redis.Redis.from_url(primary.url, socket_timeout=30) as client:
        assert client.wait(1, 20_000) == 1


def test_a_replica_answers_as_a_link_failure(
    mod: ModuleType, redis_pair: tuple[RedisServer, RedisServer]
) -> None:
    primary, replica = redis_pair
    lk = mod.StockLink(primary.url, P, load_scripts())
    lk.command("SET", EPOCH, "1")
    assert lk.script("adjust", [EPOCH, P + "s:A"], [5, 1]) == [0, 5]
    replicated(primary)
    on_replica = mod.StockLink(replica.url, P, load_scripts())
    with pytest.raises(_stockcore_py.LinkError, match="replica"):
        on_replica.script("adjust", [EPOCH, P + "s:A"], [1, 0])
    on_replica.close()
    # The open connection's server turns replica.
    raw(replica.url).replicaof("NO", "ONE")
    raw(primary.url).replicaof("127.0.0.1", str(replica.port))
    with pytest.raises(_stockcore_py.LinkError, match="replica"):
        for _ in range(100):  # until the full sync has replaced its data
            lk.script("adjust", [EPOCH, P + "s:A"], [1, 0])
            time.sleep(0.05)
    lk.close()


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
    lk.command("SET", EPOCH, "1")
    assert lk.script("adjust", [EPOCH, P + "s:A"], [5, 1]) == [0, 5]
    replicated(old)
    group.kill_primary()
    new = group.wait_for_failover(old.port)
    errors: list[BaseException] = []
    reply = until_answered(lambda: lk.script("adjust", [EPOCH, P + "s:A"], [-1, 0]), errors)
    assert reply == [0, 4]
    assert all(isinstance(e, _stockcore_py.LinkError) for e in errors), errors
    assert raw(new.url).hget(P + "s:A", "a") == "4"
    lk.close()
