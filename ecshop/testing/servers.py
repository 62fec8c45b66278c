"""Throwaway Redis and MariaDB servers for tests and benchmarks.

Each server lives in its own temp directory, listens on 127.0.0.1 at a free port and on
a unix socket, keeps nothing after it stops, and never touches a server that was
already running on the machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """The server binary is missing or would not start; the message says what to install."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(
    path_or_port: str | int, proc: subprocess.Popen[bytes], timeout: float, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(
                f"server exited with {proc.returncode}: {log.read_text()[-2000:]}"
            )
        if isinstance(path_or_port, str):
            if os.path.exists(path_or_port):
                return
        else:
            try:
                socket.create_connection(("127.0.0.1", path_or_port), timeout=0.2).close()
                return
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise ServerUnavailable(f"server did not start within {timeout}s: {log.read_text()[-2000:]}")


@dataclass
class RedisServer:
    """A private ``redis-server``; ``url`` is TCP, ``unix_url`` the socket."""

    port: int = 0
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ecshop-redis-")))
    proc: subprocess.Popen[bytes] | None = None
    extra_args: tuple[str, ...] = ()

    @property
    def socket_path(self) -> str:
        return str(self.directory / "redis.sock")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable(
                "redis-server not found: install it (apt-get install redis-server)"
            )
        if not self.port:
            self.port = free_port()
        log = self.directory / "redis.log"
        args = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--unixsocket", self.socket_path, "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            "--maxmemory-policy", "noeviction", "--logfile", str(log),
            *self.extra_args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_for(self.port, self.proc, 10, log)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port: the data is gone, as after a crash."""
        self.stop()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class MariaDBServer:
    """A private ``mariadbd`` with its own data directory; root has no password."""

    port: int = 0
    directory: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="ecshop-mariadb-"))
    )
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> str:
        return str(self.directory / "mysqld.sock")

    def url(self, database: str = "ecshop") -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def start(self) -> MariaDBServer:
        server = shutil.which("mariadbd") or shutil.which("mysqld") or _sbin("mariadbd")
        installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if server is None or installer is None:
            raise ServerUnavailable(
                "mariadbd / mariadb-install-db not found: install them (apt-get install mariadb-server)"
            )
        data = self.directory / "data"
        log = self.directory / "mariadb.log"
        user = ["--user=root"] if os.geteuid() == 0 else []
        with open(log, "wb") as out:
            done = subprocess.run(
                [installer, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
                 "--skip-test-db", *user],
                stdout=out, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if done.returncode != 0:
            raise ServerUnavailable(f"mariadb-install-db failed: {log.read_text()[-2000:]}")
        if not self.port:
            self.port = free_port()
        args = [
            server, "--no-defaults", f"--datadir={data}", f"--socket={self.socket_path}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--log-error={log}",
            f"--pid-file={self.directory / 'mysqld.pid'}", "--skip-name-resolve",
            "--innodb-buffer-pool-size=128M", "--max-connections=500",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin", *user,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_for(self.port, self.proc, 60, log)
        return self

    def execute(self, sql: str) -> None:
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", passwd="")
        try:
            cur = conn.cursor()
            cur.execute(sql)
            conn.commit()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _sbin(name: str) -> str | None:
    path = Path("/usr/sbin") / name
    return str(path) if path.exists() else None
