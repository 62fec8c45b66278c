"""A throwaway Redis primary, one replica and the Sentinels that watch them.

Everything listens on 127.0.0.1 at free ports and lives in one temp directory; the
Sentinels are ``redis-server --sentinel`` (the same binary: Debian's ``redis-sentinel``
package adds only a service around it). Short ``down-after-milliseconds`` and
``failover-timeout`` let a test see a failover in seconds.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from ecshop.testing.servers import RedisServer, ServerUnavailable, _wait_for, free_port

SERVICE = "ecshop"


def _address(client: redis.Redis) -> tuple[str, int]:
    """The primary as clients see it (redis-py asks SENTINEL MASTERS: during a failover
    GET-MASTER-ADDR-BY-NAME names the promoted replica before the switch is done)."""
    state: dict[str, Any] = client.sentinel_master(SERVICE)  # type: ignore[assignment]
    return str(state["ip"]), int(state["port"])


@dataclass
class SentinelProcess:
    """One ``redis-server --sentinel`` with its own config file (Sentinel rewrites it)."""

    directory: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self, primary_port: int, quorum: int, down_after_ms: int, failover_ms: int) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable(
                "redis-server not found: install it (apt-get install redis-server)"
            )
        self.port = self.port or free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "sentinel.log"
        conf = self.directory / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\nlogfile {log}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} {quorum}\n"
            f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} {failover_ms}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n",
            encoding="utf-8",
        )
        self.proc = subprocess.Popen([binary, str(conf), "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
        _wait_for(self.port, self.proc, 10, log)

    def ask(self, question: Callable[[redis.Redis], Any]) -> Any:
        """``question(client)`` on a connection of its own to this Sentinel."""
        with redis.Redis(port=self.port, socket_timeout=2, decode_responses=True) as client:
            return question(client)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@dataclass
class SentinelGroup:
    """A primary, its replica and ``count`` Sentinels (a majority is the quorum).

    ``url`` is the ``redis+sentinel://`` URL of the shop's stock engine.
    """

    count: int = 3
    down_after_ms: int = 1000
    failover_ms: int = 4000
    directory: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="ecshop-sentinel-"))
    )
    servers: list[RedisServer] = field(default_factory=list)
    sentinels: list[SentinelProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self, timeout: float = 30) -> SentinelGroup:
        primary = RedisServer(directory=self._folder("redis-a")).start()
        self.servers.append(primary)
        replica = RedisServer(directory=self._folder("redis-b"),
                              extra_args=("--replicaof", "127.0.0.1", str(primary.port)))  # fmt: skip
        self.servers.append(replica.start())
        quorum = self.count // 2 + 1
        for i in range(self.count):
            watcher = SentinelProcess(self._folder(f"sentinel-{i}"))
            self.sentinels.append(watcher)
            watcher.start(primary.port, quorum, self.down_after_ms, self.failover_ms)
        self._until(self._ready, timeout, "the Sentinels never saw the replica and each other")
        return self

    def _folder(self, name: str) -> Path:
        path = self.directory / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _ready(self) -> bool:
        """Every Sentinel knows the primary, a synced replica and all other Sentinels."""
        for watcher in self.sentinels:
            state = watcher.ask(lambda c: c.sentinel_master(SERVICE))
            if state["num-slaves"] < 1 or state["num-other-sentinels"] < self.count - 1:
                return False
            replicas = watcher.ask(lambda c: c.sentinel_slaves(SERVICE))
            if not any(r["master-link-status"] == "ok" and not r["is_sdown"] for r in replicas):
                return False
        return True

    def _until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise ServerUnavailable(f"{what} within {timeout}s")

    def primary_port(self) -> int:
        """The port of the primary as the first Sentinel that answers names it."""
        for watcher in self.sentinels:
            try:
                found = watcher.ask(_address)
            except redis.RedisError:
                continue
            if found:
                return int(found[1])
        raise ServerUnavailable("no Sentinel answers")

    def primary(self) -> RedisServer:
        port = self.primary_port()
        return next(s for s in self.servers if s.port == port)

    def kill_primary(self) -> RedisServer:
        """SIGKILL the primary (no shutdown, no last write to its replica); return it."""
        server = self.primary()
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server.proc = None
        return server

    def wait_for_failover(self, old_port: int, timeout: float = 60) -> RedisServer:
        """Wait until every Sentinel names another primary (the switch done) and that
        one says it is."""

        def switched() -> bool:
            ports = {int(w.ask(_address)[1]) for w in self.sentinels}
            if len(ports) != 1 or old_port in ports:
                return False
            with redis.Redis(port=ports.pop(), socket_timeout=2) as client:
                return bool(client.role()[0] == b"master")

        self._until(switched, timeout, "no replica was promoted")
        return self.primary()

    def cleanup(self) -> None:
        for watcher in self.sentinels:
            watcher.stop()
        for server in self.servers:
            server.cleanup()
        shutil.rmtree(self.directory, ignore_errors=True)
