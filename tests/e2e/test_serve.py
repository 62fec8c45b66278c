"""The served shop's secrets: gunicorn refuses to start without a secret key, log lines
carry no password or access token, and the demo keeps its key across restarts."""

from __future__ import annotations

import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from ecshop.testing.sandbox import SandboxGatewayProcess
from ecshop.testing.servers import ServerUnavailable, free_port
from ecshop.testing.shop import GUNICORN_CONF, ShopProcess

PLUGINS = str(Path(__file__).resolve().parents[2] / "plugins")
WAIT = 60  # bound on any wait: turns a hang into a failure, times nothing


def _until(predicate, what: str):
    deadline = time.monotonic() + WAIT
    while not (value := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


def test_gunicorn_refuses_to_start_without_a_secret_key(tmp_path):
    shop = ShopProcess(env={"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db",
                            "ECSHOP_SECRET_KEY": ""}, log_path=tmp_path / "shop.log")  # fmt: skip
    with pytest.raises(ServerUnavailable, match="gunicorn exited with 2"):
        shop.start()
    [line] = (tmp_path / "shop.log").read_text().splitlines()
    assert line.startswith("ecshop: ECSHOP_SECRET_KEY is not set")


def test_worker_log_lines_carry_no_redis_password(tmp_path):
    db = f"sqlite:///{tmp_path}/shop.db"
    env = {"ECSHOP_DATABASE_URL": db, "ECSHOP_SECRET_KEY": secrets.token_hex(32),
           "ECSHOP_REDIS_URL": f"redis://:s3cr@t@127.0.0.1:{free_port()}/0",
           "ECSHOP_PLUGINS_DIR": PLUGINS, "ECSHOP_RECONCILE_INTERVAL": "0"}  # fmt: skip
    ShopProcess(env=dict(env)).run_cli("migrate")
    log_path, port = tmp_path / "shop.log", free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind",
             f"127.0.0.1:{port}", "--workers", "1", "ecshop.app:create_app()"],
            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _until(lambda: "not reachable" in log_path.read_text(), "no warning about Redis")
    finally:
        proc.terminate()
        proc.wait(WAIT)
    text = log_path.read_text()
    assert "redis://:***@127.0.0.1" in text and "s3cr@t" not in text


def test_access_log_shows_the_return_ticket_but_no_access_token(tmp_path):
    gateway = SandboxGatewayProcess(directory=tmp_path).start()
    port, admin = free_port(), secrets.token_hex(16)
    shop = ShopProcess(
        env={"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db", "ECSHOP_ADMIN_TOKEN": admin,
             "ECSHOP_BASE_URL": f"http://127.0.0.1:{port}", "ECSHOP_PLUGINS_DIR": PLUGINS,
             "ECSHOP_GATEWAY_SANDBOX_URL": gateway.url, "ECSHOP_RECONCILE_INTERVAL": "0",
             "ECSHOP_GATEWAY_SANDBOX_SECRET": gateway.secret},
        port=port, log_path=tmp_path / "shop.log",
    )  # fmt: skip
    try:
        shop.start()
        requests.post(f"{shop.url}/api/v1/admin/products", timeout=WAIT,
                      headers={"Authorization": f"Bearer {admin}"},
                      json={"sku": "TEA", "name": "Tea", "price": 1200, "on_hand": 5}).raise_for_status()  # fmt: skip
        order = requests.post(f"{shop.url}/api/v1/checkout", timeout=WAIT,
                              json={"lines": [{"sku": "TEA", "qty": 1}], "gateway": "sandbox",
                                    "customer": {"email": "a@example.com"}}).json()  # fmt: skip
        pay = dict(parse_qsl(urlsplit(order["payment"]["redirect_url"]).query))
        assert requests.get(pay["return_url"], timeout=WAIT).status_code == 200
        status = requests.get(f"{shop.url}/api/v1/orders/{order['number']}", timeout=WAIT,
                              params={"token": order["access_token"]})  # fmt: skip
        assert status.status_code == 200
        _until(lambda: "token=***" in shop.log_tail(), "no access log")  # the shop's own
    finally:
        shop.stop()
        gateway.stop()
    log = (tmp_path / "shop.log").read_text()  # the whole log: its tail may not reach back
    assert f"/payments/sandbox/return?order={order['number']}&ticket=" in log
    assert order["access_token"] not in log and "token=***" in log


def _demo(data: Path, port: int, gw_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECSHOP_")}
    env["ECSHOP_PLUGINS_DIR"] = PLUGINS  # the sandbox client is a drop-in plugin
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ecshop.cli", "demo", "--bind", f"127.0.0.1:{port}",
             "--data-dir", str(data), "--gateway-port", str(gw_port), "--workers", "1"],
            env=env, cwd=data.parent, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # the demo stops its gunicorn and gateway on Ctrl+C
    try:
        proc.wait(WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_demo_makes_a_private_secret_key_and_keeps_it(tmp_path):
    data, log = tmp_path / "demo-data", tmp_path / "demo.log"
    port, gw_port = free_port(), free_port()
    keys = []
    for _ in range(2):  # a first start, then a restart
        proc = _demo(data, port, gw_port, log)
        try:
            _until(lambda: "Press Ctrl+C" in log.read_text(), f"the demo did not start: {log}")
            placed = requests.post(f"http://127.0.0.1:{port}/api/v1/checkout", timeout=WAIT,
                                   json={"lines": [{"sku": "SENCHA-100", "qty": 1}],
                                         "customer": {"email": "a@example.com"}, "gateway": "sandbox"})  # fmt: skip
            assert placed.status_code == 201, placed.text
            order = placed.json()
            return_url = dict(parse_qsl(urlsplit(order["payment"]["redirect_url"]).query))[
                "return_url"
            ]
            assert requests.get(return_url, timeout=WAIT).status_code == 200
        finally:
            _stop(proc)
        keys.append((data / "secret-key").read_text())
        log.write_text("")
    assert keys[0] == keys[1] and len(keys[0].strip()) >= 32
    assert stat.S_IMODE(os.stat(data / "secret-key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(data / "secrets").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data / "shop.db").st_mode) == 0o600
