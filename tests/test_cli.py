"""The ``ecshop`` command as a real process: refusals, masked output, private files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ecshop.testing.servers import free_port

KEY = "k" * 32


def ecshop(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``ecshop <args>`` with only ``env`` of the ECSHOP_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ECSHOP_")}
    return subprocess.run([sys.executable, "-m", "ecshop.cli", *args], env={**base, **env},
                          cwd=cwd, capture_output=True, text=True, timeout=120)  # fmt: skip


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "ECSHOP_SECRET_KEY"),
        ({"ECSHOP_SECRET_KEY": "k" * 31}, "ECSHOP_SECRET_KEY"),
        (
            {"ECSHOP_SECRET_KEY": KEY, "ECSHOP_ADMIN_TOKEN": "short-admin-token"},
            "ECSHOP_ADMIN_TOKEN",
        ),
    ],
)
def test_serve_refuses_weak_secrets_with_one_line(tmp_path, env, named):
    db = tmp_path / "shop.db"
    run = ecshop("serve", "--bind", f"127.0.0.1:{free_port()}",
                 env={"ECSHOP_DATABASE_URL": f"sqlite:///{db}", **env}, cwd=tmp_path)  # fmt: skip
    assert run.returncode != 0
    [line] = run.stderr.splitlines()
    assert line.startswith(f"ecshop: {named}")
    assert "short-admin-token" not in line
    assert not db.exists()  # refused before touching anything


def test_info_masks_every_password(tmp_path):
    closed = free_port()
    env = {
        "ECSHOP_DATABASE_URL": f"mysql://shop:p@ss@127.0.0.1:{closed}/shop",
        "ECSHOP_REDIS_URL": f"redis://:s3cr@t@127.0.0.1:{closed}/0",
        "ECSHOP_SMTP_URL": "smtp://shop:m41l-p4ss@mail.example.com:587?starttls=1",
    }
    run = ecshop("info", env=env, cwd=tmp_path)
    assert run.returncode == 1, run.stderr  # both servers are down
    assert run.stderr == "ecshop: the database and Redis cannot be reached\n"
    out = run.stdout + run.stderr
    assert f"database: mysql://shop:***@127.0.0.1:{closed}/shop" in out
    assert f"redis at redis://:***@127.0.0.1:{closed}/0" in out
    assert "unreachable" in out
    assert "p@ss" not in out and "s3cr@t" not in out
    assert "mail: smtp://shop:***@mail.example.com:587?starttls=1" in out
    assert "m41l-p4ss" not in out


def test_info_masks_query_string_and_tls_passwords(tmp_path):
    closed = free_port()
    env = {"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db",
           "ECSHOP_REDIS_URL": f"redis://127.0.0.1:{closed}/0?password=hunter2"}  # fmt: skip
    run = ecshop("info", env=env, cwd=tmp_path)
    assert "password=***" in run.stdout and "hunter2" not in run.stdout + run.stderr
    env["ECSHOP_REDIS_URL"] = f"rediss://user:pw-secret@127.0.0.1:{closed}"
    run = ecshop("info", env=env, cwd=tmp_path)
    assert "rediss://user:***@" in run.stdout and "pw-secret" not in run.stdout + run.stderr


def test_info_masks_a_sentinel_url(tmp_path):
    closed = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    env = {"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db",
           "ECSHOP_REDIS_URL": f"redis+sentinel://:s3cr@t@{closed}/shop/0?sentinel_password=s3nt"}  # fmt: skip
    run = ecshop("info", env=env, cwd=tmp_path)
    assert run.returncode == 1 and "Redis cannot be reached" in run.stderr
    assert f"redis at redis+sentinel://:***@{closed}/shop/0?sentinel_password=***" in run.stdout
    assert "s3cr@t" not in run.stdout + run.stderr and "s3nt" not in run.stdout + run.stderr


def test_info_names_the_primary_that_sentinel_names(tmp_path, sentinels):
    group = sentinels(1)
    env = {"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db", "ECSHOP_REDIS_URL": group.url}
    run = ecshop("info", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"(primary 127.0.0.1:{group.primary_port()} through Sentinel, " in run.stdout


def test_connection_errors_and_their_log_lines_are_masked(tmp_path):
    """A stock engine on a closed port: the warnings logged and the error printed."""
    db = f"sqlite:///{tmp_path}/shop.db"
    assert ecshop("migrate", env={"ECSHOP_DATABASE_URL": db}, cwd=tmp_path).returncode == 0
    env = {
        "ECSHOP_DATABASE_URL": db,
        "ECSHOP_REDIS_URL": f"redis://:s3cr@t@127.0.0.1:{free_port()}/0",
    }
    run = ecshop("stock", "audit", env=env, cwd=tmp_path)
    assert run.returncode != 0
    assert "not reachable" in run.stderr and "redis://:***@127.0.0.1" in run.stderr
    assert "s3cr@t" not in run.stdout + run.stderr
    mysql = {"ECSHOP_DATABASE_URL": f"mysql://shop:p@ss@127.0.0.1:{free_port()}/shop"}
    run = ecshop("migrate", env=mysql, cwd=tmp_path)
    assert run.returncode != 0 and "cannot connect" in run.stderr
    assert "p@ss" not in run.stdout + run.stderr


def test_export_and_backup_are_private(tmp_path):
    env = {"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/data/shop.db"}
    assert ecshop("migrate", env=env, cwd=tmp_path).returncode == 0
    assert mode(tmp_path / "data") == 0o700 and mode(tmp_path / "data" / "shop.db") == 0o600
    assert ecshop("export", "shop.jsonl.gz", env=env, cwd=tmp_path).returncode == 0
    assert mode(tmp_path / "shop.jsonl.gz") == 0o600
    run = ecshop("backup", "--dir", "backups/daily", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    [backup] = (tmp_path / "backups" / "daily").iterdir()
    assert mode(backup) == 0o600
    assert mode(tmp_path / "backups") == 0o700 and mode(tmp_path / "backups" / "daily") == 0o700


def test_smoke_test_failure_does_not_show_a_password_in_its_url(tmp_path):
    url = f"http://shop:pw-s3cret@127.0.0.1:{free_port()}"
    run = ecshop("smoke-test", "--base-url", url, "--admin-token", "t" * 32, env={}, cwd=tmp_path)
    assert run.returncode == 1
    assert "http://shop:***@127.0.0.1" in run.stdout + run.stderr
    assert "pw-s3cret" not in run.stdout + run.stderr


def test_plugins_lists_settings_and_strict_fails_on_each_problem(tmp_path):
    secret = "short-but-private"
    env = {"ECSHOP_PLUGINS_DIR": str(tmp_path), "ECSHOP_GATEWAY_SANDBOX_SECRET": secret,
           "ECSHOP_PLUGIN_SHIPPING_FEE_FEE": "abc"}  # fmt: skip
    listed = ecshop("plugins", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert secret not in listed.stdout + listed.stderr
    assert "    ECSHOP_GATEWAY_SANDBOX_SECRET  str  required  secret  set ***" in listed.stdout
    assert "    ECSHOP_PLUGIN_SHIPPING_FEE_FEE  int  set 'abc'  default 500" in listed.stdout

    strict = ecshop("plugins", "--strict", env=env, cwd=tmp_path)
    assert strict.returncode == 1
    assert strict.stdout == listed.stdout
    assert secret not in strict.stderr
    assert strict.stderr.splitlines() == [
        "ecshop plugins: plugin shipping_fee: ECSHOP_PLUGIN_SHIPPING_FEE_FEE='abc': must be a "
        "whole number",
        "ecshop plugins: gateway bank_transfer: ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT is not set "
        "(the account buyers transfer to)",
        "ecshop plugins: gateway sandbox: ECSHOP_GATEWAY_SANDBOX_URL is not set (the sandbox "
        "gateway's address)",
        "ecshop plugins: gateway sandbox: ECSHOP_GATEWAY_SANDBOX_SECRET is shorter than 32 bytes",
    ]


def test_plugins_strict_passes_when_every_enabled_plugin_can_run(tmp_path):
    env = {"ECSHOP_PLUGINS_DIR": str(tmp_path), "ECSHOP_PLUGINS_DISABLED": "sandbox",
           "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": "Bank 1"}  # fmt: skip
    done = ecshop("plugins", "--strict", env=env, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert "gateways: bank_transfer, cod" in done.stdout


def test_info_exits_1_naming_what_is_down_and_0_when_all_answer(tmp_path):
    env = {"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db"}
    run = ecshop("info", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"data folder: {tmp_path}" in run.stdout
    run = ecshop("info", env={**env, "ECSHOP_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
                 cwd=tmp_path)  # fmt: skip
    assert run.returncode == 1
    assert run.stderr == "ecshop: Redis cannot be reached\n"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ECSHOP_HOLD_TTL", "abc", "ECSHOP_HOLD_TTL='abc': invalid literal for int()"),
        ("ECSHOP_BASE_URL", "shop.example.com", "ECSHOP_BASE_URL='shop.example.com': must be"),
        ("ECSHOP_BASE_URL", "ftp://shop.example.com", "ECSHOP_BASE_URL='ftp://shop.example.com'"),
        ("ECSHOP_BASE_URL", "https://shop.example.com:80x", "has a port that is not a number"),
        ("ECSHOP_BASE_URL", "https://shop.example.com/?a=1", "without user, query or fragment"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "info", "reconcile"])
def test_a_bad_setting_is_one_line_naming_it(tmp_path, name, value, expected, command):
    env = {"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db", "ECSHOP_SECRET_KEY": KEY,
           name: value}  # fmt: skip
    extra = ["--once"] if command == "reconcile" else []
    run = ecshop(command, *extra, env=env, cwd=tmp_path)
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    assert line.startswith(f"ecshop: {name}=") and expected in line, line
    assert not (tmp_path / "shop.db").exists()


def test_a_good_base_url_loses_its_trailing_slash():
    from ecshop.config import load_config

    config = load_config({"ECSHOP_BASE_URL": "https://shop.example.com/store/"})
    assert config.base_url == "https://shop.example.com/store"


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db", "ECSHOP_SECRET_KEY": KEY,
               "ECSHOP_ADMIN_TOKEN": "t" * 32}  # fmt: skip
        run = ecshop("serve", "--bind", f"127.0.0.1:{port}", env=env, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr.splitlines()
    assert line == (f"ecshop: --bind 127.0.0.1:{port}: the address is in use (another shop or "
                    "server listens there): stop it or choose another --bind")  # fmt: skip
    assert not (tmp_path / "shop.db").exists()  # refused before the migration


def test_backups_go_to_the_data_folder_and_restore_into_the_named_database(tmp_path):
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    env = {"ECSHOP_DATABASE_URL": f"sqlite:///{data}/shop.db"}
    assert ecshop("migrate", env=env, cwd=elsewhere).returncode == 0
    made = ecshop("admin", "create-user", "owner",
                  env={**env, "ECSHOP_ADMIN_PASSWORD": "a long admin password"}, cwd=elsewhere)  # fmt: skip
    assert made.returncode == 0, made.stderr
    run = ecshop("backup", env=env, cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    [backup] = (data / "backups").glob("ecshop-*.jsonl.gz")
    assert mode(data / "backups") == 0o700 and mode(backup) == 0o600
    assert list(elsewhere.iterdir()) == []  # nothing in the working folder
    target = f"sqlite:///{tmp_path}/new/shop.db"
    (tmp_path / "new").mkdir()
    run = ecshop("restore", str(backup), "--database-url", target, env=env, cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert f"into {target}: " in run.stdout and "admin_users 1" in run.stdout
    listed = ecshop("admin", "list-users", env={"ECSHOP_DATABASE_URL": target}, cwd=elsewhere)
    assert listed.stdout.startswith("owner\towner\tactive")


def test_reconcile_once_names_the_leader_or_waits_for_its_pass(tmp_path):
    import threading

    from ecshop.reconcile import LEASE, ReconcileReport, _remember_pass, acquire_lease
    from ecshop.store import open_store

    env = {"ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/shop.db"}
    assert ecshop("migrate", env=env, cwd=tmp_path).returncode == 0
    store = open_store(env["ECSHOP_DATABASE_URL"])
    assert acquire_lease(store, LEASE, "host-a:123:9", ttl=120)
    run = ecshop("reconcile", "--once", env=env, cwd=tmp_path)
    assert run.returncode == 3
    [line] = run.stderr.splitlines()
    assert line.startswith("ecshop: the reconciler of host-a:123:9 leads (its lease runs until ")
    assert "--wait SECONDS" in line
    # the leader's next pass, while --wait waits for it: the leader passes every 0.5 s
    done = threading.Event()

    def lead() -> None:
        while not done.wait(0.5):
            _remember_pass(store, ReconcileReport(checked=4, paid=3))

    leader = threading.Thread(target=lead)
    leader.start()
    try:
        run = ecshop("reconcile", "--once", "--wait", "60", env=env, cwd=tmp_path)
    finally:
        done.set()
        leader.join()
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("reconcile: the pass of host-a:123:9: ")
    assert "checked=4, paid=3" in run.stdout
    # no pass within the wait
    run = ecshop("reconcile", "--once", "--wait", "1", env=env, cwd=tmp_path)
    assert run.returncode == 3 and "made no pass within 1s" in run.stderr
    store.close()
