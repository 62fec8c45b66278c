"""The servers ``ecshop bench`` starts and measures on this machine.

Every shop it drives (the throwaway shop, the same shop under other settings) and every
ceiling (:mod:`ecshop.benchapps`) is gunicorn with the shop's own settings file, all on
the run's one database (a temporary SQLite file, or the empty database named with
``--database-url``) and Redis, each in a data folder of its own, each selling a SKU of
its own. The round trips to Redis and MariaDB over TCP and over a unix socket are
measured here too, side by side (:func:`ecshop.sidebyside.side_by_side`).
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ecshop.redact import mask
from ecshop.sidebyside import side_by_side
from ecshop.testing.servers import RedisServer, free_port
from ecshop.testing.shop import ShopProcess

SHOP_APP = "ecshop.app:create_app()"
START_TIMEOUT = 120.0
"""Seconds a shop may take to answer: a busy machine, a Redis engine rebuilding its copy."""
ROUND_TRIPS = 2000
"""Round trips per transport, in 10 alternating batches."""
LOCAL = ("127.0.0.1", "localhost", "::1", "")


@dataclass
class Target:
    """A server the bench drives: what it runs and the SKU it sells."""

    name: str
    shop: ShopProcess
    sku: str = ""
    workers: int = 0
    threads: int = 0
    engine: str = ""
    #: one of the workers x threads settings compared side by side
    grid: bool = False

    @property
    def url(self) -> str:
        return self.shop.url

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "workers": self.workers, "threads": self.threads,
                "engine": self.engine, "grid": self.grid}  # fmt: skip


@dataclass
class Servers:
    """Starts gunicorn processes for the run and stops every one of them at its end."""

    work: Path
    gateway: Any
    token: str
    database_url: str
    running: list[ShopProcess] = field(default_factory=list)

    def process(self, name: str, *, workers: int, threads: int, redis_url: str = "",
                app: str = SHOP_APP) -> ShopProcess:  # fmt: skip
        """A shop (or ceiling) named ``name``, not started yet."""
        port = free_port()
        folder = self.work / name
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.work / "none.toml").write_text("")
        env = {
            "ECSHOP_DATABASE_URL": self.database_url, "ECSHOP_REDIS_URL": redis_url,
            "ECSHOP_ADMIN_TOKEN": self.token, "ECSHOP_THREADS": str(threads),
            "ECSHOP_DATA_DIR": str(folder), "ECSHOP_METRICS_DIR": "",
            # the gateway notifies the shop at this address
            "ECSHOP_BASE_URL": f"http://127.0.0.1:{port}",
            "ECSHOP_GATEWAY_SANDBOX_URL": self.gateway.url,
            "ECSHOP_GATEWAY_SANDBOX_SECRET": self.gateway.secret,
            "ECSHOP_RECONCILE_INTERVAL": "0", "ECSHOP_CONFIG": str(self.work / "none.toml"),
            # The shop under test pays through the built-in sandbox gateway, whatever
            # plugins the real shop has: only that plugin is enabled.
            "ECSHOP_PLUGINS_DIR": str(self.work / "plugins"), "ECSHOP_PLUGINS_ENABLED": "sandbox",
            # the bench's clients all come from this host: no per-client limit
            "ECSHOP_CHECKOUT_RATE_LIMIT": "0",
        }  # fmt: skip
        return ShopProcess(env=env, workers=workers, port=port, log_path=folder / "gunicorn.log",
                           app=app, start_timeout=START_TIMEOUT)  # fmt: skip

    def start(self, processes: list[ShopProcess]) -> dict[int, str]:
        """Start them all at once (each migrates, then waits for its ``/healthz``), then
        wait until every worker has booted (:func:`settle`). Those that would not start
        are stopped: their index in ``processes`` and why."""
        self.running += processes
        failed = {}
        with ThreadPoolExecutor(max(1, len(processes))) as pool:
            for i, done in enumerate([pool.submit(p.start) for p in processes]):
                try:
                    done.result()
                except Exception as exc:
                    processes[i].stop()
                    failed[i] = mask(str(exc).splitlines()[0])
        settle([p for i, p in enumerate(processes) if i not in failed])
        return failed

    def stop(self) -> None:
        for process in reversed(self.running):
            process.stop()
        self.running.clear()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def settle(processes: list[ShopProcess], timeout: float = 60.0) -> None:
    """Wait until every gunicorn worker of ``processes`` is there and idle.

    ``/healthz`` answers as soon as one worker has booted; the others are still
    importing the app, which would eat the first slots' CPU. Where ``/proc`` cannot
    tell, it waits a few seconds instead.
    """
    if not Path("/proc/self/stat").exists():
        time.sleep(3)
        return
    deadline, last = time.monotonic() + timeout, None
    expected = sum(p.workers for p in processes)
    while time.monotonic() < deadline:
        pids = [c for p in processes if p.proc is not None for c in _children(p.proc.pid)]
        used = _cpu_seconds(pids)
        if len(pids) >= expected and last is not None and used - last < 0.02 + 0.01 * len(pids):
            return
        last = used if len(pids) >= expected else None
        time.sleep(0.5)


def private_redis() -> RedisServer | None:
    """A throwaway ``redis-server`` of the bench's own, when one is installed."""
    if shutil.which("redis-server") is None:
        return None
    return RedisServer().start()


