"""The Redis stock engine: atomic Lua scripts on the hot path, the database as truth.

Redis keeps ``available``, ``held`` and ``sold`` per SKU and the holds (layout in
``lua/lib.lua``); the database keeps ``on_hand`` and, in the orders table, every hold
and sale that matters (``orders.stock_state``). Redis is a cache the database can
rebuild: while its epoch marker is missing (restart, flush) the engine refuses to sell
with :class:`StockUnavailable` until :meth:`RedisStockEngine.rebuild` has run. The
marker names the server the rebuild wrote to, and the stock core checks it on every new
connection (``lua/verify.lua``): a replica promoted by a failover, which may lack the
last writes, loses the marker there and is rebuilt before it sells (docs/architecture.md,
"Redis behind Sentinel").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis

from ecshop import metrics
from ecshop._redisurl import client_for
from ecshop.errors import Conflict, InsufficientStock, NotFound, StockUnavailable
from ecshop.logconf import Repeats
from ecshop.redact import mask
from ecshop.stock import _ledger, _redis_admin
from ecshop.stock._base import EngineBase
from ecshop.stock._types import NEVER, Levels, check_text, check_token, check_ttl
from ecshop.stock.scripts import load_scripts
from ecshop.stockcore import core
from ecshop.store import Store

log = logging.getLogger("ecshop.stock")

DEFAULT_PREFIX = "ecshop:{stock}:"
SWEEP_BATCH = 500
REBUILD_LOCK_MS = 10 * 60 * 1000
NO_EPOCH = (
    "the stock engine has no data (Redis restarted, was flushed or failed over): rebuild pending"
)


class RedisStockEngine(EngineBase):
    """Stock held in Redis through the stock core, with the database as the truth.

    Args:
        store: the order store (the truth).
        url: ``redis://``, ``rediss://``, ``unix://`` or ``redis+sentinel://`` URL.
        prefix: key prefix; keep the ``{...}`` hash tag so all keys share a Cluster slot.
        timeout: seconds to wait for Redis.

    Raises:
        ConfigError: the Redis may evict keys (its ``maxmemory-policy``) or hides it.
    """

    def __init__(
        self, store: Store, url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = 5.0
    ) -> None:
        super().__init__(store)
        self.url = url
        self.prefix = prefix
        self._epoch = f"{prefix}{core.EPOCH_KEY}"
        self.link = core.StockLink(url, prefix, load_scripts(), timeout=timeout)
        self.client = client_for(url, timeout=timeout, protocol=2)
        self._checked = False
        # NOTE: until Redis answers, every request asks again: one line per outage.
        self._unreachable = Repeats(log)
        self._check_server()

    def _check_server(self) -> None:
        try:
            _redis_admin.check_policy(self.client)
        except redis.RedisError as exc:  # down, or no primary behind Sentinel yet
            self._unreachable.failed("redis", "Redis at %s is not reachable yet: %s",
                                     mask(self.url), exc)  # fmt: skip
            return
        self._checked = True

    def _reconnect(self) -> None:
        """Close the idle connections of the link and the client: behind Sentinel the
        next ones go to the primary it names then, not to a replaced one still up."""
        self.link.reconnect()
        self.client.connection_pool.disconnect(inuse_connections=False)

    def _unsealed(self) -> StockUnavailable:
        """The answer while the server has no sealed copy (that server may be a
        replaced primary that a rebuild fenced: see :meth:`_reconnect`)."""
        self._reconnect()
        return StockUnavailable(NO_EPOCH, retry_after=5)

    def _run(self, call: Callable[..., Any], *args: Any) -> Any:
        if not self._checked:
            self._check_server()
        try:
            return call(*args)
        except core_errors() as exc:
            self._reconnect()
            raise StockUnavailable(f"the stock engine failed: {exc}", retry_after=2) from exc

    # -- holds --------------------------------------------------------------------------
    def reserve(self, token: str, lines: Iterable[tuple[str, int]], *, ttl: float | None) -> None:
        """Hold every line of a cart for ``ttl`` seconds, all or nothing; idempotent.

        ``ttl=None`` holds until :meth:`release` or :meth:`commit` (the script gets a
        ttl of 0 and scores the hold at :data:`NEVER`): no reserve or sweep reclaims it.

        Raises:
            ValidationError: bad lines, token or ttl.
            NotFound: unknown SKU.
            InsufficientStock: with every short line as ``(sku, requested, available)``.
            StockUnavailable: Redis has no data (rebuild pending) or cannot be reached.
        """
        check_token(token)
        checked = check_ttl(ttl)
        ttl_ms = 0 if checked is None else max(1, int(checked * 1000))
        reply = self._run(self.link.reserve, token, lines, ttl_ms)
        if reply[0] == 4:
            # NOTE: short of stock while more expired holds may wait than one reserve
            # gives back: sweep them all, then ask again, so an abandoned cart's units
            # are never refused.
            self._reclaimed(token, int(reply[1]))
            self.sweep()
            reply = self._run(self.link.reserve, token, lines, ttl_ms)
        code = reply[0]
        if code in (0, 1, 4):
            self._reclaimed(token, int(reply[1]))
        if code == 0:
            if reply[2]:
                metrics.HOLD_GRANTED.inc()
            return
        if code == 1:
            metrics.HOLD_REFUSED.inc()
            items = [
                (reply[i].decode(), int(reply[i + 1]), int(reply[i + 2]))
                for i in range(2, len(reply), 3)
            ]
            raise InsufficientStock(items)
        if code == 3:
            sku = reply[1].decode()
            raise NotFound(f"no stock for sku {sku!r}", sku=sku)
        if code == 4:  # expired holds came in faster than the sweep gave them back
            raise StockUnavailable("the stock engine is busy giving back expired holds",
                                   retry_after=1)  # fmt: skip
        raise self._unsealed()

    def _reclaimed(self, token: str, count: int) -> None:
        if count:
            metrics.HOLD_EXPIRED.inc(count)
            log.info("gave back %d expired hold(s) before holding for %s", count, token)

    def orphans(self, older_than: float) -> list[str]:
        """Tokens of holds-until-released taken more than ``older_than`` seconds ago.

        Such a hold belongs to an order written in the same checkout; one that no order
        owns was left by a checkout that died between the hold and the order's commit
        (the reconciler releases those)."""
        never_ms = int(NEVER * 1000)
        cutoff = never_ms + int((time.time() - older_than) * 1000)
        try:
            raw = self.client.zrangebyscore(f"{self.prefix}exp", never_ms, cutoff)
        except redis.RedisError as exc:
            raise StockUnavailable(f"the stock engine failed: {exc}", retry_after=2) from exc
        return [t.decode() if isinstance(t, bytes) else str(t) for t in raw]

    def commit(self, token: str) -> bool:
        """Turn a live hold into a sale. False when the hold is gone (expired, released)."""
        return self._hold("commit", token)

    def release(self, token: str) -> bool:
        """Give back the units of a hold; False when there is no hold (idempotent)."""
        return self._hold("release", token, "h")

    def restock(self, ref: str, lines: Iterable[tuple[str, int]]) -> None:
        """Give back the units of a sale cancelled before shipping (idempotent per ref).

        The committed hold under ``ref`` (rebuilt from ``orders.stock_state =
        'committed'``) is the record of what was sold; ``lines`` are accepted for the
        interface only.
        """
        self._hold("release", ref, "c")

    def _hold(self, name: str, token: str, *extra: str) -> bool:
        check_token(token)
        code = self._run(self.link.hold_call, name, token, *extra)
        if code == 2:
            raise self._unsealed()
        return bool(code == 1)

    def ship(self, token: str, *, actor: str) -> None:
        """The units of a sale leave: ``on_hand`` falls in the database (reason ``ship``),
        ``sold`` falls in Redis, ``available`` stays. Idempotent.

        Raises:
            Conflict: the token holds units but is not sold, or it has no sale and never
                shipped (the engine drifted: ``ecshop stock audit --fix``).
        """
        check_token(token)
        actor = check_text(actor, "actor")
        flat = self._run(self.link.command, "HGETALL", f"{self.prefix}h:{token}")
        hold = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
        state = hold.pop("", None)
        if state is None:
            if not self._run(self.link.command, "EXISTS", self._epoch):
                raise self._unsealed()
            with self.store.tx() as tx:
                if _ledger.shipped_before(tx, token):
                    return
            raise Conflict(
                f"the stock engine has no sale under {token}: run `ecshop stock audit --fix`",
                token=token,
            )
        if state != "c":
            raise Conflict(f"{token} is held, not sold: it cannot ship", token=token)
        with self.store.tx() as tx:
            for sku in sorted(hold):
                _ledger.apply_delta(tx, sku, -int(hold[sku]), reason="ship", actor=actor, ref=token)
            reply = self._run(self.link.hold_call, "ship", token)
            if reply[0] == 2:
                raise self._unsealed()
            if reply[0] != 1:
                raise Conflict(f"{token} changed while shipping, try again", token=token)

    # -- on_hand followers --------------------------------------------------------------
    def _follow(self, sku: str, delta: int, *, create: bool = False) -> None:
        keys = [self._epoch, f"{self.prefix}s:{sku}"]
        reply = self._run(self.link.script, "adjust", keys, [delta, 1 if create else 0])
        code = reply[0]
        if code == 0:
            return
        if code == 1:
            raise InsufficientStock([(sku, -delta, int(reply[1]))])
        if code == 2:
            if create:
                return  # the rebuild will bring the new SKU in
            raise self._unsealed()
        raise NotFound(
            f"sku {sku!r} is missing in the stock engine: run `ecshop stock rebuild`", sku=sku
        )

    def _unfollow(self, moves: list[tuple[str, int]]) -> None:
        for sku, delta in reversed(moves):
            try:
                self._follow(sku, -delta)
            except Exception as exc:  # audit shows what could not be undone
                log.error("could not undo stock move %s %+d in Redis: %s", sku, -delta, exc)

    # -- reads and upkeep ---------------------------------------------------------------
    def _has_epoch(self) -> bool:
        return bool(self._run(self.link.command, "EXISTS", self._epoch))

    def needs_rebuild(self) -> bool:
        """True while Redis has no complete copy (its epoch marker is missing)."""
        return not self._has_epoch()

    def levels(self, skus: Iterable[str] | None = None) -> dict[str, Levels]:
        """``on_hand`` from the database, the rest from Redis (all SKUs when None).

        Raises:
            StockUnavailable: Redis has no data (rebuild pending) or cannot be reached.
        """
        if not self._has_epoch():
            raise self._unsealed()
        with self.store.read() as tx:
            on_hand = _ledger.on_hand_of(tx, skus)
        found = self._run(_redis_admin.read_levels, self.client, self.prefix, sorted(on_hand))
        return {sku: Levels(oh, *found.get(sku, (0, 0, 0))) for sku, oh in sorted(on_hand.items())}

    def sweep(self) -> int:
        """Reclaim every expired hold; return how many (0 while a rebuild is pending)."""
        total = 0
        keys = [self._epoch, f"{self.prefix}exp"]
        while True:
            done = int(self._run(self.link.script, "sweep", keys, [self.prefix, SWEEP_BATCH]))
            if done <= 0:
                return total
            total += done
            metrics.HOLD_EXPIRED.inc(done)
            log.info("swept %d expired hold(s): their units are back on sale", done)
            if done < SWEEP_BATCH:
                return total

    def audit(self) -> list[dict[str, Any]]:
        """Per-SKU drift between Redis and what the database says; empty when none."""
        if not self._has_epoch():
            return [{"sku": None, "problem": NO_EPOCH}]
        now = time.time()
        self.sweep()
        with self.store.read() as tx:
            on_hand = _ledger.on_hand_of(tx, None)
            holds = _ledger.order_holds(tx, now)
            trail = _ledger.changes_drift(tx)
        held, sold = holds.per_sku()
        actual = self._run(_redis_admin.read_levels, self.client, self.prefix, sorted(on_hand))
        drift = []
        for sku, oh in sorted(on_hand.items()):
            h, c = held.get(sku, 0), sold.get(sku, 0)
            expected = (oh - h - c, h, c)
            have = actual.get(sku)
            if have != expected or sku in trail:
                entry: dict[str, Any] = {
                    "sku": sku,
                    "on_hand": oh,
                    "expected": _named(expected),
                    "actual": None if have is None else _named(have),
                }
                if sku in trail:
                    entry["audit_trail_sum"] = trail[sku][1]
                drift.append(entry)
        return drift

    def rebuild(self) -> None:
        """Recompute Redis from the database: levels from ``on_hand`` and the orders'
        holds and sales; the epoch marker is written last, selling resumes then.

        Behind Sentinel, a replaced primary that is still up is stopped from selling
        first (``lua/fence.lua``). The marker names the server the copy was written to
        (``lua/seal.lua``); when the primary changed during the rebuild nothing is
        sealed and the rebuild fails, to run again on the new primary.
        """
        if not self._checked:
            self._check_server()
        self._reconnect()  # to the primary of now
        lock = f"{self.prefix}rebuilding"
        try:
            if not self.client.set(lock, str(time.time()), nx=True, px=REBUILD_LOCK_MS):
                raise StockUnavailable(
                    "a rebuild of the stock engine is already running", retry_after=5
                )
            server = _redis_admin.server_id(self.client)
            fence = load_scripts()["fence"]
            for old in _redis_admin.fence_others(self.client, self._epoch, fence):
                log.warning("the replaced Redis primary %s still sold: stopped it", old)
            self.client.delete(self._epoch)  # stop selling first
            # every key under the prefix goes, those of an older layout too
            _redis_admin.scan_delete(self.client, self.prefix, keep=lock)
            with self.store.read() as tx:
                on_hand = _ledger.on_hand_of(tx, None)
                holds = _ledger.order_holds(tx, time.time())
            _redis_admin.write_copy(self.client, self.prefix, on_hand, holds)
            epoch = _redis_admin.new_epoch()
            if not self._run(self.link.script, "seal", [self._epoch], [epoch, server]):
                raise StockUnavailable(
                    "the Redis primary changed during the rebuild: it runs again", retry_after=2
                )
        except redis.RedisError as exc:
            raise StockUnavailable(f"rebuild failed: {exc}", retry_after=5) from exc
        finally:
            try:
                self.client.delete(lock)
            except redis.RedisError:
                pass  # it expires by itself
        log.info("stock rebuilt in Redis: %d SKUs, %d holds, epoch %s", len(on_hand),
                 len(holds.held) + len(holds.committed), epoch)  # fmt: skip

    def close(self) -> None:
        self.link.close()
        self.client.close()


def _named(values: tuple[int, int, int]) -> dict[str, int]:
    return dict(zip(("available", "held", "sold_unshipped"), values, strict=True))


def core_errors() -> tuple[type[BaseException], ...]:
    """The errors of the live stock core link, and redis-py's own."""
    return (core.LinkError, core.ReplyError, redis.RedisError)
