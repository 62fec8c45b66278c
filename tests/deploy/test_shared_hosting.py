"""deploy/shared-hosting/: passenger_wsgi.py and its ecshop.toml served by a second WSGI
server (uWSGI, loading the file as Passenger does), a checkout placed and paid through
it with the gateway's notification lost, and the crontab's line settling the order."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ecshop.resources.static import FOLDER as STATIC
from ecshop.testing.sandbox import SandboxGatewayProcess
from ecshop.testing.servers import free_port
from tests.conftest import _unavailable
from tests.deploy.conftest import DEPLOY, answers, render, system_binary, until

KIT = DEPLOY / "shared-hosting"
ADMIN_TOKEN = secrets.token_hex(16)


def host_env() -> dict[str, str]:
    """This environment without any ECSHOP_* variable: only ecshop.toml configures."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ECSHOP_")}


def uwsgi_python(env: dict[str, str]) -> list[str]:
    """uWSGI's arguments for serving with this venv, as Passenger would (``--virtualenv``).

    Debian's python3 plugin links ``libpython3.X.so.1.0``: Debian's own, unless the venv
    was made on another build of the same Python version (pyenv…), whose library is then
    lent to the plugin, so that it runs the venv's interpreter and standard library.
    """
    name = f"python{sys.version_info.major}{sys.version_info.minor}"
    if not Path(f"/usr/lib/uwsgi/plugins/{name}_plugin.so").exists():
        _unavailable(
            f"uWSGI has no {name} plugin: apt-get install uwsgi-plugin-python3 (it runs "
            f"Debian's python3, so the venv must be made with that Python's version)"
        )
    if Path(sys.base_prefix) != Path("/usr"):
        if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
            _unavailable(f"{sys.base_prefix} has no shared libpython for uWSGI's plugin to run")
        libdir = str(sysconfig.get_config_var("LIBDIR"))
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libdir, env.get("LD_LIBRARY_PATH")]))
    return ["--plugin", name, "--virtualenv", sys.prefix]


