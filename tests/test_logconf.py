"""The shop's logging: one dictConfig, INFO by default, request ids, text or JSON lines,
and passwords masked on every handler."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from falcon import testing

from ecshop import logconf
from ecshop.app import create_app
from ecshop.config import child_environ, load_config
from ecshop.errors import ConfigError, ShopError
from ecshop.logconf import Repeats, bind_request_id, configure_logging, logging_config, unbind
from ecshop.redact import MaskingFilter
from ecshop.store import open_store

NAMES = ("", "ecshop", "gunicorn.error", "gunicorn.access")


@pytest.fixture
def restored():
    """Put the loggers this test reconfigures back as they were."""
    saved = {}
    every = logconf.REPEAT_EVERY
    for name in NAMES:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate, list(logger.filters))
    yield
    for name, (handlers, level, propagate, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.filters[:] = filters
    logconf.REPEAT_EVERY = every


def test_every_handler_masks_and_carries_the_request_id():
    config = logging_config("INFO", "text")
    for handler in config["handlers"].values():
        assert {"mask", "request_id"} <= set(handler["filters"])
    for name, logger in {**config["loggers"], "": config["root"]}.items():
        assert logger["handlers"], name
    assert config["loggers"]["ecshop"]["level"] == "INFO"
    assert config["disable_existing_loggers"] is False


def test_a_plugin_line_has_time_level_logger_pid_and_request_id(restored, capsys):
    configure_logging("INFO", "text")
    plugin = logging.getLogger("ecshop.plugins.myplugin")
    token = bind_request_id("req-42")
    try:
        plugin.info("synced %s", "mysql://shop:hunter2@db/shop")
    finally:
        unbind(token)
    plugin.debug("not shown at INFO")
    plugin.warning("outside a request")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert "[INFO] ecshop.plugins.myplugin [req-42] synced mysql://shop:***@db/shop" in lines[0]
    assert lines[0][:4].isdigit() and "Z [" in lines[0]
    assert "[WARNING] ecshop.plugins.myplugin [-] outside a request" in lines[1]
    handler = logging.getLogger("ecshop").handlers[0]
    assert any(isinstance(f, MaskingFilter) for f in handler.filters)


def test_json_lines_and_a_configured_level(restored, capsys):
    configure_logging("WARNING", "json")
    log = logging.getLogger("ecshop.plugins.myplugin")
    token = bind_request_id("req-7")
    try:
        log.info("hidden at WARNING")
        try:
            raise RuntimeError("GET /return?token=abc123 leaked")
        except RuntimeError:
            log.exception("sync failed")
    finally:
        unbind(token)
    [line] = capsys.readouterr().err.splitlines()
    item = json.loads(line)
    assert (item["level"], item["logger"], item["request_id"]) == (
        "ERROR", "ecshop.plugins.myplugin", "req-7")  # fmt: skip
    assert item["message"] == "sync failed" and isinstance(item["pid"], int)
    assert "RuntimeError" in item["exc"] and "abc123" not in item["exc"]
    assert item["time"].endswith("Z")


@pytest.mark.parametrize(("key", "value"), [("ECSHOP_LOG_LEVEL", "LOUD"),
                                            ("ECSHOP_LOG_FORMAT", "xml")])  # fmt: skip
def test_bad_log_settings_stop_start_up_naming_them(key, value):
    with pytest.raises(ConfigError, match=key):
        load_config({key: value})
    assert load_config({"ECSHOP_LOG_LEVEL": "debug"}).log_level == "DEBUG"


LOUD_PLUGIN = """
import logging

NAME = "loud"


def register(host):
    logging.getLogger("ecshop.plugins.loud").info("loud registered")
