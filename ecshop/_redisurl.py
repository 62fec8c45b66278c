"""``ECSHOP_REDIS_URL``: one Redis server, or the primary that Sentinel names.

One server::

    redis://[[user]:password@]host[:port][/db]      (rediss:// for TLS)
    unix:///path/redis.sock[?db=N]

A primary watched by Sentinel::

    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?sentinel_password=pw]

The hosts are the Sentinels (port 26379 unless given), ``service`` the name they monitor
the primary under (``sentinel monitor <service> ...``). The user and password are the
Redis servers' own (``requirepass``), as in a ``redis://`` URL; Sentinels that want a
password of their own get ``sentinel_password``. redis-py has no URL for Sentinel (its
``Sentinel`` takes a list of addresses), so this module parses the form other clients
share (redis-sentinel-url, LangChain, Prefect) and hands the pieces to
``redis.sentinel.Sentinel``, which finds the primary and follows a failover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import redis
    from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
# NOTE: without the user info and options, which mask() would take for secrets.
SENTINEL_FORM = "redis+sentinel://host[:port][,host[:port]...]/service[/db]"
SENTINEL_OPTIONS = ("sentinel_password",)


@dataclass(frozen=True)
class RedisAddress:
    """Where and how to reach Redis: one server (``host``/``port`` or ``path``), or
    through the Sentinels in ``sentinels`` the primary of ``service``."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str = ""
    db: int = 0
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    sentinel_password: str = field(default="", repr=False)


def parse(url: str) -> RedisAddress:
    """Parse a Redis URL of any form above.

    Raises:
        ValueError: the URL is not one of them; the message says what is wrong (and
            never quotes the URL, so no password leaks through it).
    """
    parts = urlsplit(url)
    if parts.scheme == SENTINEL_SCHEME:
        return _sentinel(url)
    query = parse_qs(parts.query)
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    if "password" in query:
        password = query["password"][0]
    db = _db(query["db"][0]) if "db" in query else 0
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("names no socket path")
        return RedisAddress(path=parts.path, db=db, username=user, password=password)
    if parts.scheme in ("redis", "rediss"):
        if parts.path.strip("/"):
            db = _db(parts.path.strip("/"))
        return RedisAddress(
            host=parts.hostname or "127.0.0.1",
            port=_port(parts.netloc.rpartition("@")[2], 6379),
            db=db,
            username=user,
            password=password,
            tls=parts.scheme == "rediss",
        )
    raise ValueError("must start with redis://, rediss://, unix:// or redis+sentinel://")


def _db(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"database {text!r} is not a number")
    return int(text)


def _port(host: str, default: int) -> int:
    """The port of ``host[:port]`` (``[v6]:port`` too), ``default`` when none is given."""
    try:
        return urlsplit("//" + host).port or default
    except ValueError:
        raise ValueError("has a port that is not a number") from None


def _sentinel(url: str) -> RedisAddress:
    # NOTE: urlsplit cannot read a netloc with several hosts (its .port fails), so the
    # user info and the host list are split here; each host is read by urlsplit alone.
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    sentinels = []
    for item in hosts.split(","):
        host = urlsplit("//" + item.strip()).hostname
        if not host:
            raise ValueError(f"must be {SENTINEL_FORM}: a Sentinel address is empty")
        sentinels.append((host, _port(item.strip(), SENTINEL_PORT)))
    names = [unquote(p) for p in parts.path.strip("/").split("/")] if parts.path.strip("/") else []
    if not names or not names[0]:
        raise ValueError(f"must be {SENTINEL_FORM}: name the service after the Sentinels")
    if len(names) > 2:
        raise ValueError(f"must be {SENTINEL_FORM}: the path holds more than service and db")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(SENTINEL_OPTIONS))
    if unknown or parts.fragment:
        raise ValueError(f"must be {SENTINEL_FORM}: unknown option {(unknown or ['#'])[0]!r}")
    return RedisAddress(
        db=_db(names[1]) if len(names) == 2 else 0,
        username=unquote(user),
        password=unquote(password),
        sentinels=tuple(sentinels),
        service=names[0],
        sentinel_password=query.get("sentinel_password", [""])[0],
    )


def sentinel_for(address: RedisAddress, timeout: float) -> Sentinel:
    """redis-py's ``Sentinel`` over the address's Sentinels."""
    from redis.sentinel import Sentinel

    ask: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if address.sentinel_password:
        ask["password"] = address.sentinel_password
    return Sentinel(list(address.sentinels), sentinel_kwargs=ask)


def client_for(url: str, *, timeout: float, **kwargs: Any) -> redis.Redis:
    """A redis-py client of the server the URL names; for a Sentinel URL a client of
    the current primary that finds the new one after a failover
    (``SentinelConnectionPool``). ``kwargs`` go to every connection; a failed command
    is retried once, at once.

    Raises:
        ValueError: a malformed URL.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    address = parse(url)
    # NOTE: one retry at once replaces a pooled connection the server closed; waiting
    # longer is not the client's call (redis-py's default backs off for seconds, 10
    # times): the engine answers 503 and its callers come back.
    kwargs = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
              "retry": Retry(NoBackoff(), 1), **kwargs}  # fmt: skip
    if not address.service:
        return redis.Redis.from_url(url, **kwargs)
    return sentinel_for(address, timeout).master_for(
        address.service,
        db=address.db,
        username=address.username or None,
        password=address.password or None,
        **kwargs,
    )
