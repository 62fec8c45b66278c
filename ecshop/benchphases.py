"""The measuring phases of ``ecshop bench``, against any shop's address: the throwaway
shop of this machine (:mod:`ecshop.benchrun`) or a running one (:mod:`ecshop.benchremote`).

Each phase hands jobs to the client processes (:mod:`ecshop._benchclient`) through
:class:`Pool`, which also prints the heartbeat, and turns what they saw into figures.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ecshop import _benchclient as client
from ecshop.sidebyside import alternating

HEARTBEAT = 3.0
"""Seconds between two progress lines within a phase."""
PAID_WAIT_LIMIT = 30.0
"""Seconds a client waits for an order to be paid before counting it ``not_paid``."""
WARM_UP = 1.0
"""Seconds of unmeasured checkouts on each target before a side-by-side phase."""
PAGE_PRODUCTS = 48
"""Products the pages phase shows: two catalog pages of 24."""

Results = list[tuple[int, float, str]]


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(values: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    return percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000


def stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def sweep_levels(max_clients: int) -> list[int]:
    """1, 2, 4, … up to ``max_clients`` (which ends the list even when not a power of 2)."""
    levels, level = [], 1
    while level < max_clients:
        levels.append(level)
        level *= 2
    return [*levels, max_clients]


def checkout_figures(results: Results, seconds: float, ok: int = 201) -> dict[str, Any]:
    """Checkouts per second, p50/p99 of the placed ones, and what the others answered."""
    placed = [lat for status, lat, _ in results if status == ok]
    p50, p99 = ms(placed)
    others = Counter(str(status) for status, _, _ in results if status != ok)
    return {"seconds": seconds, "count": len(placed),
            "per_second": len(placed) / seconds if seconds else 0.0, "p50_ms": p50,
            "p99_ms": p99, "errors": sum(others.values()), "answers": dict(others)}  # fmt: skip


class Pool:
    """The client processes, the shared counter of finished requests, the heartbeat."""

    def __init__(self, pool: Any, counter: Any, progress: Callable[[str], None]) -> None:
        self.pool = pool
        self.counter = counter
        self.progress = progress
        self.phase = ""
        self.began = self.beat = time.monotonic()

    def phase_begins(self, phase: str, line: str) -> None:
        """Say what runs now; the heartbeat counts from here."""
        self.progress(line)
        with self.counter.get_lock():
            self.counter.value = 0
        self.phase = phase
        self.began = self.beat = time.monotonic()

    def run(
        self,
        loop: Callable[..., Any],
        jobs: Callable[[float], list[tuple[Any, ...]]],
        seconds: float,
    ) -> tuple[list[Any], float]:
        """Run ``loop`` in every client until ``seconds`` from now; what each returned."""
        begin = time.monotonic()
        pending = self.pool.starmap_async(loop, jobs(begin + seconds))
        while True:
            pending.wait(0.25)
            if pending.ready():
                break
            now = time.monotonic()
            if now - self.beat >= HEARTBEAT:
                self.beat = now
                self.progress(f"  {self.phase}: {now - self.began:.0f}s, "
                              f"{self.counter.value} done")  # fmt: skip
        elapsed = time.monotonic() - begin
        return list(pending.get()), elapsed


@contextmanager
def client_pool(
    clients: int, progress: Callable[[str], None], gateway: str = "sandbox"
) -> Iterator[Pool]:
    """``clients`` spawned client processes, up before any clock starts; their
    checkouts name ``gateway``."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("q", 0)
    with ctx.Pool(clients, initializer=client.init, initargs=(counter, gateway)) as pool:
        pool.map(time.sleep, [0] * clients)
        yield Pool(pool, counter, progress)


