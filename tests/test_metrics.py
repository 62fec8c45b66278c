"""The metrics folder's upkeep (ecshop._metricsdir), the scrape (ecshop.metrics) and
who may scrape; tests/e2e/test_metrics.py runs them under gunicorn."""

from __future__ import annotations

import logging

import pytest
from falcon import testing
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from ecshop import _metricsdir
from ecshop._gunicorn import reexec_args
from ecshop.app import create_app
from ecshop.config import check_serving, load_config
from ecshop.errors import ConfigError
from ecshop.store import open_store


def _write(path, entries) -> None:
    values = MmapedDict(str(path))
    for metric, name, labels, value in entries:
        values.write_value(mmap_key(metric, name, list(labels), list(labels.values()), "help"),
                           value, 0.0)  # fmt: skip
    values.close()


def _totals(folder) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in MultiProcessCollector(None, path=str(folder)).collect()
        for s in family.samples
    }


def test_a_dead_workers_counts_move_to_the_archive_and_its_gauges_go(tmp_path):
    route = {"route": "/cart"}
    _write(tmp_path / "counter_11.db", [("c", "c_total", route, 5.0)])
    _write(tmp_path / "counter_12.db", [("c", "c_total", route, 7.0)])
    _write(tmp_path / "counter_archive.db", [("c", "c_total", route, 100.0)])
    _write(tmp_path / "histogram_11.db", [("h", "h_bucket", {**route, "le": "0.1"}, 3.0),
                                          ("h", "h_sum", route, 0.2)])  # fmt: skip
    _write(tmp_path / "gauge_liveall_11.db", [("g", "g", {}, 42.0)])
    _write(tmp_path / "gauge_liveall_12.db", [("g", "g", {}, 43.0)])
    before = _totals(tmp_path)
    assert before[("c_total", (("route", "/cart"),))] == 112

    _metricsdir.retire(str(tmp_path), 11)

    after = _totals(tmp_path)
    assert {k: v for k, v in before.items() if k[0] != "g"} == {
        k: v for k, v in after.items() if k[0] != "g"
    }
    assert [k for k in after if k[0] == "g"] == [("g", (("pid", "12"),))]
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "counter_12.db", "counter_archive.db", "gauge_liveall_12.db", "histogram_archive.db"]  # fmt: skip
    _metricsdir.retire(str(tmp_path), 11)  # again: nothing left to do
    assert _totals(tmp_path) == after


def test_a_fresh_folder_is_emptied_and_a_shared_one_kept(tmp_path):
    _write(tmp_path / "counter_11.db", [("c", "c_total", {}, 5.0)])
    _metricsdir.prepare(str(tmp_path), fresh=False)
    assert (tmp_path / "counter_11.db").exists()
    _metricsdir.prepare(str(tmp_path), fresh=True)
    assert not list(tmp_path.glob("*.db"))


def test_usr2_restarts_gunicorn_as_a_module():
    main = "/venv/lib/python3.11/site-packages/gunicorn/__main__.py"
    assert reexec_args(["/venv/bin/python", main, "-c", "conf.py", "app:make()"]) == [
        "/venv/bin/python", "-m", "gunicorn", "-c", "conf.py", "app:make()"]  # fmt: skip
    assert reexec_args(["/venv/bin/python", "/venv/bin/gunicorn", "app"]) == [
        "/venv/bin/python", "/venv/bin/gunicorn", "app"]  # fmt: skip


TOKEN = "m" * 32


@pytest.fixture
def make_client(sqlite_url, tmp_path):
    open_store(sqlite_url).migrate()
    apps = []

    def make(**env: str) -> testing.TestClient:
        config = load_config({"ECSHOP_DATABASE_URL": sqlite_url,
                              "ECSHOP_PLUGINS_DIR": str(tmp_path / "no-plugins"), **env})  # fmt: skip
        apps.append(create_app(config))
        return testing.TestClient(apps[-1])

    yield make
    for app in apps:
        app.shop.close()


def scrape(client, address: str, **headers: str):
    return client.simulate_get("/metrics", remote_addr=address, headers=headers)


def refused(resp, status: int) -> bool:
    return resp.status_code == status and "ecshop_" not in resp.text and resp.json["error"]


def test_metrics_answer_the_local_host_only_by_default(make_client, caplog):
    client = make_client()
    for address in ("127.0.0.1", "::1"):
        resp = scrape(client, address)
        assert resp.status_code == 200 and "# TYPE ecshop_http_responses_total counter" in resp.text
    with caplog.at_level(logging.WARNING, logger="ecshop.http"):
        assert refused(scrape(client, "192.0.2.7"), 403)
        assert refused(scrape(client, "192.0.2.7", Authorization=f"Bearer {TOKEN}"), 403)
    assert [
        r.levelname for r in caplog.records if "refused /metrics to 192.0.2.7" in r.message
    ] == ["WARNING"] * 2
    # Behind the front proxy (a trusted one), the client's address counts, not the proxy's.
    assert refused(scrape(client, "127.0.0.1", **{"X-Forwarded-For": "192.0.2.7"}), 403)


def test_metrics_take_the_token_from_anywhere_and_allowed_networks(make_client):
    client = make_client(ECSHOP_METRICS_TOKEN=TOKEN, ECSHOP_METRICS_ALLOW="10.0.0.0/8")
    assert scrape(client, "192.0.2.7", Authorization=f"Bearer {TOKEN}").status_code == 200
    assert scrape(client, "10.20.30.40").status_code == 200
    for headers in ({}, {"Authorization": f"Bearer {TOKEN[:-1]}x"}, {"Authorization": TOKEN}):
        resp = scrape(client, "192.0.2.7", **headers)
        assert refused(resp, 401) and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert refused(scrape(client, "127.0.0.1"), 401)  # no longer allowed


def test_a_short_metrics_token_stops_the_server():
    config = load_config({"ECSHOP_SECRET_KEY": "k" * 32, "ECSHOP_METRICS_TOKEN": "short"})
    with pytest.raises(ConfigError, match="ECSHOP_METRICS_TOKEN is 5 characters long"):
        check_serving(config)
    assert "short" not in repr(config)
