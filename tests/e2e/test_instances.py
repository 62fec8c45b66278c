"""Shops as an operator runs them: each instance keeps its pid file and control socket in
its own data folder (and a USR2 upgrade hands the socket over), a clean stop gives the
reconciler's lease back at once, and SIGTERM to the demo stops its children too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ecshop.reconcile import LEASE, lease_holder
from ecshop.store import open_store
from ecshop.testing.servers import free_port
from ecshop.testing.shop import ShopProcess
from tests.e2e.test_serve import PLUGINS, _demo, _until

GUNICORNC = Path(sys.executable).with_name("gunicornc")


def _shop(folder: Path, **env: str) -> ShopProcess:
    folder.mkdir()
    return ShopProcess(env={"ECSHOP_DATABASE_URL": f"sqlite:///{folder}/shop.db",
                            "ECSHOP_PLUGINS_DIR": PLUGINS, **env},
                       log_path=folder / "shop.log")  # fmt: skip


def _workers(link: Path) -> list[int]:
    """The worker pids the control socket behind ``link`` reports."""
    run = subprocess.run([str(GUNICORNC), "-s", str(link), "-c", "show workers", "-j"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return sorted(int(w["pid"]) for w in json.loads(run.stdout)["workers"])


def test_two_shops_on_one_host_have_their_own_pid_file_and_control_socket(tmp_path):
    first, second = _shop(tmp_path / "a").start(), _shop(tmp_path / "b").start()
    try:
        for shop, folder in ((first, tmp_path / "a"), (second, tmp_path / "b")):
            assert shop.proc is not None
            assert (folder / "gunicorn.pid").read_text().strip() == str(shop.proc.pid)
            link = folder / "gunicorn.ctl"
            assert os.readlink(link) == f"gunicorn-{shop.proc.pid}.ctl"
            socket_path = folder / os.readlink(link)
            assert _until(socket_path.exists, "no control socket")
            assert _workers(link) == sorted(shop.worker_pids())
    finally:
        first.stop()
        second.stop()
    for folder in (tmp_path / "a", tmp_path / "b"):
        assert not (folder / "gunicorn.pid").exists()
        assert not (folder / "gunicorn.ctl").exists()
        assert not list(folder.glob("gunicorn-*.ctl"))


def test_a_usr2_upgrade_hands_the_control_socket_to_the_new_master(tmp_path):
    folder = tmp_path / "shop"
    shop = _shop(folder).start()
    assert shop.proc is not None
    old = shop.proc.pid
    link = folder / "gunicorn.ctl"
    try:
        shop.proc.send_signal(signal.SIGUSR2)
        # the new master writes gunicorn.pid.2 until the old one is gone
        new = _until(lambda: _pid_in(folder / "gunicorn.pid.2"), "no new master after USR2")
        _until(lambda: os.readlink(link) == f"gunicorn-{new}.ctl", "the link was not handed over")
        os.kill(old, signal.SIGQUIT)
        shop.proc.wait(60)
        # the old master left, and took only its own socket with it
        _until(lambda: _pid_in(folder / "gunicorn.pid") == new, "the new master was not promoted")
        assert _workers(link), "the new master's control socket is gone"
        assert not (folder / f"gunicorn-{old}.ctl").exists()
    finally:
        for pid in (old, _pid_in(folder / "gunicorn.pid"), _pid_in(folder / "gunicorn.pid.2")):
            try:
                if pid:
                    os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _until(lambda: not (folder / "gunicorn.pid").exists(), "the new master did not stop")
    assert not link.exists()


def _pid_in(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text.isdigit() else None


def test_a_clean_stop_gives_the_reconciler_lease_back(tmp_path):
    folder = tmp_path / "shop"
    shop = _shop(folder, ECSHOP_RECONCILE_INTERVAL="0.5").start()
    store = open_store(f"sqlite:///{folder}/shop.db")
    try:
        leader = _until(lambda: lease_holder(store, LEASE), "no worker took the lease")
        assert leader[1] > time.time() + 10  # it would outlive the stop by its ttl
        shop.stop()
        assert lease_holder(store, LEASE) is None
        # the cron command runs at once instead of waiting out the lease
        run = ShopProcess(env=dict(shop.env)).run_cli("reconcile", "--once", check=False)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("reconcile: replayed=0")
    finally:
        shop.stop()
        store.close()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for every purpose here
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_sigterm_to_the_demo_stops_its_shop_and_gateway(tmp_path):
    data, log = tmp_path / "demo-data", tmp_path / "demo.log"
    proc = _demo(data, free_port(), free_port(), log)
    try:
        _until(lambda: "Press Ctrl+C" in log.read_text(), f"the demo did not start: {log}")
        children = _children(proc.pid)
        assert len(children) == 2  # gunicorn's master and the sandbox gateway
        workers = [w for child in children for w in _children(child)]
        assert workers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    for pid in (*children, *workers):
        _until(lambda pid=pid: not _alive(pid), f"process {pid} outlived the demo")
    assert not (data / "gunicorn.pid").exists()
