"""Helpers for the deployment kit's tests: the kit's files, the system binaries they run
under (skipped with what to install when missing), and a real ``ecshop serve``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import _unavailable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
WAIT = 30  # bound on any wait: turns a hang into a failure, times nothing


def system_binary(name: str, package: str) -> str:
    """The path of a system binary (also in the sbin folders a user's PATH may lack)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")
    if not found:
        _unavailable(f"{name} is not installed: apt-get install {package}")
    return str(found)


def render(text: str, replacements: Mapping[str, str]) -> str:
    """``text`` with each placeholder replaced; a placeholder the file lost fails the test,
    so the kit and its test cannot drift apart."""
    for old, new in replacements.items():
        assert old in text, f"placeholder {old!r} is no longer in the file"
        text = text.replace(old, new)
    return text


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values in order]}}`` of a unit file (no line continuations)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    [value] = unit[section][key]
    return value


def until(predicate, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while not (value := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return value


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class Serve:
    """``ecshop serve`` as the service runs it: migrate, then gunicorn in the same process."""

    def __init__(self, env: dict[str, str], port: int, directory: Path, workers: int = 1) -> None:
        self.env, self.port, self.log = env, port, directory / "serve.log"
        self.directory, self.worker_count = directory, workers
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Serve:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ecshop.cli", "serve", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.worker_count)],
                env={**os.environ, **self.env}, cwd=self.directory, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            until(lambda: self.proc.poll() is not None or answers(self.url + "/healthz"),
                  "ecshop serve did not answer")  # fmt: skip
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
        except BaseException:
            self.stop()
            raise
        return self

    def workers(self) -> set[int]:
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return {int(pid) for pid in out.stdout.split()}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def venv_bin() -> Path:
    """The folder of this interpreter's ``ecshop`` script (the venv's bin)."""
    folder = Path(sys.executable).parent
    if not (folder / "ecshop").exists():
        pytest.fail(f"no ecshop script next to {sys.executable}: pip install -e . first")
    return folder
