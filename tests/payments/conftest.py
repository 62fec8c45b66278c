"""Fixtures for the payment tests: the sandbox gateway as a real process.

``sandbox_gateway`` is a factory: ``start_sandbox_gateway(drop=0.3, seed=7)`` starts
``python -m ecshop.payments.sandbox_server`` on a free port with its own state file and
returns a :class:`SandboxGateway` handle (``url``, ``secret``, ``stop()``,
``restart()``, and helpers to sign links, settle and call the API). Keyword switches
become flags (``delay_ms=200`` → ``--delay-ms 200``, ``reorder=True`` → ``--reorder``);
``secret_via_env=True`` hands the secret over in ``ECSHOP_GATEWAY_SANDBOX_SECRET``
instead of ``--secret``.
Every gateway started is stopped at teardown.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from ecshop.config import child_environ
from ecshop.payments.sandbox_protocol import sign_query
from ecshop.testing.servers import free_port

START_TIMEOUT = 20.0


@dataclass
class SandboxGateway:
    """Handle on one sandbox gateway process."""

    directory: Path
    switches: dict[str, Any] = field(default_factory=dict)
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    http: requests.Session = field(default_factory=requests.Session)
    secret_via_env: bool = False

    def __post_init__(self) -> None:
        self.http.trust_env = False  # never send 127.0.0.1 through a proxy
        if not self.port:
            self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_path(self) -> Path:
        return self.directory / "sandbox-gateway.db"

    @property
    def log_path(self) -> Path:
        return self.directory / "sandbox-gateway.log"

    def args(self) -> list[str]:
        args = [sys.executable, "-m", "ecshop.payments.sandbox_server", "--port", str(self.port),
                "--state", str(self.state_path)]  # fmt: skip
        if not self.secret_via_env:
            args += ["--secret", self.secret]
        for name, value in self.switches.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value not in (False, None):
                args += [flag, str(value)]
        return args

    def environ(self) -> dict[str, str]:
        secret = self.secret if self.secret_via_env else ""
        return child_environ({"ECSHOP_GATEWAY_SANDBOX_SECRET": secret})

    def start(self) -> SandboxGateway:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args(), stdout=log, stderr=subprocess.STDOUT, env=self.environ()
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sandbox gateway exited: {self.log_path.read_text()[-2000:]}")
            try:
                if self.http.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sandbox gateway did not answer within {START_TIMEOUT}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> SandboxGateway:
        """Stop and start again on the same port and state file."""
        self.stop()
        return self.start()

    # -- helpers --------------------------------------------------------------------
    def link(self, order: str, amount: int, notify_url: str, /, **overrides: Any) -> dict[str, str]:
        """The signed fields of a pay link, as the shop would build it."""
        fields = {
            "merchant": "test-shop",
            "order": order,
            "amount": str(amount),
            "currency": "JPY",
            "notify_url": notify_url,
            "return_url": f"http://shop.invalid/payments/sandbox/return?order={order}",
        }
        fields.update({k: str(v) for k, v in overrides.items()})
        fields["sig"] = sign_query(fields, self.secret)
        return fields

    def pay_url(self, fields: dict[str, str]) -> str:
        return f"{self.url}/pay?{urlencode(fields)}"

    def settle(self, fields: dict[str, str], action: str = "pay") -> requests.Response:
        """Press Pay or Decline, as the page's form would (the redirect is not followed)."""
        return self.http.post(
            f"{self.url}/pay", data={**fields, "action": action}, allow_redirects=False, timeout=10
        )

    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.secret}", **kwargs.pop("headers", {})}
        return self.http.request(
            method, self.url + path, json=json, headers=headers, timeout=10, **kwargs
        )

    def all_pages(self, path: str) -> list[dict[str, Any]]:
        """Every item of a list endpoint, following ``next_after``."""
        items: list[dict[str, Any]] = []
        after = None
        sep = "&" if "?" in path else "?"
        while True:
            page_path = path + (f"{sep}after={after}" if after else "")
            page = self.api("GET", page_path).json()
            items += page["items"]
            after = page["next_after"]
            if after is None:
                return items


@pytest.fixture
def sandbox_gateway(tmp_path: Path) -> Iterator[Callable[..., SandboxGateway]]:
    """A factory ``start_sandbox_gateway(**switches) -> SandboxGateway``."""
    started: list[SandboxGateway] = []

    def start_sandbox_gateway(*, secret_via_env: bool = False, **switches: Any) -> SandboxGateway:
        directory = tmp_path / f"gateway-{len(started)}"
        directory.mkdir()
        gateway = SandboxGateway(directory, switches, secret_via_env=secret_via_env)
        started.append(gateway)
        return gateway.start()

    yield start_sandbox_gateway
    for gateway in started:
        gateway.stop()
