"""Counters summed over every worker process of a shop, for ``GET /metrics``.

gunicorn runs several worker processes and a scrape reaches one of them, so each worker
writes its own counters to a file of its own in a shared folder (``ECSHOP_METRICS_DIR``,
which ``ecshop serve`` makes for each server): at most once a second while it serves,
and whenever it answers ``/metrics``. The worker that answers adds up every file, its
own live counters in place of its file. A worker that exited leaves its last file
behind, so a total never goes down when a worker is recycled or killed (a kill loses at
most its last second). Without a folder, a process counts for itself alone.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

PUBLISH_EVERY = 1.0
Samples = dict[str, float]


class WorkerCounters:
    """This process's counters, published to ``folder`` and summed with the others'."""

    def __init__(self, folder: str, collect: Callable[[], Samples]) -> None:
        self.folder = Path(folder) if folder else None
        self.collect = collect
        self._published_at = 0.0
        self._dirty = False
        self._pid = -1  # the process whose timer runs; a forked child starts its own
        self._lock = threading.Lock()  # one writer of this worker's file at a time

    def _file(self) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"worker-{os.getpid()}.json"

    def maybe_publish(self) -> None:
        """After a response: publish when the last one is over a second old; a timer
        publishes what an idle worker counted since (cheap otherwise)."""
        if self.folder is None:
            return
        self._dirty = True
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._pid = os.getpid()
                    threading.Thread(target=self._timer, name="ecshop-metrics", daemon=True).start()
        if time.monotonic() - self._published_at > PUBLISH_EVERY:
            self.publish()

    def _timer(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            time.sleep(PUBLISH_EVERY)
            if self._dirty:
                self.publish()

    def publish(self) -> Samples:
        """Write this process's counters now (atomically); return them."""
        with self._lock:
            return self._publish()

    def _publish(self) -> Samples:
        self._dirty = False
        samples = self.collect()
        path = self._file()
        if path is not None:
            self._published_at = time.monotonic()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(samples), encoding="utf-8")
                tmp.replace(path)
            except OSError:  # metrics never fail a request; this worker counts alone
                pass
        return samples

    def totals(self) -> Samples:
        """Every worker's counters added up (this one's live)."""
        total: Counter[str] = Counter(self.publish())
        own = self._file()
        if own is None:
            return dict(total)
        for path in sorted(own.parent.glob("worker-*.json")):
            if path == own:
                continue
            try:
                samples = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # being replaced right now, or not ours: the next scrape has it
            if isinstance(samples, dict):
                total.update({k: float(v) for k, v in samples.items() if isinstance(k, str)})
        return dict(total)


def sample(name: str, value: float, **labels: str) -> tuple[str, float]:
    """One sample keyed by its Prometheus text: ``name{k="v",...}``."""
    if not labels:
        return name, value
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}}", value


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(totals: Samples, kinds: dict[str, str]) -> list[str]:
    """Prometheus text lines, one ``# TYPE`` per metric name, samples sorted."""
    by_name: dict[str, list[str]] = {}
    for key in sorted(totals):
        by_name.setdefault(key.split("{", 1)[0], []).append(key)
    lines = []
    for name in sorted(set(by_name) | set(kinds)):
        lines.append(f"# TYPE {name} {kinds.get(name, 'counter')}")
        for key in by_name.get(name, []):
            value = totals[key]
            lines.append(f"{key} {int(value) if value == int(value) else value}")
    return lines