# -- round trips over TCP and over a unix socket -------------------------------------
def _redis_addresses(url: str) -> tuple[tuple[str, int] | None, str | None, str]:
    """Redis's TCP address and unix socket (each None when it has none), and its password."""
    import redis

    parts = urlsplit(url)
    password = unquote(parts.password or "") or parse_qs(parts.query).get("password", [""])[0]
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        config = client.config_get("port")
        config.update(client.config_get("unixsocket"))
        config.update(client.config_get("bind"))
    finally:
        client.close()
    port = int(config.get("port") or 0)
    bind = (str(config.get("bind") or "").split() or ["127.0.0.1"])[0].lstrip("-")
    host = "127.0.0.1" if bind in ("*", "0.0.0.0", "") else bind
    tcp = (host, port) if port else None
    return tcp, str(config.get("unixsocket") or "") or None, password


def _resp(*words: str) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _redis_ping(sock: socket.socket) -> Callable[[], None]:
    request = _resp("PING")

    def ping() -> None:
        sock.sendall(request)
        got = b""
        while not got.endswith(b"\r\n"):
            got += sock.recv(64)

    return ping


def _redis_socket(address: tuple[str, int] | str, password: str) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
    else:
        sock = socket.create_connection(address, timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if password:
        sock.sendall(_resp("AUTH", password))
        if not sock.recv(64).startswith(b"+OK"):
            sock.close()
            raise ConnectionError("Redis refused the password")
    return sock


def redis_round_trips(url: str, calls: int = ROUND_TRIPS) -> dict[str, Any]:
    """A PING's round trip to the Redis of ``url`` over TCP and its unix socket, in µs."""
    if urlsplit(url).scheme == "rediss":
        return {"skipped": "a TLS connection has no unix socket to compare with"}
    try:
        tcp, unix, password = _redis_addresses(url)
    except Exception as exc:
        return {"skipped": mask(f"Redis's addresses could not be read (CONFIG GET): {exc}")}
    if tcp is None or unix is None:
        which = "a TCP port" if tcp is None else "a unix socket (unixsocket in redis.conf)"
        return {"skipped": f"Redis listens without {which}"}
    if tcp[0] not in LOCAL:
        return {"skipped": f"Redis is on another host ({tcp[0]}): no unix socket reaches it"}
    socks = [_redis_socket(tcp, password), _redis_socket(unix, password)]
    try:
        timings = side_by_side({"tcp": _redis_ping(socks[0]), "unix": _redis_ping(socks[1])},
                               per_route=calls, batches=10)  # fmt: skip
    finally:
        for sock in socks:
            sock.close()
    return {"tcp_us": timings["tcp"].median * 1e6, "unix_us": timings["unix"].median * 1e6,
            "calls": calls, "what": "PING, raw socket"}  # fmt: skip


def mysql_round_trips(url: str, calls: int = ROUND_TRIPS) -> dict[str, Any]:
    """A ``SELECT 1``'s round trip to the MariaDB of ``url`` over TCP and its socket."""
    try:
        import MySQLdb

        from ecshop.store._mysql import connect_args

        args = connect_args(url)
        first = MySQLdb.connect(**args)
        cur = first.cursor()
        cur.execute("SELECT @@port, @@socket, @@skip_networking")
        port, path, no_tcp = cur.fetchone()
        first.close()
        host = str(args.get("host") or "")
        if args.get("unix_socket") is None and host not in LOCAL:
            return {"skipped": f"MariaDB is on another host ({host}): no unix socket reaches it"}
        if no_tcp or not port or not path:
            return {
                "skipped": "MariaDB listens without "
                + ("TCP" if no_tcp or not port else "a socket")
            }
        base = {k: v for k, v in args.items() if k not in ("host", "port", "unix_socket")}
        tcp = MySQLdb.connect(host="127.0.0.1", port=int(port), **base)
        unix = MySQLdb.connect(unix_socket=str(path), **base)
    except Exception as exc:
        return {"skipped": mask(f"MariaDB could not be reached both ways: {exc}")}

    def select(conn: Any) -> Callable[[], None]:
        def one() -> None:
            conn.query("SELECT 1")
            conn.store_result()

        return one

    try:
        timings = side_by_side({"tcp": select(tcp), "unix": select(unix)}, per_route=calls,
                               batches=10)  # fmt: skip
    finally:
        tcp.close()
        unix.close()
    return {"tcp_us": timings["tcp"].median * 1e6, "unix_us": timings["unix"].median * 1e6,
            "calls": calls, "what": "SELECT 1"}  # fmt: skip