@pytest.fixture
def hosted(tmp_path: Path, venv_bin: Path) -> Iterator[tuple[str, Path, SandboxGatewayProcess]]:
    """The kit copied into an app folder as the README says, served by uWSGI, with a
    sandbox gateway that drops every notification."""
    uwsgi = system_binary("uwsgi", "uwsgi-core")
    env = host_env()
    python = uwsgi_python(env)
    gateway = SandboxGatewayProcess(directory=tmp_path, switches={"drop": 1.0}).start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        app, port = tmp_path / "ecshop", free_port()
        app.mkdir()
        shutil.copy(KIT / "passenger_wsgi.py", app)
        toml = render((KIT / "ecshop.toml").read_text(), {
            "/home/USER/ecshop-data": str(tmp_path / "ecshop-data"),
            "/home/USER/ecshop": str(app),
            'secret_key = ""': f'secret_key = "{secrets.token_hex(32)}"',
            'admin_token = ""': f'admin_token = "{ADMIN_TOKEN}"',
            "https://shop.example.com": f"http://127.0.0.1:{port}",
        })  # fmt: skip
        sandbox = f'[gateway.sandbox]\nurl = "{gateway.url}"\nsecret = "{gateway.secret}"\n'
        (app / "ecshop.toml").write_text(f"reconcile_grace = 0\n{toml}\n{sandbox}")
        (app / "ecshop.toml").chmod(0o600)
        # The README's step after an install or an upgrade, from the app's folder.
        migrate = subprocess.run([str(venv_bin / "ecshop"), "migrate"], cwd=app, env=env,
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
        assert migrate.returncode == 0, migrate.stderr
        log = tmp_path / "uwsgi.log"
        with open(log, "ab") as out:
            proc = server = subprocess.Popen(
                [uwsgi, *python, "--http-socket", f"127.0.0.1:{port}",
                 "--wsgi-file", "passenger_wsgi.py", "--chdir", str(app),
                 "--master", "--processes", "2", "--lazy-apps",
                 "--need-app", "--die-on-term", "--strict"],
                cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        until(
            lambda: server.poll() is not None or answers(url + "/healthz"), "uWSGI did not answer"
        )
        assert server.poll() is None, log.read_text()[-3000:]
        yield url, app, gateway
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()  # --die-on-term: SIGTERM stops uWSGI (else it reloads)
            proc.wait(30)
        gateway.stop()


def crontab_line() -> str:
    """The one line of the kit's crontab (the README shows the same)."""
    lines = (KIT / "crontab").read_text().splitlines()
    [line] = [ln for ln in lines if ln and not ln.startswith("#")]
    assert line in (KIT / "README.md").read_text()
    return line


def run_cron(line: str, app: Path, venv_bin: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """A crontab line's command, pointed at this app and venv, run as cron runs it."""
    command = render(line.split(None, 5)[5], {
        "$HOME/virtualenv/ecshop/3.11/bin/": f"{venv_bin}/",
        "$HOME/ecshop": str(app),
    })  # fmt: skip
    return subprocess.run(["sh", "-c", command], env={**host_env(), "HOME": str(home)},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_a_checkout_through_the_passenger_file_is_settled_by_the_cron_line(
    hosted: tuple[str, Path, SandboxGatewayProcess], venv_bin: Path, tmp_path: Path
) -> None:
    url, app, gateway = hosted
    # NOTE: a new connection per request (requests.get, not a Session): uWSGI's
    # --http-socket closes each one after its answer, and a pooled connection could be
    # reused just as it closes.
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert requests.get(url + "/", timeout=30).status_code == 200
    css = requests.get(url + "/static/shop.css", timeout=30)
    assert css.status_code == 200 and css.content == (STATIC / "shop.css").read_bytes()
    made = requests.post(f"{url}/api/v1/admin/products", headers=admin, timeout=30,
                     json={"sku": "TEA", "name": "Tea", "price": 1200, "on_hand": 3})  # fmt: skip
    assert made.status_code == 201, made.text
    order = requests.post(f"{url}/api/v1/checkout", timeout=30, json={
        "lines": [{"sku": "TEA", "qty": 1}], "gateway": "sandbox",
        "customer": {"email": "buyer@example.com"},
    }).json()  # fmt: skip
    assert order["status"] == "pending_payment", order
    assert gateway.settle(order["payment"]["redirect_url"], "pay") == 303
    status = requests.get(f"{url}/api/v1/admin/orders/{order['number']}", headers=admin, timeout=30)
    assert status.json()["status"] == "pending_payment"  # the notification was dropped

    line = crontab_line()
    assert line.split(None, 5)[:5] == ["*"] * 5  # every minute
    cron = run_cron(line, app, venv_bin, tmp_path)
    # Cron mails whatever reaches standard error: a pass that went well says nothing.
    assert cron.returncode == 0 and cron.stderr == "", cron.stderr

    status = requests.get(f"{url}/api/v1/admin/orders/{order['number']}", headers=admin, timeout=30)
    assert status.json()["status"] == "paid"
    levels = requests.get(f"{url}/api/v1/admin/stock", headers=admin, timeout=30).json()["items"]
    assert [(i["sku"], i["available"], i["sold_unshipped"]) for i in levels] == [("TEA", 2, 1)]
    # The database is the shop's alone.
    database = tmp_path / "ecshop-data" / "shop.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700

    readme = (KIT / "README.md").read_text().splitlines()
    [backup] = [ln for ln in readme if ln.startswith("30 4 ") and " backup " in ln]
    cron = run_cron(backup, app, venv_bin, tmp_path)
    assert cron.returncode == 0 and cron.stderr == "", cron.stderr
    [saved] = (tmp_path / "ecshop-data" / "backups").glob("ecshop-*.jsonl.gz")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def import_passenger_file(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """Load passenger_wsgi.py as a host would, with the example's settings (home folder
    filled in) and ``settings`` replacing their empty values."""
    app = tmp_path / "ecshop"
    app.mkdir()
    shutil.copy(KIT / "passenger_wsgi.py", app)
    made = {f'{key} = ""': f'{key} = "{value}"' for key, value in settings.items()}
    toml = render((KIT / "ecshop.toml").read_text(), {"/home/USER": str(tmp_path), **made})
    (app / "ecshop.toml").write_text(toml)
    return subprocess.run([sys.executable, "-c", "import passenger_wsgi"], cwd=app,
                          env=host_env(), capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_passenger_file_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    """The example as shipped, its secrets still empty: the app does not load."""
    result = import_passenger_file(tmp_path)
    assert result.returncode != 0 and "ECSHOP_SECRET_KEY is not set" in result.stderr


def test_the_passenger_file_asks_for_the_migration_it_does_not_run(tmp_path: Path) -> None:
    """A secret made but no `ecshop migrate` yet: the app refuses to load, naming it."""
    result = import_passenger_file(tmp_path, secret_key=secrets.token_hex(32))
    assert result.returncode != 0 and "run `ecshop migrate`" in result.stderr
