"""The shop's metrics, through prometheus_client, summed over every gunicorn worker.

gunicorn runs several worker processes and a scrape reaches one of them. In
prometheus_client's multiprocess mode every process writes its counters, histograms and
gauges into memory-mapped files of its own in one folder, and the worker that answers
``GET /metrics`` reads them all. ``ecshop serve`` picks the folder
(``ECSHOP_METRICS_DIR``, else ``metrics`` beside a SQLite database, else a temporary
one), empties it when the master starts and hands it to the workers as
``PROMETHEUS_MULTIPROC_DIR``; when a worker exits, the master folds its counts into
the folder's archive files (:mod:`ecshop._metricsdir`). So a total never goes down when
a worker is recycled, killed, or replaced by a HUP or a USR2 upgrade. Without that
folder (tests, the CLI) a process counts for itself alone.

Like loggers, the metric families are process-wide: the code that sees an event
counts it here. An increment is what prometheus_client's value costs (its lock and a
write into the mapped file), nothing more: no lock or system call of the shop's own.
"""

from __future__ import annotations

import logging
import platform
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

import ecshop
from ecshop import _metricsdir
from ecshop.logconf import Repeats

log = logging.getLogger("ecshop.metrics")

#: the text format every Prometheus server reads
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: seconds between two samples of a worker's memory, CPU time and open files
PROCESS_EVERY = 10.0

# NOTE: counters get no `_created` series: a multiprocess scrape has none either, so
# both modes answer the same families.
disable_created_metrics()

#: the families of this process (what a scrape shows without a multiprocess folder)
REGISTRY = CollectorRegistry(auto_describe=True)


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name, doc, labels, registry=REGISTRY)


def _gauge(name: str, doc: str, labels: tuple[str, ...] = (), mode: str = "liveall") -> Gauge:
    return Gauge(name, doc, labels, registry=REGISTRY, multiprocess_mode=mode)  # type: ignore[arg-type]


# -- HTTP ------------------------------------------------------------------------------
HTTP_RESPONSES = _counter(
    "ecshop_http_responses_total",
    "HTTP responses by matched route template (unmatched: no route) and status code.",
    ("route", "status"),
)
HTTP_DURATION = Histogram(
    "ecshop_http_request_duration_seconds",
    "Time from a request reaching the app to its response, by matched route template.",
    ("route",), registry=REGISTRY,
)  # fmt: skip
SHED = _counter(
    "ecshop_shed_requests_total",
    "Storefront requests answered 503 because they queued too long (ECSHOP_SHED_QUEUE_MS).",
)
RATE_LIMITED = _counter(
    "ecshop_rate_limited_requests_total",
    "Checkouts answered 429 by the per-client limit (ECSHOP_CHECKOUT_RATE_LIMIT).",
)

# -- checkout and orders ---------------------------------------------------------------
CHECKOUT_DURATION = Histogram(
    "ecshop_checkout_duration_seconds",
    "Time to place an order (validate, hold, write durably), by result: placed, replayed "
    "(an Idempotency-Key's earlier order), out_of_stock, refused (other 4xx), failed (5xx).",
    ("result",), registry=REGISTRY,
)  # fmt: skip
#: the checkout timer of each result
CHECKOUT_TIMES = {
    result: CHECKOUT_DURATION.labels(result=result)
    for result in ("placed", "replayed", "out_of_stock", "refused", "failed")
}
ORDER_TRANSITIONS = _counter(
    "ecshop_order_transitions_total",
    "Order status changes committed, by move (ecshop.orders.MOVES) and statuses.",
    ("from_status", "move", "to_status"),
)
NOTIFICATIONS = _counter(
    "ecshop_payment_notifications_total",
    "Gateway notifications by gateway and outcome: applied, duplicate, rejected (4xx, "
    "reason: the error code) or failed (5xx, not recorded, reason: the error code).",
    ("gateway", "outcome", "reason"),
)
HOLDS = _counter(
    "ecshop_stock_holds_total",
    "Stock holds by event: granted, refused (not enough stock), expired (given back once "
    "their time ran out, by the sweep or a later hold), reclaimed (given back by the "
    "reconciler because no order owned them).",
    ("event",),
)
#: the fixed events and results, shown (at 0) before they first happen
HOLD_GRANTED, HOLD_REFUSED, HOLD_EXPIRED, HOLD_RECLAIMED = (
    HOLDS.labels(event=e) for e in ("granted", "refused", "expired", "reclaimed")
)
RECONCILE_PASSES = _counter(
    "ecshop_reconcile_passes_total",
    "Reconciler passes by result: complete, stopped (lease lost or shutting down), failed.",
    ("result",),
)
RECONCILE_SETTLED = _counter(
    "ecshop_reconcile_settled_orders_total",
    "Orders the reconciler settled, by outcome: paid, declined, expired (cancelled when "
    "their hold or pay window ended unpaid).",
    ("outcome",),
)
MAILS = _counter(
    "ecshop_mails_total",
    "Mail to buyers by result: sent, retried (an attempt failed, another follows), failed "
    "(given up after ECSHOP_MAIL_MAX_ATTEMPTS), stopped (by a plugin).",
    ("result",),
)
for _result in ("complete", "stopped", "failed"):
    RECONCILE_PASSES.labels(result=_result)
