"""A plain ``pip install .`` into a new virtual environment, run from an empty folder:
the package carries everything it needs (migrations, Lua scripts, templates, static
files) and its built-in gateways take orders. Slow: it builds the package."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ecshop.testing.sandbox import SandboxGatewayProcess
from ecshop.testing.servers import free_port

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def post(url: str, body: dict, token: str = "") -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read()))


def test_a_plain_install_run_from_an_empty_folder_takes_orders_with_its_own_gateways(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True,
                   timeout=900)  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    gateway = SandboxGatewayProcess(directory=tmp_path).start()
    port, token = free_port(), "t" * 32
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path),
           "ECSHOP_DATABASE_URL": f"sqlite:///{empty}/shop.db", "ECSHOP_SECRET_KEY": "k" * 32,
           "ECSHOP_ADMIN_TOKEN": token, "ECSHOP_RECONCILE_INTERVAL": "0",
           "ECSHOP_GATEWAY_SANDBOX_URL": gateway.url, "ECSHOP_GATEWAY_SANDBOX_SECRET": gateway.secret,
           "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": "Example Bank 123"}  # fmt: skip
    listed = subprocess.run([str(venv / "bin" / "ecshop"), "plugins"], cwd=empty, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "gateways: bank_transfer, cod, sandbox" in listed.stdout, listed.stdout + listed.stderr
    server = subprocess.Popen([str(venv / "bin" / "ecshop"), "serve", "--bind", f"127.0.0.1:{port}",
                               "--workers", "1"], cwd=empty, env=env)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the installed shop did not start"
                time.sleep(0.2)
        post(base + "/api/v1/admin/products", {"sku": "TEA", "name": "Tea", "price": 1000,
                                               "on_hand": 5}, token)  # fmt: skip
        for name, status in (("sandbox", "pending_payment"), ("cod", "accepted"),
                             ("bank_transfer", "accepted")):  # fmt: skip
            order = post(base + "/api/v1/checkout", {"lines": [{"sku": "TEA", "qty": 1}],
                         "customer": {"email": "a@example.com"}, "gateway": name})  # fmt: skip
            assert order["status"] == status, order
        assert urllib.request.urlopen(base + "/", timeout=10).status == 200
    finally:
        server.terminate()
        server.wait(30)
        gateway.stop()
