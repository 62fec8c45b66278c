"""Routes measured side by side: batches of each route taken in turn, so a busy spell of
a shared machine falls on all of them, and each route's figure is the median of its
batch means. The ratios to a base route are what to compare between runs.

Used by the benchmarks in ``bench/`` (pages in-process and through gunicorn) and by
``ecshop bench`` (round trips over TCP and unix sockets; its timed slots of concurrent
clients follow :func:`alternating`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


def alternating(names: Sequence[str]) -> list[str]:
    """``A B C C B A``: each name early and late, so a drift of the machine over the
    run falls on every name alike."""
    return [*names, *reversed(names)]


@dataclass
class Timing:
    """One route: the mean wall time per call of each batch, and the CPU seconds the
    server spent on all of them (when it was measured)."""

    batches: list[float] = field(default_factory=list)
    calls: int = 0
    cpu: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.batches)

    @property
    def best(self) -> float:
        return min(self.batches)

    @property
    def cpu_per_call(self) -> float | None:
        return None if self.cpu is None or not self.calls else self.cpu / self.calls


def side_by_side(
    calls: Mapping[str, Callable[[], object]], *, per_route: int = 300, batches: int = 10,
    cpu: Callable[[], float] | None = None,
) -> dict[str, Timing]:  # fmt: skip
    """Call each route ``per_route`` times in ``batches`` rounds, the routes in turn
    within a round, after one unmeasured round. ``cpu`` reads the server's CPU seconds
    so far (read around each batch)."""
    size = max(1, per_route // batches)
    for call in calls.values():
        for _ in range(size):
            call()
    timings = {name: Timing(cpu=0.0 if cpu else None) for name in calls}
    for _ in range(batches):
        for name, call in calls.items():
            timing = timings[name]
            used = cpu() if cpu else 0.0
            start = time.perf_counter()
            for _ in range(size):
                call()
            timing.batches.append((time.perf_counter() - start) / size)
            if cpu and timing.cpu is not None:
                timing.cpu += cpu() - used
            timing.calls += size
    return timings


def report(timings: Mapping[str, Timing], base: str, title: str) -> str:
    """A table of each route's median and best batch and its ratio to ``base``."""
    lead = timings[base]
    lines = [title, f"{'route':16s} {'median ms':>10s} {'best ms':>8s} {'x median':>9s} "
                    f"{'x best':>7s} {'cpu ms':>7s} {'x cpu':>6s}"]  # fmt: skip
    for name, timing in timings.items():
        cpu, lead_cpu = timing.cpu_per_call, lead.cpu_per_call
        cpu_text = f"{cpu * 1000:7.2f}" if cpu is not None else f"{'-':>7s}"
        cpu_ratio = f"{cpu / lead_cpu:6.2f}" if cpu is not None and lead_cpu else f"{'-':>6s}"
        lines.append(
            f"{name:16s} {timing.median * 1000:10.3f} {timing.best * 1000:8.3f} "
            f"{timing.median / lead.median:9.2f} {timing.best / lead.best:7.2f} {cpu_text} {cpu_ratio}"
        )
    return "\n".join(lines)
