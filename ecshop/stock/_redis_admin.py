"""Slow-path Redis work of the Redis engine: start-up checks, rebuild, reading levels.

The hot calls go through the stock core's link; these go through redis-py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool

from ecshop.errors import ConfigError
from ecshop.stock._ledger import OrderHolds

CHUNK = 5000
FENCE_TIMEOUT = 1.0
SAFE_POLICIES = ("noeviction", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl")


def eviction_policy(client: redis.Redis) -> str:
    """The ``maxmemory-policy`` of the server, from CONFIG GET or else INFO.

    Raises:
        ConfigError: the server hides both (CONFIG and INFO renamed or disabled).
    """
    try:
        found = client.config_get("maxmemory-policy")
        if found.get("maxmemory-policy"):
            return str(found["maxmemory-policy"])
    except redis.ResponseError:
        pass  # CONFIG may be renamed or disabled (managed Redis): try INFO
    try:
        info = client.info("memory")
    except redis.ResponseError as exc:
        raise ConfigError(
            "ECSHOP_REDIS_URL: cannot read maxmemory-policy: CONFIG GET and INFO are disabled "
            "on this Redis; enable one of them so ecshop can check that it never evicts stock keys"
        ) from exc
    policy = info.get("maxmemory_policy")
    if not policy:
        raise ConfigError("ECSHOP_REDIS_URL: this Redis does not report its maxmemory-policy")
    return str(policy)


def check_policy(client: redis.Redis) -> str:
    """Refuse a Redis that may evict stock keys (``allkeys-*`` policies).

    ``volatile-*`` policies evict only keys with a TTL and stock keys never have one.
    """
    policy = eviction_policy(client)
    if policy not in SAFE_POLICIES:
        raise ConfigError(
            f"ECSHOP_REDIS_URL: maxmemory-policy is {policy!r}, which may evict stock keys "
            "and oversell; set maxmemory-policy noeviction on this Redis"
        )
    return policy


def scan_delete(client: redis.Redis, prefix: str, *, keep: str = "") -> int:
    """Delete every key under ``prefix`` but ``keep``; return how many."""
    pattern = prefix.replace("[", "\\[").replace("?", "\\?").replace("*", "\\*") + "*"
    removed = 0
    batch: list[bytes] = []
    spare = keep.encode()
    for key in client.scan_iter(match=pattern, count=CHUNK):
        if key == spare:
            continue
        batch.append(key)
        if len(batch) >= CHUNK:
            removed += int(client.unlink(*batch))
            batch = []
    if batch:
        removed += int(client.unlink(*batch))
    return removed


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def write_copy(
    client: redis.Redis, prefix: str, on_hand: dict[str, int], holds: OrderHolds
) -> None:
    """Write the levels and holds computed from the database (the engine seals them
    with the epoch marker after)."""
    held, sold = holds.per_sku()
    for chunk in _chunks(sorted(on_hand)):
        pipe = client.pipeline(transaction=False)
        for sku in chunk:
            h, c = held.get(sku, 0), sold.get(sku, 0)
            pipe.hset(
                f"{prefix}s:{sku}", mapping={"a": max(0, on_hand[sku] - h - c), "h": h, "c": c}
            )
        pipe.execute()
    entries = [(t, "h", lines) for t, lines in holds.held.items()]
    entries += [(t, "c", lines) for t, lines in holds.committed.items()]
    for chunk in _chunks(entries):
        pipe = client.pipeline(transaction=False)
        for token, state, lines in chunk:
            pipe.hset(f"{prefix}h:{token}", mapping={"": state, **dict(lines)})
            if state == "h":
                expires = int(holds.expires[token] * 1000)
                pipe.zadd(f"{prefix}exp", {token: expires})
        pipe.execute()


def fence_others(client: redis.Redis, epoch_key: str, source: str) -> list[str]:
    """Run ``fence.lua`` on every other server of a Sentinel service (none for one
    server); return the addresses of old primaries that were stopped from selling.

    The servers are the replicas redis-py's ``Sentinel`` reports up (a primary that just
    died is among them until Sentinel sees it down again). One that cannot be reached
    is skipped at once, without retries: a dead primary sells nothing.
    """
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return []
    primary = tuple(pool.get_master_address())
    kwargs = pool.connection_kwargs
    fenced = []
    for host, port in pool.sentinel_manager.discover_slaves(pool.service_name):
        if (host, port) == primary:
            continue
        other = redis.Redis(host=host, port=port, db=kwargs.get("db") or 0,
                            username=kwargs.get("username"), password=kwargs.get("password"),
                            socket_timeout=FENCE_TIMEOUT, socket_connect_timeout=FENCE_TIMEOUT,
                            retry=Retry(NoBackoff(), 0), protocol=2)  # fmt: skip
        try:
            if other.eval(source, 1, epoch_key):
                fenced.append(f"{host}:{port}")
        except redis.RedisError:
            pass  # down, or a replica already (it refuses writes: it cannot sell either)
        finally:
            other.close()
    return fenced


def server_id(client: redis.Redis) -> str:
    """The run_id of the server the client reaches now (as ``server_id()`` in
    ``lua/lib.lua`` reads it: redis-py's INFO parser may turn a run_id into a number)."""
    found = client.eval("return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')", 0)
    return found.decode() if isinstance(found, bytes) else str(found)


def new_epoch() -> str:
    """A rebuild's id: when, and a random part (``seal.lua`` adds the server's run_id)."""
    return f"{time.time():.3f}:{uuid.uuid4().hex[:8]}"


def read_levels(
    client: redis.Redis, prefix: str, skus: list[str]
) -> dict[str, tuple[int, int, int]]:
    """``(available, held, sold)`` per SKU as Redis has them (missing SKUs left out)."""
    out: dict[str, tuple[int, int, int]] = {}
    for chunk in _chunks(skus):
        pipe = client.pipeline(transaction=False)
        for sku in chunk:
            pipe.hmget(f"{prefix}s:{sku}", ["a", "h", "c"])
        for sku, values in zip(chunk, pipe.execute(), strict=True):
            if values[0] is not None:
                out[sku] = (int(values[0]), int(values[1] or 0), int(values[2] or 0))
    return out
