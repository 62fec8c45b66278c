"""A gateway plugin as a shop owner installs it: pip with an entry point, or a file
dropped into the plugins folder; either way it is listed by ``ecshop plugins`` and its
own tests pass the conformance kit. The example packages are ``docs/examples/acmepay``
(the sandbox protocol) and ``docs/examples/formpay`` (form callbacks signed in a body
field, answered with a literal ``OK``).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ecshop.config import child_environ

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
EXAMPLE = EXAMPLES / "acmepay"
FORMPAY = EXAMPLES / "formpay"
KIT_TESTS = 14  # checks in ecshop.testing.gateway.GatewayConformance
FOLDER_KIT = """
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecshop.config import load_config
from ecshop.plugins import load_plugins
from ecshop.testing.gateway import GatewayConformance, GatewayHarness, sandbox_harness


class TestFolderPlugin(GatewayConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[GatewayHarness]:
        name = os.environ["KIT_GATEWAY"]
        config = load_config({"ECSHOP_PLUGINS_DIR": os.environ["KIT_PLUGINS_DIR"],
                              "ECSHOP_PLUGINS_STRICT": "1",
                              f"ECSHOP_GATEWAY_{name.upper()}_URL": "http://127.0.0.1:9",
                              f"ECSHOP_GATEWAY_{name.upper()}_SECRET": "s" * 32})
        gateway = load_plugins(config).gateways[name]
        yield from sandbox_harness(tmp_path, gateway_class=type(gateway))
"""


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=child_environ(env), capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def plugins_listing(cwd: Path, plugins_dir: Path, **env: str) -> list[list[str]]:
    done = run([sys.executable, "-m", "ecshop.cli", "plugins"], cwd,
               ECSHOP_PLUGINS_DIR=str(plugins_dir), **env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [line.split(None, 4) for line in done.stdout.splitlines()]


def run_kit(tests: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                str(cwd), str(tests)], cwd, **env)  # fmt: skip


def pip_installed(example: Path, tmp_path: Path, distribution: str):
    source = tmp_path / example.name
    shutil.copytree(
        example, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    done = run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", str(source)], tmp_path
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    importlib.invalidate_caches()
    try:
        yield source
    finally:
        run([*pip, "uninstall", "--yes", distribution], tmp_path)
        importlib.invalidate_caches()


@pytest.fixture
def installed_example(tmp_path: Path):
    yield from pip_installed(EXAMPLE, tmp_path, "acmepay-ecshop")


@pytest.fixture
def installed_formpay(tmp_path: Path):
    yield from pip_installed(FORMPAY, tmp_path, "formpay-ecshop")


def test_pip_installed_gateway_is_listed_and_passes_the_kit(
    installed_example: Path, tmp_path: Path
):
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    rows = plugins_listing(tmp_path, empty)
    assert ["acmepay", "0.3.1", "entry_point", "enabled", "acmepay, order_paid"] in rows
    assert ["gateway", "acmepay:", "needs", "settings:", "ECSHOP_GATEWAY_ACMEPAY_URL is not set "
            "(AcmePay's API address); ECSHOP_GATEWAY_ACMEPAY_SECRET is not set (a secret of at "
            "least 32 bytes)"] in rows  # fmt: skip
    rows = plugins_listing(tmp_path, empty, ECSHOP_GATEWAY_ACMEPAY_URL="http://127.0.0.1:9",
                           ECSHOP_GATEWAY_ACMEPAY_SECRET="s" * 32)  # fmt: skip
    assert any(row[:1] == ["gateways:"] and "acmepay" in row[1] for row in rows)
    assert ["gateway", "acmepay:", "live", "(test", "mode)"] in rows

    # The package's own tests, run from outside the repository against the installed copy.
    tests = tmp_path / "acmepay-tests"
    shutil.copytree(installed_example / "tests", tests)
    shutil.rmtree(installed_example)
    done = run_kit(tests, tmp_path)
    assert done.returncode == 0, done.stdout[-5000:]
    assert f"{KIT_TESTS} passed" in done.stdout, done.stdout[-2000:]


def test_uninstalled_gateway_is_gone(tmp_path: Path):
    """The install above did not leak: without it the shop does not see AcmePay."""
    rows = plugins_listing(tmp_path, tmp_path)
    assert not any(row and row[0] == "acmepay" for row in rows)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    source = (EXAMPLE / "acmepay_ecshop" / "__init__.py").read_text()
    (plugins / "acmepay.py").write_text(source)
    # A careless copy: it never checks how old a notification is.
    lax = source.replace('NAME = "acmepay"', 'NAME = "laxpay"').replace(
        'name = "acmepay"', 'name = "laxpay"').replace("TOLERANCE = 300", "TOLERANCE = 10**12")  # fmt: skip
    assert lax.count("laxpay") == 2 and "10**12" in lax
    (plugins / "laxpay.py").write_text(lax)
    (tmp_path / "test_folder_kit.py").write_text(FOLDER_KIT)
    return plugins


def test_folder_gateway_is_listed_and_passes_the_kit(folder: Path, tmp_path: Path):
    rows = plugins_listing(tmp_path, folder)
    assert ["acmepay", "0.3.1", "folder", "enabled", "acmepay, order_paid"] in rows
    assert ["laxpay", "0.3.1", "folder", "enabled", "laxpay, order_paid"] in rows

    done = run_kit(tmp_path / "test_folder_kit.py", tmp_path, KIT_PLUGINS_DIR=str(folder),
                   KIT_GATEWAY="acmepay")  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:]
    assert f"{KIT_TESTS} passed" in done.stdout, done.stdout[-2000:]


def test_kit_fails_a_gateway_that_accepts_stale_notifications(folder: Path, tmp_path: Path):
    done = run_kit(tmp_path / "test_folder_kit.py", tmp_path, KIT_PLUGINS_DIR=str(folder),
                   KIT_GATEWAY="laxpay")  # fmt: skip
    assert done.returncode == 1, done.stdout[-5000:]
    assert f"1 failed, {KIT_TESTS - 1} passed" in done.stdout, done.stdout[-3000:]
    assert (
        "FAILED test_folder_kit.py::TestFolderPlugin::test_stale_timestamp_is_refused"
        in done.stdout
    )


def test_the_built_in_gateways_come_with_the_package_from_any_folder(tmp_path):
    """Run from an empty folder (no plugins folder at all), ecshop still finds and
    offers its own gateways: they are entry points of the installed package."""
    env = {
        **os.environ, "ECSHOP_GATEWAY_SANDBOX_URL": "http://127.0.0.1:9",
        "ECSHOP_GATEWAY_SANDBOX_SECRET": "s" * 32, "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": "Bank 1",
    }  # fmt: skip
    env.pop("ECSHOP_PLUGINS_DIR", None)
    done = subprocess.run([sys.executable, "-m", "ecshop.cli", "plugins"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "gateways: bank_transfer, cod, sandbox" in done.stdout, done.stdout
    for plugin in ("sandbox", "offline_payments", "shipping_fee"):
        assert f"{plugin} " in done.stdout and "entry_point" in done.stdout


FORMPAY_FOLDER_KIT = """
import os
from collections.abc import Iterator

import fake_formpay
import pytest

from ecshop.config import load_config
from ecshop.plugins import load_plugins
from ecshop.testing.gateway import GatewayConformance, GatewayHarness


class TestFolderFormPay(GatewayConformance):
    @pytest.fixture
    def harness(self) -> Iterator[GatewayHarness]:
        # settings that make the folder's gateway live; the harness points a fresh
        # instance of the same class at its own fake provider
        config = load_config({"ECSHOP_PLUGINS_DIR": os.environ["KIT_PLUGINS_DIR"],
                              "ECSHOP_PLUGINS_STRICT": "1",
                              "ECSHOP_GATEWAY_FORMPAY_URL": "http://127.0.0.1:9",
                              "ECSHOP_GATEWAY_FORMPAY_SHOP_ID": "kit",
                              "ECSHOP_GATEWAY_FORMPAY_SECRET": "s" * 32})
        gateway = load_plugins(config).gateways["formpay"]
        assert type(gateway).__module__ == "ecshop_plugin_formpay", type(gateway).__module__
        yield from fake_formpay.harness(type(gateway))
"""


def test_pip_installed_formpay_is_listed_and_passes_the_kit(
    installed_formpay: Path, tmp_path: Path
):
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    rows = plugins_listing(tmp_path, empty)
    assert ["formpay", "0.1.0", "entry_point", "enabled", "formpay"] in rows, rows

    tests = tmp_path / "formpay-tests"
    shutil.copytree(installed_formpay / "tests", tests)
    shutil.rmtree(installed_formpay)
    done = run_kit(tests, tmp_path)
    assert done.returncode == 0, done.stdout[-5000:]
    assert f"{KIT_TESTS} passed" in done.stdout, done.stdout[-2000:]


def test_formpay_dropped_into_a_plugins_folder_passes_the_kit(tmp_path: Path):
    plugins = tmp_path / "plugins"
    shutil.copytree(FORMPAY / "formpay_ecshop", plugins / "formpay",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    rows = plugins_listing(tmp_path, plugins)
    assert ["formpay", "0.1.0", "folder", "enabled", "formpay"] in rows, rows

    kit = tmp_path / "kit"
    kit.mkdir()
    shutil.copy(FORMPAY / "tests" / "fake_formpay.py", kit)
    (kit / "test_folder_formpay.py").write_text(FORMPAY_FOLDER_KIT)
    done = run_kit(kit, tmp_path, KIT_PLUGINS_DIR=str(plugins))
    assert done.returncode == 0, done.stdout[-5000:]
    assert f"{KIT_TESTS} passed" in done.stdout, done.stdout[-2000:]


def test_kit_fails_a_form_gateway_that_trusts_an_unsigned_callback(tmp_path: Path):
    """The kit finds a signature in a body field: a copy of FormPay that skips the check
    when ``sig`` is missing fails on exactly that."""
    plugins = tmp_path / "plugins"
    (plugins / "formpay").mkdir(parents=True)
    source = (FORMPAY / "formpay_ecshop" / "__init__.py").read_text()
    careless = source.replace("if not given or not hmac", "if given and not hmac")
    assert careless != source
    (plugins / "formpay" / "__init__.py").write_text(careless)
    kit = tmp_path / "kit"
    kit.mkdir()
    shutil.copy(FORMPAY / "tests" / "fake_formpay.py", kit)
    (kit / "test_folder_formpay.py").write_text(FORMPAY_FOLDER_KIT)
    done = run_kit(kit, tmp_path, KIT_PLUGINS_DIR=str(plugins))
    assert done.returncode == 1, done.stdout[-5000:]
    assert f"1 failed, {KIT_TESTS - 1} passed" in done.stdout, done.stdout[-3000:]
    assert "test_tampered_or_missing_signature_is_refused" in done.stdout
    assert (
        "the genuine notification without its signature: expected SignatureError, got an accepted event"
        in done.stdout
    )
