"""A real shop process for end-to-end tests and benchmarks: gunicorn serving ecshop."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ecshop.testing.servers import ServerUnavailable, free_port

GUNICORN_CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


@dataclass
class ShopProcess:
    """``gunicorn ecshop.app:create_app()`` with the given ``ECSHOP_*`` environment.

    A shop refuses to serve without a secret key: when neither ``env`` nor the
    environment names ``ECSHOP_SECRET_KEY``, a random one is put in ``env``.
    """

    env: dict[str, str]
    workers: int = 2
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    _made_folder: str = ""
    #: the WSGI app gunicorn serves (any app answering ``GET /healthz`` starts alike)
    app: str = "ecshop.app:create_app()"
    #: seconds ``start`` waits for ``/healthz``
    start_timeout: float = 30.0

    def __post_init__(self) -> None:
        if "ECSHOP_SECRET_KEY" not in self.env and "ECSHOP_SECRET_KEY" not in os.environ:
            self.env["ECSHOP_SECRET_KEY"] = secrets.token_hex(32)
        url = self.env.get("ECSHOP_DATABASE_URL", os.environ.get("ECSHOP_DATABASE_URL", ""))
        if "ECSHOP_DATA_DIR" not in self.env and not url.startswith("sqlite:"):
            # A shop on MariaDB has no database folder to keep its pid file and control
            # socket in: each test shop gets a folder of its own.
            self.env["ECSHOP_DATA_DIR"] = self._made_folder = tempfile.mkdtemp(
                prefix="ecshop-shop-"
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run_cli(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ecshop <args>`` against the same configuration."""
        return subprocess.run(
            [sys.executable, "-m", "ecshop.cli", *args], env={**os.environ, **self.env},
            capture_output=True, text=True, check=check, timeout=timeout,
        )  # fmt: skip

    def start(self) -> ShopProcess:
        self.run_cli("migrate")
        if not self.port:
            self.port = free_port()
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), *self.extra_args, self.app],
            env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(
                    f"gunicorn exited with {self.proc.returncode}: {self.log_tail()}"
                )
            try:
                # NOTE: health, not a storefront page: a shop restored in maintenance
                # answers 503 there and is running all the same.
                urllib.request.urlopen(self.url + "/healthz", timeout=1).close()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise ServerUnavailable(
            f"the shop did not answer within {self.start_timeout:g}s: {self.log_tail()}"
        )

    def log_tail(self) -> str:
        return self.log_text()[-3000:]

    def log_text(self) -> str:
        """Everything the shop logged so far (with ``log_path``)."""
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")
        return ""

    def worker_pids(self) -> list[int]:
        """The PIDs of gunicorn's workers (children of the arbiter)."""
        if self.proc is None:
            return []
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        """Stop, and remove the data folder made for this shop (if one was made)."""
        self.stop()
        if self._made_folder:
            shutil.rmtree(self._made_folder, ignore_errors=True)