"""


def test_the_cli_logs_plugins_at_info_in_the_configured_format(tmp_path):
    (tmp_path / "loud.py").write_text(LOUD_PLUGIN)
    env = {"ECSHOP_PLUGINS_DIR": str(tmp_path), "ECSHOP_LOG_FORMAT": "json"}
    run = subprocess.run([sys.executable, "-m", "ecshop.cli", "plugins"], cwd=tmp_path,
                         env=child_environ(env), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    items = [json.loads(line) for line in run.stderr.splitlines()]
    assert {"level": "INFO", "logger": "ecshop.plugins.loud", "message": "loud registered",
            "request_id": "-"}.items() <= items[0].items()  # fmt: skip
    quiet = subprocess.run([sys.executable, "-m", "ecshop.cli", "plugins"], cwd=tmp_path,
                           env=child_environ({**env, "ECSHOP_LOG_LEVEL": "WARNING"}),
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "loud registered" not in quiet.stderr


class Later:
    """Runs the summaries when the test says so, instead of on a timer."""

    def __init__(self):
        self.due = []

    def __call__(self, delay, call):
        self.due.append((delay, call))

    def run(self):
        due, self.due[:] = list(self.due), []
        for _, call in due:
            call()


def test_a_repeating_failure_is_one_line_then_one_count_per_period(caplog):
    later = Later()
    repeats = Repeats(logging.getLogger("ecshop.test"), every=30, later=later)
    with caplog.at_level(logging.INFO, logger="ecshop"):
        for n in range(1000):
            try:
                raise ConnectionError(f"refused {n}")
            except ConnectionError as exc:
                repeats.failed("redis", "request r%d: stock engine down: %s", n, exc, exc_info=exc)
        repeats.failed("database", "database busy")  # another kind is its own outage
        assert [r.getMessage() for r in caplog.records] == [
            "request r0: stock engine down: refused 0", "database busy"]  # fmt: skip
        assert caplog.records[0].exc_info[1].args == ("refused 0",)
        assert [delay for delay, _ in later.due] == [30, 30]
        later.run()  # a period later: the count, and the last one quoted
        assert caplog.records[2].getMessage() == (
            "999 more like this in the last 30s; the last: "
            "request r999: stock engine down: refused 999"
        )
        assert len(caplog.records) == 3 and len(later.due) == 1  # database: quiet, over
        later.run()  # a quiet period: the outage is over
        assert len(caplog.records) == 3 and later.due == []
        repeats.failed("redis", "request r%d: stock engine down: %s", 1000, "back again")
    assert caplog.records[-1].getMessage() == "request r1000: stock engine down: back again"


def test_repeats_summarize_on_the_configured_period(restored):
    configure_logging("INFO", "text", repeat_every=7)
    later = Later()
    Repeats(logging.getLogger("ecshop.test"), later=later).failed("x", "down")
    assert [delay for delay, _ in later.due] == [7]


@pytest.fixture
def make_client(sqlite_url, tmp_path):
    open_store(sqlite_url).migrate()
    apps = []

    def make(**env: str) -> testing.TestClient:
        config = load_config({"ECSHOP_DATABASE_URL": sqlite_url, "ECSHOP_ADMIN_TOKEN": "a" * 32,
                              "ECSHOP_PLUGINS_DIR": str(tmp_path / "no-plugins"), **env})  # fmt: skip
        apps.append(create_app(config))
        return testing.TestClient(apps[-1])

    yield make
    for app in apps:
        app.shop.close()


def test_one_access_line_per_request_under_its_id(make_client, restored, capsys):
    client = make_client()
    configure_logging("INFO", "json")
    given = client.simulate_get("/api/v1/orders/X-1", params={"token": "s3cret-token"},
                                headers={"X-Request-Id": "edge-7.a", "User-Agent": "probe/1"})  # fmt: skip
    made = client.simulate_get("/no/such/page", headers={"X-Request-Id": "bad id!"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    access = [item for item in lines if item["logger"] == "ecshop.access"]
    assert [item["request_id"] for item in access] == ["edge-7.a", made.headers["X-Request-Id"]]
    assert given.headers["X-Request-Id"] == "edge-7.a" and made.headers["X-Request-Id"] != "bad id!"
    first = access[0]
    assert first["http"] == {"method": "GET", "path": "/api/v1/orders/X-1?token=***",
                             "route": "/api/v1/orders/{number}", "status": given.status_code,
                             "duration_ms": first["http"]["duration_ms"], "client": "127.0.0.1",
                             "user_agent": "probe/1"}  # fmt: skip
    assert "s3cret-token" not in json.dumps(lines)
    assert first["message"].startswith('127.0.0.1 "GET /api/v1/orders/X-1?token=***" 404 ')
    assert access[1]["http"]["route"] is None and access[1]["http"]["status"] == 404


def test_the_access_log_can_be_turned_off(make_client, restored, capsys):
    client = make_client(ECSHOP_ACCESS_LOG="0")
    configure_logging("INFO", "text")
    client.simulate_get("/api/v1/products")
    assert "ecshop.access" not in capsys.readouterr().err


def test_a_refused_admin_token_is_a_warning_without_the_token(make_client, caplog):
    client = make_client()
    with caplog.at_level(logging.INFO, logger="ecshop"):
        for headers in ({}, {"Authorization": "Bearer guessed-admin-token"}):
            resp = client.simulate_get("/api/v1/admin/orders", headers=headers,
                                       remote_addr="192.0.2.9")  # fmt: skip
            assert resp.status_code == 401
    refused = [r for r in caplog.records if r.name == "ecshop.http"]
    assert [(r.levelname, r.getMessage()) for r in refused] == [
        ("WARNING", "refused GET /api/v1/admin/orders to 192.0.2.9: no token"),
        ("WARNING", "refused GET /api/v1/admin/orders to 192.0.2.9: a wrong token")]  # fmt: skip
    assert "guessed" not in caplog.text


def test_a_part_down_logs_its_first_503_whole_then_counts(make_client, caplog, monkeypatch):
    from ecshop.errors import StockUnavailable

    client = make_client()
    later = Later()
    handler = client.app._error_handlers[ShopError].__self__  # the app's ErrorAnswers
    monkeypatch.setattr(handler.repeats, "later", later)

    def down(*args, **kwargs):
        try:
            raise ConnectionError("Connection refused")
        except ConnectionError as exc:
            raise StockUnavailable("the stock engine failed: Connection refused") from exc

    created = client.simulate_post(
        "/api/v1/admin/products",
        headers={"Authorization": "Bearer " + "a" * 32},
        json={"sku": "TEA", "name": "Tea", "price": 100, "on_hand": 1},
    )
    assert created.status_code == 201
    monkeypatch.setattr(client.app.shop.stock, "levels", down)
    with caplog.at_level(logging.INFO, logger="ecshop"):
        ids = [client.simulate_get("/api/v1/products").headers["X-Request-Id"] for _ in range(50)]
        later.run()
    logged = [r for r in caplog.records if r.name == "ecshop.http"]
    assert len(logged) == 2
    assert logged[0].getMessage().startswith(f"request {ids[0]}: GET /api/v1/products: ")
    assert isinstance(logged[0].exc_info[1].__cause__, ConnectionError)  # the traceback
    assert logged[1].getMessage().startswith(f"49 more like this in the last 60s; the last: "
                                             f"request {ids[-1]}: ")  # fmt: skip