@dataclass
class Phases:
    """The phases, with ``clients`` client processes.

    Against a running shop, ``tag`` names this run's idempotency keys and ``token`` is
    the admin token; every order number placed goes to :attr:`placed` and every key
    whose answer did not come to :attr:`lost`, for the clean-up.
    """

    clients: int
    seconds: float
    step_seconds: float
    progress: Callable[[str], None] = stderr
    tag: str = ""
    token: str = ""
    placed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)

    def _tag(self, part: str) -> str:
        return f"{self.tag}-{part}" if self.tag else ""

    def _note(self, what: str) -> None:
        """An order number placed, or the key (it starts with the tag) of a checkout
        whose order is not known."""
        if what:
            (self.lost if what.startswith(f"{self.tag}-") else self.placed).append(what)

    def _keep(self, results: Results) -> Results:
        for _, _, what in results:
            self._note(what)
        return results

    def drive(self, pool: Pool, url: str, sku: str, seconds: float, stop_on_409: bool,
              part: str = "c") -> tuple[Results, float]:  # fmt: skip
        def jobs(deadline: float) -> list[tuple[Any, ...]]:
            return [(url, sku, deadline, stop_on_409, self._tag(f"{part}{i}"), self.token)
                    for i in range(self.clients)]  # fmt: skip

        parts, elapsed = pool.run(client.checkout_loop, jobs, seconds)
        return self._keep([r for part_ in parts for r in part_]), elapsed

    def checkouts(self, pool: Pool, url: str, sku: str) -> dict[str, Any]:
        pool.phase_begins("accepted checkouts", f"bench: accepted checkouts, "
                          f"{self.seconds:g}s with {self.clients} clients")  # fmt: skip
        results, elapsed = self.drive(pool, url, sku, self.seconds, False)
        return checkout_figures(results, elapsed)

    def notifications(
        self, pool: Pool, url: str, orders: list[tuple[str, int, str]], secret: str
    ) -> dict[str, Any]:
        """The gateway's signed notifications for ``orders`` (pending, each holding its
        unit), sent by the clients as fast as the shop answers them: how fast the shop
        verifies, journals and applies them, to set beside the accepted checkouts."""
        pool.phase_begins("notifications", f"bench: notifications for {len(orders)} pending "
                          f"orders, at most {self.seconds:g}s with {self.clients} clients")  # fmt: skip
        shares = [orders[i :: self.clients] for i in range(self.clients)]

        def jobs(deadline: float) -> list[tuple[Any, ...]]:
            return [(url, shares[i], secret, deadline) for i in range(self.clients)]

        parts, elapsed = pool.run(client.notify_loop, jobs, self.seconds)
        results = [r for part in parts for r in part]
        applied = [took for status, took, outcome in results if status == 200 and outcome == "paid"]
        p50, p99 = ms(applied)
        others = Counter(f"{status} {outcome}".strip() for status, _, outcome in results
                         if not (status == 200 and outcome == "paid"))  # fmt: skip
        return {"seconds": elapsed, "orders": len(orders), "sent": len(results),
                "applied": len(applied), "per_second": len(applied) / elapsed if elapsed else 0.0,
                "p50_ms": p50, "p99_ms": p99, "errors": sum(others.values()),
                "answers": dict(others)}  # fmt: skip

    def paid(
        self, pool: Pool, url: str, sku: str, notifications: Callable[[int], int] | None
    ) -> dict[str, Any]:
        """Paid checkouts; ``notifications(paid)`` counts those the shop took (by the
        gateway's log), else every order seen paid counts as one."""
        pool.phase_begins("paid checkouts", f"bench: paid checkouts, "
                          f"{self.seconds:g}s with {self.clients} clients")  # fmt: skip

        def jobs(deadline: float) -> list[tuple[Any, ...]]:
            return [(url, sku, deadline, PAID_WAIT_LIMIT, self._tag(f"p{i}"), self.token)
                    for i in range(self.clients)]  # fmt: skip

        parts, elapsed = pool.run(client.paid_loop, jobs, self.seconds)
        flows = [f for part in parts for f in part]
        for f in flows:
            self._note(f.order)
        paid = [f for f in flows if f.outcome == "paid"]
        outcomes = Counter(f.outcome for f in flows)
        applied = notifications(len(paid)) if notifications else len(paid)
        flow_p50, flow_p99 = ms([f.flow for f in paid])
        wait_p50, wait_p99 = ms([f.wait for f in paid])
        return {
            "seconds": elapsed, "accepted": len(flows) - outcomes["checkout"],
            "paid": len(paid), "per_second": len(paid) / elapsed,
            "notifications": applied, "notifications_per_second": applied / elapsed,
            "flow_p50_ms": flow_p50, "flow_p99_ms": flow_p99,
            "wait_p50_ms": wait_p50, "wait_p99_ms": wait_p99,
            "polls_per_paid": sum(f.polls for f in paid) / len(paid) if paid else 0.0,
            "errors": {kind: outcomes[kind] for kind in ("checkout", "pay", "not_paid")},
        }  # fmt: skip

    def pages(
        self, pool: Pool, url: str, routes: dict[str, tuple[list[str], bool]]
    ) -> dict[str, Any]:
        """Each route (its paths, browser-like or not) in slots of ``seconds / 4``."""
        slot = self.seconds / 4
        pool.phase_begins("pages", f"bench: pages against the JSON catalog, {slot * 6:g}s "
                          f"in slots of {slot:g}s with {self.clients} clients")  # fmt: skip
        seen: dict[str, list[tuple[int, float]]] = {name: [] for name in routes}
        spent = dict.fromkeys(routes, 0.0)
        order = alternating(list(routes))
        for name in order:
            paths, browser = routes[name]

            def jobs(deadline: float) -> list[tuple[Any, ...]]:
                return [(url, paths, browser, deadline, i) for i in range(self.clients)]  # noqa: B023

            parts, elapsed = pool.run(client.page_loop, jobs, slot)
            seen[name] += [r for part in parts for r in part]
            spent[name] += elapsed
        figures = {name: route_figures(seen[name], spent[name]) for name in routes}
        base = figures["json_catalog"]["per_second"]
        for fig in figures.values():
            fig["cost_vs_json"] = base / fig["per_second"] if fig["per_second"] else 0.0
        return {"slot_seconds": slot, "order": order, "routes": figures}

    def side_by_side(
        self, pool: Pool, phase: str, targets: dict[str, tuple[str, str]]
    ) -> dict[str, Any]:
        """Checkouts on each target (its URL and SKU) in slots of ``step_seconds``, in the
        order A B C … C B A, after an unmeasured round of :data:`WARM_UP` seconds each
        (connections opened, scripts loaded, templates read)."""
        order = alternating(list(targets))
        pool.phase_begins(phase, f"bench: {phase} side by side, {len(order)} slots of "
                          f"{self.step_seconds:g}s with {self.clients} clients: "
                          f"{', '.join(targets)}")  # fmt: skip
        for url, sku in targets.values():
            self.drive(pool, url, sku, min(WARM_UP, self.step_seconds), False, f"{phase[0]}w-")
        seen: dict[str, Results] = {name: [] for name in targets}
        spent = dict.fromkeys(targets, 0.0)
        slots: dict[str, list[float]] = {name: [] for name in targets}
        for i, name in enumerate(order):
            url, sku = targets[name]
            results, elapsed = self.drive(
                pool, url, sku, self.step_seconds, False, f"{phase[0]}{i}-"
            )
            seen[name] += results
            spent[name] += elapsed
            slots[name].append(sum(1 for r in results if r[0] == 201) / elapsed)
        # each target's rate in its early and its late slot: how much the same thing
        # varies within the run (ecshop.benchadvice.spread)
        routes = {name: {**checkout_figures(seen[name], spent[name]), "slots": slots[name]}
                  for name in targets}  # fmt: skip
        return {"clients": self.clients, "slot_seconds": self.step_seconds, "order": order,
                "routes": routes}  # fmt: skip

    def sweep(
        self, pool: Pool, url: str, sku: str, levels: Sequence[int], target: str
    ) -> dict[str, Any]:
        """Checkouts at each number of concurrent clients, ``step_seconds`` a step; a step
        with more clients than processes runs several per process (threads)."""
        pool.phase_begins("sweep", f"bench: concurrency sweep of {target}, "
                          f"{', '.join(map(str, levels))} clients, {self.step_seconds:g}s a step")  # fmt: skip
        steps = []
        for level in levels:
            procs = min(level, self.clients)
            share = [level // procs + (1 if i < level % procs else 0) for i in range(procs)]

            def jobs(deadline: float) -> list[tuple[Any, ...]]:
                return [(url, sku, deadline, n, self._tag(f"s{level}.{i}"), self.token)  # noqa: B023
                        for i, n in enumerate(share)]  # noqa: B023  # fmt: skip

            parts, elapsed = pool.run(client.sweep_loop, jobs, self.step_seconds)
            step = {"clients": level, **checkout_figures(
                self._keep([r for part in parts for r in part]), elapsed)}  # fmt: skip
            steps.append(step)
            self.progress(f"  sweep: {level} clients, {step['per_second']:.0f}/s, "
                          f"p99 {step['p99_ms']:.0f} ms, errors {step['errors']}")  # fmt: skip
        return {"target": target, "step_seconds": self.step_seconds, "levels": list(levels),
                "steps": steps}  # fmt: skip


def route_figures(results: list[tuple[int, float]], seconds: float) -> dict[str, Any]:
    ok = [lat for status, lat in results if status == 200]
    p50, p99 = ms(ok)
    return {"seconds": seconds, "count": len(ok), "per_second": len(ok) / seconds if seconds else 0.0,
            "p50_ms": p50, "p99_ms": p99, "errors": len(results) - len(ok)}  # fmt: skip
