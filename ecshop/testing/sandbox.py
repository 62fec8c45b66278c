"""The sandbox gateway as a real process, for tests, benchmarks and the smoke test."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ecshop.testing.servers import ServerUnavailable, free_port


@dataclass
class SandboxGatewayProcess:
    """``python -m ecshop.payments.sandbox_server`` on a free port with its own state file."""

    directory: Path
    switches: dict[str, Any] = field(default_factory=dict)
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SandboxGatewayProcess:
        if not self.port:
            self.port = free_port()
        args = [sys.executable, "-m", "ecshop.payments.sandbox_server", "--port", str(self.port),
                "--secret", self.secret, "--state", str(self.directory / "sandbox.db")]  # fmt: skip
        for name, value in self.switches.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value not in (False, None):
                args += [flag, str(value)]
        log = open(self.directory / "sandbox.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(
                    f"sandbox gateway exited: {(self.directory / 'sandbox.log').read_text()[-2000:]}"
                )
            try:
                self.api("GET", "/v1/payments?limit=1")
                return self
            except OSError:
                time.sleep(0.1)
        raise ServerUnavailable("sandbox gateway did not answer within 20s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def ledger(self) -> list[dict[str, Any]]:
        """Every captured payment, all pages."""
        items: list[dict[str, Any]] = []
        after = ""
        while True:
            page = self.api(
                "GET",
                "/v1/payments?status=succeeded&limit=500" + (f"&after={after}" if after else ""),
            )
            items += page["items"]
            after = page.get("next_after") or ""
            if not after:
                return items

    def settle(self, redirect_url: str, action: str = "pay") -> int:
        """Press Pay or Decline on the hosted page, as a browser's form post would."""
        fields = dict(parse_qsl(urlsplit(redirect_url).query))
        fields["action"] = action
        data = urlencode(fields).encode()
        req = urllib.request.Request(self.url + "/pay", data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
