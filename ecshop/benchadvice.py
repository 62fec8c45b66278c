"""What ``ecshop bench`` recommends, derived from the figures it measured.

Plain functions over the run's figures (no clock, no server), so each rule is tested
with figures made up for the purpose:

- **capacity**: of the concurrency sweep's steps, those whose p99 is at most
  :data:`P99_LIMIT_MS` and whose errors are at most :data:`ERROR_SHARE` of their
  requests qualify; the one with the most checkouts per second gives the orders per
  minute the server can take (and at how many clients).
- **the noise of the run**: every setting and ceiling is measured in an early and a late
  slot; the largest relative difference between the two slots of one (:func:`spread`), or
  :data:`NOISE` if larger, is how far two figures of this run must be apart to count.
- **workers and threads**: of the settings measured side by side, those that qualify
  the same way; the one with the most checkouts per second, unless it beat the shop's
  current setting by less than the noise: then the current one stays. Settings within
  the noise of the fastest are named as just as good.
- **Redis**: recommended when the Redis stock engine placed more checkouts per second
  than the SQL engine with the same workers and threads, by more than the noise: it is
  one more server to run, so it has to pay for itself here.
- **unix socket**: recommended, per server (Redis, MariaDB), when its round trip over
  the socket was at least :data:`NOISE` shorter than over TCP; a Redis the bench
  started for the comparison counts only when Redis is recommended.

A recommendation that was not measured has the value ``None`` and says why.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

P99_LIMIT_MS = 300.0
"""The slowest p99 a shop's checkout may have and still count as keeping up."""
ERROR_SHARE = 0.01
"""At most this share of a step's checkouts may fail for it to count."""
NOISE = 0.10
"""Differences smaller than this share are within this kind of machine's noise."""

Figures = Mapping[str, Any]


def qualifies(figures: Figures, limit_ms: float = P99_LIMIT_MS) -> bool:
    """A step or setting that kept up: some checkouts, p99 within the limit, few errors."""
    count, errors = int(figures["count"]), int(figures["errors"])
    return count > 0 and figures["p99_ms"] <= limit_ms and errors <= ERROR_SHARE * (count + errors)


def capacity(steps: Sequence[Figures], limit_ms: float = P99_LIMIT_MS) -> dict[str, Any]:
    """Orders per minute at p99 within ``limit_ms``: the best qualifying sweep step."""
    good = [s for s in steps if qualifies(s, limit_ms)]
    if not good:
        first = min(steps, key=lambda s: s["clients"]) if steps else None
        why = ("no sweep was run" if first is None else
               f"no step kept p99 within {limit_ms:.0f} ms with at most {ERROR_SHARE:.0%} "
               f"errors; with {first['clients']} clients p99 was {first['p99_ms']:.0f} ms "
               f"and {first['errors']} of {first['count'] + first['errors']} failed")  # fmt: skip
        return {"orders_per_minute": 0, "at_least": False, "orders_per_second": 0.0, "clients": None,
                "p50_ms": None, "p99_ms": None, "limit_ms": limit_ms, "why": why}  # fmt: skip
    best = max(good, key=lambda s: s["per_second"])
    slower = [s["clients"] for s in steps if not qualifies(s, limit_ms)]
    why = (f"of {len(steps)} sweep steps, {len(good)} kept p99 within {limit_ms:.0f} ms with "
           f"at most {ERROR_SHARE:.0%} errors; the most checkouts per second among them was "
           f"{best['per_second']:.1f}/s with {best['clients']} clients (p99 "
           f"{best['p99_ms']:.0f} ms), that is {best['per_second'] * 60:.0f} orders a minute")  # fmt: skip
    if slower:
        why += f"; the steps with {', '.join(map(str, slower))} clients did not keep up"
    largest = best["clients"] == max(s["clients"] for s in steps)
    if largest:
        why += ("; that was the sweep's largest step, so the server may take more "
                "(a larger --max-clients would tell)")  # fmt: skip
    return {"orders_per_minute": round(best["per_second"] * 60), "at_least": largest,
            "orders_per_second": best["per_second"], "clients": best["clients"],
            "p50_ms": best["p50_ms"], "p99_ms": best["p99_ms"], "limit_ms": limit_ms,
            "why": why}  # fmt: skip


