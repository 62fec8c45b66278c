"""Fixtures for the payment tests: the sandbox gateway as a real process.

``sandbox_gateway`` is a factory: ``start_sandbox_gateway(drop=0.3, seed=7)`` starts
``python -m ecshop.sandbox.server`` on a free port with its own state file and
returns a :class:`SandboxGateway`: the :class:`ecshop.testing.sandbox.SandboxGatewayProcess`
handle (``url``, ``secret``, ``stop()``, ``restart()``) with helpers to sign links,
press Pay or Decline and call the API through ``requests``. Keyword switches become
flags; ``secret_via_env=True`` hands the secret over in ``ECSHOP_GATEWAY_SANDBOX_SECRET``
instead of ``--secret``. Every gateway started is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from ecshop.sandbox.protocol import sign_query
from ecshop.testing.sandbox import SandboxGatewayProcess


@dataclass
class SandboxGateway(SandboxGatewayProcess):
    """The process handle with ``requests``-based helpers for protocol tests."""

    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.http.trust_env = False  # never send 127.0.0.1 through a proxy

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

    def press(self, fields: dict[str, str], action: str = "pay") -> requests.Response:
        """Press Pay or Decline, as the page's form would (the redirect is not followed)."""
        return self.http.post(
            f"{self.url}/pay", data={**fields, "action": action}, allow_redirects=False, timeout=10
        )

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
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
            page = self.call("GET", page_path).json()
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
