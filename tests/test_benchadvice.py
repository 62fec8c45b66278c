"""The recommendation of ``ecshop bench`` follows the figures it measured
(ecshop.benchadvice), on figures made up for each rule."""

from __future__ import annotations

import pytest

from ecshop import benchadvice
from ecshop.benchadvice import capacity, recommend, redis, unix_socket, workers_and_threads


def step(clients, per_second, p99_ms, errors=0, p50_ms=1.0):
    return {"clients": clients, "count": int(per_second * 3), "per_second": per_second,
            "p50_ms": p50_ms, "p99_ms": p99_ms, "errors": errors}  # fmt: skip


def setting(workers, threads, per_second, p99_ms, errors=0, engine="sql", grid=True, slots=None):
    return {**step(0, per_second, p99_ms, errors), "workers": workers, "threads": threads,
            "engine": engine, "grid": grid, "slots": slots or [per_second, per_second],
            "name": benchadvice.setting_name(workers, threads)}  # fmt: skip


def test_capacity_is_the_fastest_step_that_keeps_p99_within_300_ms():
    steps = [step(1, 100, 20), step(2, 180, 40), step(4, 300, 120), step(8, 340, 290),
             step(16, 360, 310), step(32, 350, 900)]  # fmt: skip
    cap = capacity(steps)
    # 16 clients were faster, but past the limit: 8 clients at 340/s is what it takes
    assert (cap["clients"], cap["orders_per_minute"], cap["p99_ms"]) == (8, 340 * 60, 290)
    assert "16, 32 clients did not keep up" in cap["why"] and not cap["at_least"]


def test_a_sweep_whose_largest_step_keeps_up_says_the_server_may_take_more():
    cap = capacity([step(1, 100, 20), step(2, 180, 40), step(4, 190, 80)])
    assert cap["clients"] == 4 and cap["at_least"]
    assert "the server may take more" in cap["why"]


def test_a_faster_step_past_the_limit_never_counts_and_a_slower_later_one_can():
    # throughput fell after its peak: the best qualifying step is the peak, not the last
    steps = [step(1, 100, 20), step(2, 250, 60), step(4, 240, 200)]
    assert capacity(steps)["clients"] == 2
    # the same steps, the limit moved: the derivation follows the limit, not a constant
    assert capacity(steps, limit_ms=50)["clients"] == 1


def test_a_step_with_errors_does_not_keep_up():
    steps = [step(1, 100, 20), step(2, 200, 30, errors=50)]  # 50 of 650 failed: 7.7 %
    assert capacity(steps)["clients"] == 1
    few = [step(1, 100, 20), step(2, 200, 30, errors=3)]  # 3 of 603: under 1 %
    assert capacity(few)["clients"] == 2


def test_no_step_that_keeps_up_means_no_capacity_and_says_why():
    cap = capacity([step(1, 10, 450), step(2, 12, 800)])
    assert cap["orders_per_minute"] == 0 and cap["clients"] is None
    assert "with 1 clients p99 was 450 ms" in cap["why"]
    assert capacity([])["why"] == "no sweep was run"


def test_workers_and_threads_are_the_fastest_setting_that_keeps_up():
    candidates = [setting(2, 1, 150, 60), setting(2, 8, 260, 90), setting(4, 1, 200, 70),
                  setting(4, 8, 300, 450)]  # fmt: skip
    picked = workers_and_threads(candidates)
    # 4 x 8 was fastest but its p99 was over the limit
    assert (picked["workers"]["value"], picked["threads"]["value"]) == (2, 8)
    assert picked["setting"] == "2 workers x 8 threads"
    assert "2 workers x 8 threads placed the most checkouts per second" in picked["workers"]["why"]


def test_settings_within_the_noise_are_named_and_none_keeping_up_names_the_fastest():
    near = workers_and_threads(
        [setting(2, 8, 250, 50), setting(4, 8, 240, 50), setting(2, 1, 100, 50)]
    )
    assert near["workers"]["value"] == 2
    assert "as good as far as this run can tell: 4 workers x 8 threads" in near["workers"]["why"]
    slow = workers_and_threads([setting(1, 1, 50, 900), setting(2, 1, 80, 700)])
    assert slow["workers"]["value"] == 2 and "none kept p99 within 300 ms" in slow["workers"]["why"]
    none = workers_and_threads([], why_not="the settings are the shop's own")
    assert none["workers"] == {
        "value": None,
        "why": "not measured: the settings are the shop's own",
    }


def test_the_current_setting_stays_unless_another_beats_it_by_more_than_the_noise():
    candidates = [setting(2, 8, 250, 50), setting(4, 1, 270, 50), setting(2, 1, 100, 50)]
    stays = workers_and_threads(candidates, current="2 workers x 8 threads", margin=0.10)
    assert (stays["workers"]["value"], stays["threads"]["value"]) == (2, 8)
    assert (
        "not 10% (this run's noise) faster than the current 2 workers x 8 threads"
        in (stays["workers"]["why"])
    )
    moves = workers_and_threads(candidates, current="2 workers x 1 thread", margin=0.10)
    assert (moves["workers"]["value"], moves["threads"]["value"]) == (4, 1)
    # a current setting past the limit does not stay
    late = [setting(2, 8, 260, 400), setting(4, 1, 250, 50)]
    assert workers_and_threads(late, current="2 workers x 8 threads")["workers"]["value"] == 4


