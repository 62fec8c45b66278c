"""deploy/systemd/: the units pass ``systemd-analyze verify`` with their paths pointed at
this checkout's ecshop, and say what the deployment guide promises of them."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from ecshop.config import check_serving, load_config
from ecshop.errors import ConfigError
from ecshop.testing.shop import GUNICORN_CONF
from tests.conftest import _unavailable
from tests.deploy.conftest import UNITS, one, parse_unit, render, system_binary

ECSHOP = "/opt/ecshop/venv/bin/ecshop"
SERVICES = ("ecshop.service", "ecshop-reconcile.service", "ecshop-backup.service")


def analyze() -> str:
    binary = system_binary("systemd-analyze", "systemd")
    probe = subprocess.run([binary, "calendar", "minutely"], capture_output=True, text=True)
    if probe.returncode != 0:
        _unavailable(f"systemd-analyze cannot run here: {probe.stderr.strip()}")
    return binary


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path, venv_bin: Path) -> None:
    binary = analyze()
    here = {ECSHOP: str(venv_bin / "ecshop")}
    for unit in UNITS.glob("*.service"):
        (tmp_path / unit.name).write_text(render(unit.read_text(), here))
    for unit in UNITS.glob("*.timer"):
        shutil.copy(unit, tmp_path / unit.name)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([*SERVICES, "ecshop-reconcile.timer", "ecshop-backup.timer"])
    result = subprocess.run([binary, "verify", *names], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    # verify exits 0 on unknown keys and bad values that systemd would ignore: any word
    # from it is a mistake in the kit.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # ...and it does catch one: a misspelled setting.
    broken = tmp_path / "ecshop.service"
    broken.write_text(broken.read_text().replace("ProtectSystem=strict", "ProtectSystem=strikt"))
    result = subprocess.run([binary, "verify", "ecshop.service"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "strikt" in result.stderr


def test_the_service_serves_as_its_own_user_with_secrets_apart_and_hardening() -> None:
    unit = parse_unit(UNITS / "ecshop.service")
    service = unit["Service"]
    assert one(unit, "Service", "ExecStart").startswith(f"{ECSHOP} serve --bind 127.0.0.1:8000")
    assert one(unit, "Service", "User") == "ecshop" and one(unit, "Service", "Group") == "ecshop"
    assert service["EnvironmentFile"] == ["/etc/ecshop/ecshop.env"]
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    assert one(unit, "Service", "KillMode") == "mixed"  # the master alone gets SIGTERM
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ProtectHome": "yes", "ReadWritePaths": "/var/lib/ecshop"}.items():  # fmt: skip
        assert one(unit, "Service", key) == value, key
    assert one(unit, "Service", "WorkingDirectory") == "/var/lib/ecshop"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_the_stop_timeout_lets_gunicorn_finish_its_requests() -> None:
    [graceful] = re.findall(r"^graceful_timeout = (\d+)$", GUNICORN_CONF.read_text(), re.M)
    stop = one(parse_unit(UNITS / "ecshop.service"), "Service", "TimeoutStopSec")
    assert int(stop) > int(graceful)


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_runs_with_the_same_user_settings_and_sandbox(name: str) -> None:
    main = parse_unit(UNITS / "ecshop.service")["Service"]
    unit = parse_unit(UNITS / name)["Service"]
    shared = ("User", "Group", "WorkingDirectory", "Environment", "EnvironmentFile", "UMask",
              "NoNewPrivileges", "ProtectSystem", "ReadWritePaths", "PrivateTmp", "ProtectHome",
              "CapabilityBoundingSet", "RestrictAddressFamilies", "StateDirectory")  # fmt: skip
    for key in shared:
        assert unit.get(key) == main.get(key), f"{name}: {key}"


def test_the_reconcile_timer_runs_one_pass_every_minute() -> None:
    service = parse_unit(UNITS / "ecshop-reconcile.service")
    assert one(service, "Service", "Type") == "oneshot"
    assert one(service, "Service", "ExecStart") == f"{ECSHOP} reconcile --once"
    # a pass that finds `ecshop serve`'s loop leading exits 3: not a failed unit
    assert one(service, "Service", "SuccessExitStatus") == "3"
    timer = parse_unit(UNITS / "ecshop-reconcile.timer")
    assert one(timer, "Timer", "Unit") == "ecshop-reconcile.service"
    assert one(timer, "Install", "WantedBy") == "timers.target"
    spec = one(timer, "Timer", "OnCalendar")
    shown = subprocess.run([analyze(), "calendar", spec], capture_output=True, text=True)
    assert "Normalized form: *-*-* *:*:00" in shown.stdout, shown.stdout + shown.stderr


def test_the_backup_timer_starts_its_service() -> None:
    timer = parse_unit(UNITS / "ecshop-backup.timer")
    assert one(timer, "Timer", "Unit") == "ecshop-backup.service"
    exec_start = one(parse_unit(UNITS / "ecshop-backup.service"), "Service", "ExecStart")
    assert exec_start.startswith(f"{ECSHOP} backup --dir /var/lib/ecshop/backups")


def _env_file(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def test_the_example_settings_load_and_serve_only_once_the_secrets_are_made() -> None:
    env = _env_file(UNITS / "ecshop.env.example")
    toml = UNITS / "ecshop.toml.example"
    config = load_config(env, toml)
    assert config.trusted_proxies == ("127.0.0.1", "::1") and config.base_url.startswith("https:")
    with pytest.raises(ConfigError, match="ECSHOP_SECRET_KEY is not set"):
        check_serving(config)
    env.update(ECSHOP_SECRET_KEY=secrets.token_hex(32), ECSHOP_ADMIN_TOKEN=secrets.token_hex(16))
    check_serving(load_config(env, toml))
