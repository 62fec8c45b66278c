"""The metrics folder's upkeep (ecshop._metricsdir) and the scrape (ecshop.metrics);
tests/e2e/test_metrics.py runs them under gunicorn."""

from __future__ import annotations

from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from ecshop import _metricsdir
from ecshop._gunicorn import reexec_args


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
