"""The sandbox gateway as a real process, for tests, benchmarks and the conformance kit."""

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

from ecshop.config import child_environ
from ecshop.testing.servers import ServerUnavailable, free_port

START_TIMEOUT = 20.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


@dataclass
class SandboxGatewayProcess:
    """``python -m ecshop.sandbox.server`` on a free port with its own state file.

    Keyword switches become flags (``delay_ms=200`` → ``--delay-ms 200``,
    ``reorder=True`` → ``--reorder``). With ``secret_via_env`` the secret is handed
    over in ``ECSHOP_GATEWAY_SANDBOX_SECRET`` instead of ``--secret``.
    """

    directory: Path
    switches: dict[str, Any] = field(default_factory=dict)
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = 0
    secret_via_env: bool = False
    proc: subprocess.Popen[bytes] | None = None

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
        args = [sys.executable, "-m", "ecshop.sandbox.server", "--port", str(self.port),
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

    def start(self) -> SandboxGatewayProcess:
        if not self.port:
            self.port = free_port()
        env = child_environ(
            {"ECSHOP_GATEWAY_SANDBOX_SECRET": self.secret if self.secret_via_env else ""}
        )
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(
                    f"sandbox gateway exited: {self.log_path.read_text()[-2000:]}"
                )
            try:
                with _OPENER.open(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise ServerUnavailable(f"sandbox gateway did not answer within {START_TIMEOUT:.0f}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> SandboxGatewayProcess:
        """Stop and start again on the same port and state file."""
        self.stop()
        return self.start()

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the merchant API and return its JSON answer (HTTP errors raise)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"})  # fmt: skip
        with _OPENER.open(req, timeout=10) as resp:
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
        req = urllib.request.Request(self.url + "/pay", data=urlencode(fields).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        try:
            with _OPENER.open(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