def apart(a: float, b: float, margin: float) -> bool:
    """True when one of ``a`` and ``b`` is more than ``1 + margin`` times the other."""
    low, high = sorted((a, b))
    return high > low * (1 + margin)


def spread(candidates: Sequence[Figures]) -> float:
    """How much one setting varied between its slots at most: the largest
    ``fastest / slowest - 1`` of a setting's slots (0 with fewer than two slots each)."""
    worst = 0.0
    for c in candidates:
        slots = c.get("slots") or []
        if len(slots) >= 2 and min(slots) > 0:
            worst = max(worst, max(slots) / min(slots) - 1)
        elif len(slots) >= 2 and max(slots) > 0:
            return float("inf")  # a slot with nothing placed at all
    return worst


def noise(candidates: Sequence[Figures]) -> float:
    """How far apart two figures of this run must be to count: the measured spread, at
    least :data:`NOISE`."""
    return max(NOISE, spread(candidates))


def setting_name(workers: int, threads: int) -> str:
    """``2 workers x 8 threads``."""
    return (f"{workers} worker{'s' if workers != 1 else ''} x "
            f"{threads} thread{'s' if threads != 1 else ''}")  # fmt: skip


def _label(c: Figures) -> str:
    return setting_name(int(c["workers"]), int(c["threads"]))


def workers_and_threads(
    candidates: Sequence[Figures], limit_ms: float = P99_LIMIT_MS, why_not: str = "",
    current: str = "", margin: float = NOISE,
) -> dict[str, Any]:  # fmt: skip
    """The fastest setting that keeps p99 within the limit (the fastest of all if none
    does), unless the ``current`` one (by name) keeps up and is within ``margin`` of it;
    and the settings within ``margin`` of it."""
    if not candidates:
        why = f"not measured: {why_not or 'no settings were compared'}"
        return {"workers": {"value": None, "why": why}, "threads": {"value": None, "why": why}}
    good = [c for c in candidates if qualifies(c, limit_ms)]
    pool = good or list(candidates)
    fastest = max(pool, key=lambda c: c["per_second"])
    mine = next((c for c in pool if c["name"] == current), None)
    stay = mine is not None and not apart(fastest["per_second"], mine["per_second"], margin)
    best = mine if stay and mine is not None else fastest
    near = [c for c in pool if c is not best and c is not fastest
            and not apart(c["per_second"], fastest["per_second"], margin)]  # fmt: skip
    table = "; ".join(f"{_label(c)} {c['per_second']:.1f}/s p99 {c['p99_ms']:.0f} ms"
                      for c in candidates)  # fmt: skip
    why = (f"{_label(fastest)} placed the most checkouts per second ({fastest['per_second']:.1f}/s, "
           f"p99 {fastest['p99_ms']:.0f} ms) of the settings measured side by side ({table})")  # fmt: skip
    if not good:
        why += f"; none kept p99 within {limit_ms:.0f} ms, so the fastest is named"
    if stay and best is not fastest:
        why += (f"; it was not {margin:.0%} (this run's noise) faster than the current "
                f"{_label(best)}, so that stays")  # fmt: skip
    if near:
        why += (f"; no more than {margin:.0%} slower than the fastest, so as good as far as "
                f"this run can tell: {', '.join(_label(c) for c in near)}")  # fmt: skip
    return {"workers": {"value": best["workers"], "why": why},
            "threads": {"value": best["threads"], "why": why},
            "setting": best["name"]}  # fmt: skip