for _result in ("paid", "declined", "expired"):
    RECONCILE_SETTLED.labels(outcome=_result)
for _result in ("sent", "retried", "failed", "stopped"):
    MAILS.labels(result=_result)

# -- plugins and the store -------------------------------------------------------------
PLUGIN_ACTION_ERRORS = _counter(
    "ecshop_plugin_action_errors_total",
    "Plugin action callbacks that raised, by hook and plugin.",
    ("hook", "plugin"),
)
GROUP_COMMITS = _counter(
    "ecshop_group_commits_total", "Durable commits made by group commit (ECSHOP_GROUP_COMMIT)."
)
GROUP_COMMIT_WRITES = _counter(
    "ecshop_group_commit_writes_total",
    "Transactions written through group commits (checkouts, notifications' journal rows).",
)

# -- build and processes ---------------------------------------------------------------
BUILD_INFO = _gauge(
    "ecshop_build_info",
    "Always 1: the ecshop version, the Python version and the stock core serving.",
    ("python", "stockcore", "version"), mode="livemax",
)  # fmt: skip
_PROCESS_GAUGES = {
    "ecshop_process_start_time_seconds": _gauge(
        "ecshop_process_start_time_seconds",
        "Start time of the process since the epoch (a series per worker pid when served).",
    ),
    "ecshop_process_resident_memory_bytes": _gauge(
        "ecshop_process_resident_memory_bytes",
        "Resident memory of the process (a series per worker pid when served).",
    ),
    "ecshop_process_virtual_memory_bytes": _gauge(
        "ecshop_process_virtual_memory_bytes",
        "Virtual memory of the process (a series per worker pid when served).",
    ),
    "ecshop_process_cpu_seconds_total": _gauge(
        "ecshop_process_cpu_seconds",
        "User and system CPU time of the process (a series per worker pid when served).",
    ),
    "ecshop_process_open_fds": _gauge(
        "ecshop_process_open_fds",
        "Open file descriptors of the process (a series per worker pid when served).",
    ),
}


def announce_build(stockcore: str) -> None:
    """Set ``ecshop_build_info`` for this process (``stockcore``: compiled or python)."""
    BUILD_INFO.labels(
        python=platform.python_version(), stockcore=stockcore, version=ecshop.__version__
    ).set(1)


_PROCESS = ProcessCollector(namespace="ecshop", registry=None)


def sample_process() -> None:
    """Copy this process's memory, CPU time and open files into the process gauges
    (read from ``/proc``; nothing where there is none)."""
    for family in _PROCESS.collect():
        for item in family.samples:
            gauge = _PROCESS_GAUGES.get(item.name)
            if gauge is not None:
                gauge.set(item.value)


def start_process_sampler(stop: threading.Event | None = None) -> threading.Event:
    """Sample this process every :data:`PROCESS_EVERY` seconds in a daemon thread (a
    gunicorn worker runs one, so every worker's gauges stay current)."""
    stop = stop or threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                sample_process()
            except Exception:  # metrics never take a worker down
                log.debug("sampling the process failed", exc_info=True)
            stop.wait(PROCESS_EVERY)

    threading.Thread(target=run, name="ecshop-process-metrics", daemon=True).start()
    return stop


# -- the scrape ------------------------------------------------------------------------
#: the database's failures while scraping, logged once per outage
_SCRAPE_FAILURES = Repeats(log)


class StoreGauges:
    """Gauges read from the database at each scrape: orders by status, and payment
    events journaled but not yet applied."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.store.read() as tx:
                rows = tx.query("SELECT status, COUNT(*) AS n FROM orders GROUP BY status")
                unapplied = tx.scalar(
                    "SELECT COUNT(*) FROM payments_journal WHERE applied_at IS NULL"
                )
        except Exception as exc:  # the counters are worth a scrape while the database is down
            _SCRAPE_FAILURES.failed("store", "metrics: the database did not answer: %s", exc)
            return
        orders = GaugeMetricFamily("ecshop_orders", "Orders by status.", labels=["status"])
        for row in rows:
            orders.add_metric([str(row["status"])], int(row["n"]))
        yield orders
        yield GaugeMetricFamily(
            "ecshop_payment_events_unapplied",
            "Gateway events journaled but not applied yet (the reconciler applies them).",
            value=int(unapplied or 0),
        )


class _Joined:
    """Families already read, and collectors, read as one."""

    def __init__(self, families: list[Any], *collectors: Any) -> None:
        self.families = families
        self.collectors = collectors

    def collect(self) -> Iterator[Any]:
        yield from self.families
        for collector in self.collectors:
            yield from collector.collect()


def exposition(store: Any, folder: str = "") -> bytes:
    """The Prometheus text of this shop: every process's families read from the
    multiprocess ``folder`` (or this process's own without one), and the database's
    gauges."""
    sample_process()
    if not folder:
        return generate_latest(_Joined([], REGISTRY, StoreGauges(store)))
    # NOTE: shared with other scrapes, exclusive while the master folds a dead
    # worker's files into the archive, so no scrape counts them twice or misses them.
    with _metricsdir.locked(folder, exclusive=False):
        families = list(MultiProcessCollector(None, path=folder).collect())
    return generate_latest(_Joined(families, StoreGauges(store)))


def multiprocess_live() -> bool:
    """True when this process writes its values into the multiprocess folder."""
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))