def test_the_noise_is_the_most_one_setting_varied_between_its_slots():
    steady = [setting(2, 8, 200, 50, slots=[195, 205]), setting(4, 8, 300, 50, slots=[295, 305])]
    assert benchadvice.spread(steady) == pytest.approx(205 / 195 - 1)
    assert benchadvice.noise(steady) == benchadvice.NOISE  # at least the floor
    shaky = [*steady, setting(2, 1, 100, 50, slots=[60, 150])]
    assert benchadvice.noise(shaky) == pytest.approx(1.5)
    assert benchadvice.noise([setting(2, 1, 50, 50, slots=[0, 100])]) == float("inf")
    # 20 % more with Redis counts on a steady run, not on a shaky one
    sql, fast = setting(2, 8, 200, 50), setting(2, 8, 240, 40, engine="redis", grid=False)
    calm = {"settings": {"candidates": [sql, fast], "engines": {"sql": sql, "redis": fast}}}
    assert recommend(calm)["redis"]["value"] is True
    rough = {"settings": {**calm["settings"],
                          "candidates": [sql, fast, setting(4, 8, 100, 50, slots=[60, 150])]}}  # fmt: skip
    assert recommend(rough)["redis"]["value"] is False
    assert recommend(rough)["noise"] == {"value": pytest.approx(1.5), "spread": pytest.approx(1.5),
                                         "floor": benchadvice.NOISE}  # fmt: skip


def test_redis_only_when_it_measurably_beats_the_sql_engine():
    sql = setting(2, 8, 200, 50)
    assert redis(sql, setting(2, 8, 260, 40, engine="redis"))["value"] is True
    assert redis(sql, setting(2, 8, 215, 40, engine="redis"))["value"] is False  # 7.5 %: noise
    assert redis(sql, setting(2, 8, 150, 40, engine="redis"))["value"] is False
    skipped = redis(None, None, "no Redis to compare with")
    assert skipped == {"value": None, "why": "not measured: no Redis to compare with"}


def test_unix_socket_per_server_when_its_round_trip_is_measurably_shorter():
    verdict = unix_socket({"redis": {"tcp_us": 100.0, "unix_us": 70.0},
                           "mariadb": {"tcp_us": 100.0, "unix_us": 95.0}})  # fmt: skip
    assert verdict["servers"]["redis"]["value"] is True
    assert verdict["servers"]["mariadb"]["value"] is False
    assert verdict["value"] is True  # one server gains
    assert unix_socket({"mariadb": {"tcp_us": 100.0, "unix_us": 99.0}})["value"] is False
    skipped = unix_socket({"redis": {"skipped": "Redis listens without a unix socket"}})
    assert skipped["value"] is None and "without a unix socket" in skipped["why"]
    assert unix_socket({})["value"] is None


def test_recommend_reads_every_part_from_the_run_figures():
    sql, fast = setting(2, 8, 200, 50), setting(2, 8, 300, 40, engine="redis", grid=False)
    figures = {
        "sweep": {"steps": [step(1, 100, 10), step(2, 190, 20), step(4, 210, 350)]},
        "settings": {"candidates": [setting(2, 1, 120, 30), sql, fast],
                     "engines": {"sql": sql, "redis": fast}},
        "transports": {"redis": {"tcp_us": 80.0, "unix_us": 60.0}},
    }  # fmt: skip
    r = recommend(figures)
    assert r["capacity"]["clients"] == 2 and r["capacity"]["orders_per_minute"] == 190 * 60
    # the Redis engine's setting is not a workers x threads candidate
    assert (r["workers"]["value"], r["threads"]["value"]) == (2, 8)
    assert (r["redis"]["value"], r["unix_socket"]["value"]) == (True, True)
    assert r["p99_limit_ms"] == 300
    # a Redis of the bench's own has no say on sockets unless Redis is recommended
    own = {"redis": {"tcp_us": 80.0, "unix_us": 60.0, "used": False}}
    assert recommend({**figures, "transports": own})["unix_socket"]["value"] is True
    slower = {**figures["settings"], "engines": {"sql": sql, "redis": setting(2, 8, 190, 40)}}
    mine = recommend({**figures, "settings": slower, "transports": own})
    assert mine["redis"]["value"] is False and mine["unix_socket"]["value"] is None
    assert "the shop would not use redis" in mine["unix_socket"]["why"]
    remote = recommend({"settings": {"skipped": "a running shop's settings are its own"}})
    assert remote["workers"]["value"] is None and remote["redis"]["value"] is None
    assert "a running shop's settings are its own" in remote["unix_socket"]["why"]
