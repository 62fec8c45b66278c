"""Slow clients against ``ecshop serve`` as it runs by default (2 workers): clients that
trickle a request body must neither stall the shop nor keep their connection forever,
and many keep-alive clients are all kept alive."""

from __future__ import annotations

import http.client
import os
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ecshop.testing.sandbox import SandboxGatewayProcess
from ecshop.testing.servers import free_port

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
# NOTE: the shop runs with its default ECSHOP_BODY_TIMEOUT (20 s); a request that
# does not answer within REPLY is a stalled shop, well before any trickler is cut off.
REPLY = 10
WAIT = 60  # bound on any wait: turns a hang into a failure, times nothing


@dataclass
class Served:
    url: str
    port: int
    admin: dict[str, str]


def _wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``ecshop serve --workers 2`` on the embedded default, paying through the
    sandbox gateway: ``serve(**settings)``."""
    started: list[Any] = []

    def start(**settings: str) -> Served:
        gateway = SandboxGatewayProcess(directory=tmp_path).start()
        started.append(gateway)
        port, token = free_port(), secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECSHOP_")}
        env.update({
            "ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db", "ECSHOP_ADMIN_TOKEN": token,
            "ECSHOP_SECRET_KEY": secrets.token_hex(32), "ECSHOP_BASE_URL": f"http://127.0.0.1:{port}",
            "ECSHOP_GATEWAY_SANDBOX_URL": gateway.url, "ECSHOP_GATEWAY_SANDBOX_SECRET": gateway.secret,
            "ECSHOP_PLUGINS_DIR": str(PLUGINS), "ECSHOP_RECONCILE_INTERVAL": "0", **settings,
        })  # fmt: skip
        with open(tmp_path / "shop.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ecshop.cli", "serve", "--bind", f"127.0.0.1:{port}",
                 "--workers", "2"],
                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        started.append(proc)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert proc.poll() is None, (tmp_path / "shop.log").read_text()
            try:
                return requests.get(f"{url}/api/v1/products", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        _wait_until(answers, "ecshop serve did not answer")
        return Served(url, port, {"Authorization": f"Bearer {token}"})

    yield start
    for proc in reversed(started):
        if isinstance(proc, SandboxGatewayProcess):
            proc.stop()
            continue
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Trickler(threading.Thread):
    """A checkout whose 10 kB body comes one byte a second, never finishing. ``outcome``
    is the status the shop answered with, or ``"closed"``, once it gave up on us."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock.sendall(b"POST /api/v1/checkout HTTP/1.1\r\nHost: shop\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n{")  # fmt: skip
        self.sent = 1
        self.outcome: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                readable, _, _ = select.select([self.sock], [], [], 1.0)
                if readable:
                    reply = self.sock.recv(4096)
                    self.outcome = reply.split(b" ", 2)[1].decode() if reply else "closed"
                    return
                self.sock.sendall(b" ")
                self.sent += 1
        except OSError:
            self.outcome = "closed"
        finally:
            self.sock.close()


@pytest.mark.parametrize("count", [2, 4])
def test_trickling_bodies_neither_stall_the_shop_nor_stay_forever(serve, count):
    served = serve()
    requests.post(f"{served.url}/api/v1/admin/products", headers=served.admin, timeout=WAIT,
                  json={"sku": "TEA", "name": "Tea", "price": 1200, "on_hand": 5}).raise_for_status()  # fmt: skip
    tricklers = [Trickler(served.port) for _ in range(count)]
    for trickler in tricklers:
        trickler.start()
    _wait_until(lambda: all(t.sent >= 2 for t in tricklers), "the tricklers did not start")

    # NOTE: a stalled shop shows as a read timeout here; with two sync workers (one
    # request at a time each) both were taken by the tricklers and nothing answered.
    for _ in range(10):
        listing = requests.get(f"{served.url}/api/v1/products", timeout=REPLY)
        assert listing.status_code == 200 and listing.json()["items"][0]["sku"] == "TEA"
    checkout = requests.post(
        f"{served.url}/api/v1/checkout", timeout=REPLY,
        json={"lines": [{"sku": "TEA", "qty": 1}], "customer": {"email": "a@example.com"},
              "gateway": "sandbox"},
    )  # fmt: skip
    assert checkout.status_code == 201, checkout.text
    assert checkout.json()["payment"]["redirect_url"]
    assert [t.outcome for t in tricklers] == [None] * count  # all still open meanwhile

    _wait_until(lambda: all(t.outcome for t in tricklers), "a trickler was never cut off")
    assert [t.outcome for t in tricklers] == ["408"] * count
    for trickler in tricklers:
        trickler.done.set()
        trickler.join(WAIT)


def test_many_keep_alive_clients_are_all_kept_alive(serve):
    """40 clients that each keep their connection: none is told to close it."""
    served = serve()
    clients = [
        http.client.HTTPConnection("127.0.0.1", served.port, timeout=WAIT) for _ in range(40)
    ]
    try:
        closing = []
        for client in clients:
            client.request("GET", "/api/v1/products")
            reply = client.getresponse()
            reply.read()
            assert reply.status == 200
            closing.append(reply.will_close)
        assert closing == [False] * len(clients)
    finally:
        for client in clients:
            client.close()


def test_sync_workers_cut_a_trickler_off_too(serve):
    """``ECSHOP_THREADS=1``: the body deadline holds on sync workers as well."""
    served = serve(ECSHOP_THREADS="1")
    trickler = Trickler(served.port)
    trickler.start()
    _wait_until(lambda: trickler.outcome, "the trickler was never cut off")
    assert trickler.outcome == "408"
    trickler.done.set()
    trickler.join(WAIT)
    assert requests.get(f"{served.url}/api/v1/products", timeout=WAIT).status_code == 200
