"""Pure-Python twin of ``ecshop/_stockcore.pyx``: same API, same results.

Used when the compiled module is missing or ``ECSHOP_PUREPYTHON=1`` is set. It speaks to
Redis through redis-py; the compiled module speaks RESP itself over a raw socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from hashlib import sha1
from typing import Any

from ecshop._redisurl import RedisAddress, client_for, parse
from ecshop.errors import ConfigError, ValidationError
from ecshop.redact import mask

MAX_LINES = 100
MAX_QTY = 10_000
MAX_SKU_LEN = 64
COMPILED = False
EPOCH_KEY = "epoch:2"
"""The epoch marker's key under the prefix; its name carries the key layout's version
(``lua/lib.lua``), so a copy written in another layout reads as "rebuild pending"."""

Reply = Any
"""A parsed Redis reply: int, bytes, None, or a list of replies."""


class ReplyError(Exception):
    """Redis answered a command with an error (a script failed, a key had the wrong type)."""


class LinkError(Exception):
    """The connection to Redis failed (refused, closed, timed out)."""


def canonicalize_lines(lines: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Merge duplicate SKUs, sort by SKU and check every quantity.

    Raises:
        ValidationError: an empty cart, a bad SKU, a quantity that is not a positive
            integer, or more than ``MAX_LINES`` lines / ``MAX_QTY`` units of a SKU.
    """
    merged: dict[str, int] = {}
    for sku, qty in lines:
        if type(sku) is not str or not 0 < len(sku) <= MAX_SKU_LEN:
            raise ValidationError(f"sku must be a string of 1 to {MAX_SKU_LEN} characters")
        if type(qty) is not int or qty <= 0:
            raise ValidationError(f"qty of {sku} must be a positive integer", sku=sku)
        total = merged.get(sku, 0) + qty
        if total > MAX_QTY:
            raise ValidationError(f"qty of {sku} is over the limit of {MAX_QTY}", sku=sku)
        merged[sku] = total
    if not merged:
        raise ValidationError("the cart has no lines")
    if len(merged) > MAX_LINES:
        raise ValidationError(f"the cart has more than {MAX_LINES} lines")
    return sorted(merged.items())


def parse_redis_url(url: str) -> RedisAddress:
    """Parse ``redis://[user:pw@]host[:port][/db]``, ``unix:///path[?db=N]`` or
    ``redis+sentinel://[user:pw@]host[:port][,host[:port]...]/service[/db]``
    (:mod:`ecshop._redisurl`).

    Raises:
        ConfigError: the URL is not a Redis URL.
    """
    try:
        return parse(url)
    except ValueError as exc:
        raise ConfigError(mask(f"ECSHOP_REDIS_URL: malformed Redis URL {url!r}: {exc}")) from exc


def primary_of(sentinel: Any, service: str) -> tuple[str, int]:
    """The address of the primary the Sentinels name for ``service`` now.

    Raises:
        LinkError: no Sentinel answers, or none knows a primary that is up.
    """
    import redis

    try:
        host, port = sentinel.discover_master(service)
    except redis.RedisError as exc:
        raise LinkError(f"no Redis primary for {service!r} from Sentinel: {exc}") from exc
    return str(host), int(port)


def script_sha(source: str) -> str:
    """The SHA1 hex digest Redis uses to name a script."""
    return sha1(source.encode("utf-8")).hexdigest()