def redis(
    sql: Figures | None, with_redis: Figures | None, why_not: str = "", margin: float = NOISE
) -> dict[str, Any]:
    """Redis for the stock engine, when it beat the SQL engine by more than ``margin``."""
    if sql is None or with_redis is None:
        return {"value": None, "why": f"not measured: {why_not or 'only one stock engine ran'}"}
    a, b = sql["per_second"], with_redis["per_second"]
    figures = (f"the Redis stock engine placed {b:.1f} checkouts/s (p99 {with_redis['p99_ms']:.0f} ms), "
               f"the SQL engine {a:.1f}/s (p99 {sql['p99_ms']:.0f} ms) with the same workers and "
               f"threads side by side")  # fmt: skip
    if b > a and apart(a, b, margin):
        return {
            "value": True,
            "why": f"{figures}: Redis is {b / a if a else 0:.2f}x, worth a server",
        }
    return {"value": False, "why": f"{figures}: not {margin:.0%} (this run's noise) more with Redis, so one "
                                   "server fewer to run is the better deal here"}  # fmt: skip


def unix_socket(
    transports: Mapping[str, Figures], why_not: str = "", unused: Collection[str] = ()
) -> dict[str, Any]:
    """Per server, a unix socket when its round trip was measurably shorter than TCP's;
    a server in ``unused`` (one the shop would not run) gets no say."""
    verdicts: dict[str, Any] = {}
    for server, t in transports.items():
        if t.get("skipped"):
            verdicts[server] = {"value": None, "why": f"not measured: {t['skipped']}"}
            continue
        tcp, unix = t["tcp_us"], t["unix_us"]
        figures = f"a round trip to {server} took {unix:.0f} µs over its unix socket, {tcp:.0f} µs over TCP"
        if server in unused:
            verdicts[server] = {
                "value": None,
                "why": f"{figures}, but the shop would not use {server}",
            }
        elif unix <= tcp * (1 - NOISE):
            verdicts[server] = {"value": True, "why": f"{figures}: {1 - unix / tcp:.0%} less"}
        else:
            verdicts[server] = {"value": False, "why": f"{figures}: less than {NOISE:.0%} apart"}
    values = [v["value"] for v in verdicts.values() if v["value"] is not None]
    overall = any(values) if values else None
    why = "; ".join(f"{s}: {v['why']}" for s, v in verdicts.items()) or (
        f"not measured: {why_not or 'this setup talks to no server (SQLite, no Redis)'}"
    )
    return {"value": overall, "why": why, "servers": verdicts}


def recommend(figures: Figures) -> dict[str, Any]:
    """Every recommendation of a run, from its figures (``BenchReport.as_dict()``)."""
    settings = figures.get("settings") or {}
    skipped = settings.get("skipped", "")
    every = settings.get("candidates", [])
    ceilings = list(((figures.get("ceilings") or {}).get("routes") or {}).values())
    margin = noise([*every, *ceilings])
    candidates = [c for c in every if c.get("grid")]
    engines = settings.get("engines") or {}
    picked = workers_and_threads(candidates, why_not=skipped, current=settings.get("current", ""),
                                 margin=margin)  # fmt: skip
    verdict = redis(engines.get("sql"), engines.get("redis"),
                    settings.get("engines_skipped") or skipped, margin)  # fmt: skip
    transports = figures.get("transports") or {}
    # a Redis of the bench's own, measured for the comparison, counts only if recommended
    unused = [s for s, t in transports.items() if t.get("used") is False and not verdict["value"]]
    return {
        "p99_limit_ms": P99_LIMIT_MS,
        "noise": {"value": margin, "spread": spread([*every, *ceilings]), "floor": NOISE},
        "capacity": capacity((figures.get("sweep") or {}).get("steps", [])),
        "workers": picked["workers"],
        "threads": picked["threads"],
        "redis": verdict,
        "unix_socket": unix_socket(transports, why_not=skipped, unused=unused),
    }