class StockLink:
    """A connection to Redis for the stock scripts, over redis-py.

    Every new connection first runs the ``verify`` script: a copy of the stock that
    another server wrote (a replica promoted by a failover, a restart that loaded a
    snapshot) loses its epoch marker there, so no script sells from it before a rebuild.
    A connection whose server turned replica (``READONLY``) is closed as a link failure,
    with every idle one: the next connection goes to the primary again.

    Args:
        url: ``redis://``, ``rediss://``, ``unix://`` or ``redis+sentinel://`` URL.
        prefix: key prefix with the hash tag, e.g. ``"ecshop:{stock}:"``.
        scripts: Lua sources by name (``reserve``, ``commit``, ..., and ``verify``).
        timeout: seconds to wait for a connection or a reply.
    """

    def __init__(
        self, url: str, prefix: str, scripts: Mapping[str, str], *, timeout: float = 5.0
    ) -> None:
        parse_redis_url(url)  # the same URL errors as the compiled link
        self.prefix = prefix
        self._sources = {name: source.encode("utf-8") for name, source in scripts.items()}
        self._shas = {name: script_sha(source) for name, source in scripts.items()}
        self._client = client_for(url, timeout=timeout, protocol=2,
                                  redis_connect_func=self._verify)  # fmt: skip

    def _verify(self, conn: Any) -> None:
        """redis-py's hook for a new connection: its handshake, then ``verify.lua``."""
        import redis

        conn.on_connect()
        request = ("EVALSHA", self._shas["verify"], 1, self.prefix + EPOCH_KEY)
        conn.send_command(*request)
        try:
            conn.read_response()
        except redis.exceptions.NoScriptError:
            conn.send_command("SCRIPT", "LOAD", self._sources["verify"])
            conn.read_response()
            conn.send_command(*request)
            conn.read_response()

    def _failed(self, exc: Exception) -> Exception:
        """The link's error for a redis-py error; a lost server drops the idle connections."""
        import redis

        if isinstance(exc, redis.ResponseError) and not isinstance(exc, redis.ReadOnlyError):
            return ReplyError(str(exc))
        self.reconnect()
        if isinstance(exc, redis.ReadOnlyError):
            return LinkError(f"the Redis server is a replica now: {exc}")
        return LinkError(str(exc))

    def command(self, *args: Any) -> Reply:
        """Send one command and return its parsed reply."""
        import redis

        pool = self._client.connection_pool
        try:
            # NOTE: straight to the connection, past redis-py's reply callbacks, so
            # replies have the same raw shape as the compiled link's.
            conn = pool.get_connection()
            try:
                conn.send_command(*args)
                reply = conn.read_response()
            except BaseException:
                conn.disconnect()
                raise
            finally:
                pool.release(conn)
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        return reply

    def script(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Reply:
        """Run a stock script by its SHA; load it first when Redis has not seen it."""
        import redis

        sha = self._shas[name]
        try:
            try:
                return self._client.evalsha(sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                self._client.script_load(self._sources[name])
                return self._client.evalsha(sha, len(keys), *keys, *args)
        except redis.RedisError as exc:
            raise self._failed(exc) from exc

    def reconnect(self) -> None:
        """Close the idle connections: the next call connects again (behind Sentinel,
        to the primary it names by then)."""
        self._client.connection_pool.disconnect(inuse_connections=False)

    def _reserve_call(
        self, token: str, lines: Iterable[tuple[str, int]], ttl_ms: int
    ) -> tuple[list[Any], list[Any]]:
        canon = canonicalize_lines(lines)
        p = self.prefix
        keys = [p + EPOCH_KEY, p + "h:" + token, p + "exp"]
        keys.extend(p + "s:" + sku for sku, _ in canon)
        args: list[Any] = [p, token, ttl_ms]
        for sku, qty in canon:
            args.append(sku)
            args.append(qty)
        return keys, args

    def reserve(self, token: str, lines: Iterable[tuple[str, int]], ttl_ms: int) -> Reply:
        """Canonicalize the cart and run the ``reserve`` script (see ``reserve.lua``)."""
        keys, args = self._reserve_call(token, lines, ttl_ms)
        return self.script("reserve", keys, args)

    def reserve_request(self, token: str, lines: Iterable[tuple[str, int]], ttl_ms: int) -> bytes:
        """The RESP bytes of the reserve EVALSHA for this cart (what ``reserve`` sends)."""
        keys, args = self._reserve_call(token, lines, ttl_ms)
        return encode_command(["EVALSHA", self._shas["reserve"], len(keys), *keys, *args])

    def hold_call(self, name: str, token: str, *extra: Any) -> Reply:
        """Run a script on one hold: ``commit``, ``release`` or ``ship``."""
        p = self.prefix
        keys = [p + EPOCH_KEY, p + "h:" + token, p + "exp"]
        return self.script(name, keys, [p, token, *extra])

    def close(self) -> None:
        self._client.close()


def encode_command(args: Sequence[Any]) -> bytes:
    """One command in RESP: ``*<n>`` then each argument as a bulk string."""
    out = bytearray(b"*%d\r\n" % len(args))
    for arg in args:
        if isinstance(arg, bytes):
            item = arg
        elif isinstance(arg, str):
            item = arg.encode("utf-8")
        else:
            item = str(arg).encode("utf-8")
        out += b"$%d\r\n%s\r\n" % (len(item), item)
    return bytes(out)
