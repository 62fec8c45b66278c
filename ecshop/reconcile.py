"""The reconciler: settles what the gateway callbacks missed.

One pass (``ecshop reconcile --once``, or the loop inside ``ecshop serve``):

1. re-apply journaled events that were never applied (a worker died after the 2xx);
2. ask the gateway about every order still ``pending_payment`` past the grace period,
   and apply its answer like a notification: paid → paid (or ``needs_attention``),
   failed → cancelled; no payment and the hold expired → cancelled (expired); a
   gateway that cannot be asked keeps the order's stock held, and once it has not
   answered for ``unreachable_after`` seconds past the hold's end the order is flagged
   for the admin (and its stock released only where the owner accepts that risk);
3. release engine holds no order owns (a checkout died between hold and commit), and
   sweep expired holds in the stock engine;
4. send the outbox's mail that is due (:mod:`ecshop.outbox`), when the shop sends mail.

Only one reconciler runs at a time across workers and hosts: it holds a lease row in
the database, renewed each pass.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ecshop import metrics
from ecshop.errors import GatewayError, ShopError
from ecshop.logconf import Repeats
from ecshop.orders import ACCEPTED, PENDING, OrderService, load, record_event
from ecshop.payments.base import PaymentEvent, PaymentStatus
from ecshop.payments.notifications import SUCCEEDED, PaymentService, event_from_status
from ecshop.store import DuplicateKey, Store

log = logging.getLogger("ecshop.reconcile")
LEASE = "reconciler"
#: seconds between the loop's looks at the stock engine's epoch marker between passes
WATCH_EVERY = 1.0
#: what ``fetch_status`` / ``expire_payment`` may answer; anything else is garbage
KNOWN_STATUSES = frozenset(
    {"succeeded", "failed", "pending", "expired", "refunded", "partially_refunded", "unknown"}
)
#: the flag on an order whose gateway could not be asked for too long (event data)
UNREACHABLE = "gateway_unreachable"


@dataclass
class ReconcileReport:
    replayed: int = 0
    checked: int = 0
    paid: int = 0
    cancelled: int = 0
    expired: int = 0
    errors: int = 0
    swept: int = 0
    orphans: int = 0
    #: orders whose gateway has not answered for too long past their hold's end
    unreachable: int = 0
    #: outbox mail sent in this pass
    mailed: int = 0

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.__dict__.items())


LAST_PASS = "reconcile_last_pass"


def _remember_pass(store: Store, report: ReconcileReport) -> None:
    """The last whole pass, for the admin dashboard (``settings``)."""
    value, now = json.dumps(report.__dict__), time.time()
    with store.tx() as tx:
        if not tx.execute("UPDATE settings SET value = ?, updated_at = ? WHERE name = ?",
                          (value, now, LAST_PASS)):  # fmt: skip
            tx.execute("INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)",
                       (LAST_PASS, value, now))  # fmt: skip


def last_pass(store: Store) -> tuple[float, str] | None:
    """When the last whole pass ended, and its report, or None before the first."""
    with store.read() as tx:
        row = tx.one("SELECT value, updated_at FROM settings WHERE name = ?", (LAST_PASS,))
    if row is None:
        return None
    report = ", ".join(f"{k}={v}" for k, v in json.loads(row["value"]).items())
    return float(row["updated_at"]), report


def lease_holder(store: Store, name: str) -> tuple[str, float] | None:
    """Who holds the lease ``name`` and until when (unix time), or None if nobody does."""
    with store.read() as tx:
        row = tx.one("SELECT holder, expires_at FROM leases WHERE name = ?", (name,))
    if row is None or float(row["expires_at"]) < time.time():
        return None
    return str(row["holder"]), float(row["expires_at"])


def acquire_lease(store: Store, name: str, holder: str, ttl: float) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False if someone else holds it."""
    now = time.time()
    with store.tx() as tx:
        changed = tx.execute(
            "UPDATE leases SET holder = ?, expires_at = ? WHERE name = ? AND (holder = ? OR expires_at < ?)",
            (holder, now + ttl, name, holder, now),
        )
        if changed:
            return True
    try:
        with store.tx() as tx:
            tx.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)",
                (name, holder, now + ttl),
            )
    except DuplicateKey:
        return False
    return True


def release_lease(store: Store, name: str, holder: str) -> None:
    with store.tx() as tx:
        tx.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def _checked(status: Any) -> PaymentStatus:
    """A gateway's status answer, or GatewayError when it is not one the core knows."""
    value = getattr(status, "status", None)
    if value not in KNOWN_STATUSES:
        raise GatewayError(f"the gateway answered an unknown status {value!r}")
    return status  # type: ignore[no-any-return]


class _Stopped(Exception):
    """``keep_going()`` said no between two batches: the pass ends here."""


def _paged(
    fetch: Callable[[Any], list[dict[str, Any]]],
    start: Any,
    cursor: Callable[[dict[str, Any]], Any],
    batch: int,
    more: Callable[[], bool],
) -> Iterator[dict[str, Any]]:
    """Every row ``fetch(after)`` pages through, ``batch`` at a time, each page after the
    last row's ``cursor``; raises :class:`_Stopped` when ``more()`` says no between pages."""
    after = start
    while True:
        rows = fetch(after)
        yield from rows
        if len(rows) < batch:
            return
        if not more():
            raise _Stopped
        after = cursor(rows[-1])


class Reconciler:
    def __init__(self, store: Store, stock: Any, orders: OrderService, payments: PaymentService,
                 gateways: dict[str, Any], *, grace: float, unreachable_after: float = 86400.0,
                 release_unreachable: bool = False, mail: Any = None) -> None:  # fmt: skip
        self.store = store
        self.stock = stock
        self.orders = orders
        self.payments = payments
        self.gateways = gateways
        self.grace = grace
        self.unreachable_after = unreachable_after
        self.release_unreachable = release_unreachable
        self.mail = mail  # the outbox's MailSender (None: the shop sends no mail)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"

    def run_once(
        self,
        *,
        now: float | None = None,
        batch: int = 500,
        keep_going: Callable[[], bool] | None = None,
    ) -> ReconcileReport:
        """One pass: every unapplied journal event, then every order stuck in
        ``pending_payment`` past the grace period, then a sweep of expired holds.

        Events and orders are read ``batch`` at a time, each batch after the last one
        seen, so a pass reaches all of them and ends even when some cannot be settled
        yet. ``keep_going()`` is asked between batches (the background loop renews its
        lease there); False ends the pass early. Each pass is counted by how it ended
        (``ecshop_reconcile_passes_total``).
        """
        try:
            report, finished = self._pass(now, batch, keep_going)
        except BaseException:
            metrics.RECONCILE_PASSES.labels(result="failed").inc()
            raise
        metrics.RECONCILE_PASSES.labels(result="complete" if finished else "stopped").inc()
        return report

    def _pass(self, now: float | None, batch: int,
              keep_going: Callable[[], bool] | None) -> tuple[ReconcileReport, bool]:  # fmt: skip
        """One pass; the report, and False when ``keep_going()`` stopped it early."""
        report = ReconcileReport()
        more = keep_going or (lambda: True)
        if self.stock.needs_rebuild():  # Redis lost its data: the database rebuilds it
            self.stock.rebuild()
        try:
            for row in _paged(lambda after: self.payments.unapplied(after=after, limit=batch),
                              0, lambda row: int(row["id"]), batch, more):  # fmt: skip
                self._replay(row, report)
            current = time.time() if now is None else now
            # created_at is a unix time, never negative: (-1, "") is before every order.
            for order in _paged(lambda after: self._stuck(current - self.grace, after, batch),
                                (-1.0, ""), lambda o: (float(o["created_at"]), o["number"]),
                                batch, more):  # fmt: skip
                report.checked += 1
                try:
                    self._settle(order, current, report)
                except (GatewayError, ShopError) as exc:
                    report.errors += 1
                    log.warning("reconciling %s failed: %s", order["number"], exc.message)
        except _Stopped:
            return report, False
        self._release_orphans(report)
        report.swept = int(self.stock.sweep() or 0)
        if self.mail is not None:  # last: this pass's own changes have mail too
            report.mailed = self.mail.send_due().sent
        _remember_pass(self.store, report)
        return report, True

    def _release_orphans(self, report: ReconcileReport) -> None:
        """Give back engine holds that no order owns: a checkout that died between its
        hold and its order's commit (Redis only; older than the grace period)."""
        tokens = self.stock.orphans(self.grace)
        for start in range(0, len(tokens), 500):
            chunk = tokens[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            with self.store.read() as tx:
                owned = {r["number"] for r in tx.query(
                    f"SELECT number FROM orders WHERE number IN ({marks}) AND stock_state = 'held'", chunk)}  # fmt: skip
            for token in chunk:
                if token not in owned and self.stock.release(token):
                    report.orphans += 1
                    metrics.HOLD_RECLAIMED.inc()
                    log.info("released hold %s: no order owns it", token)

    def _replay(self, row: dict[str, Any], report: ReconcileReport) -> None:
        """Apply a journaled event whose application never finished (a worker died)."""
        event = PaymentEvent(row["event_id"], row["type"], row["order_number"], int(row["amount"]),
                             row["currency"], row["payment_id"], int(time.time()),
                             refund_id=row.get("refund_id"))  # fmt: skip
        try:
            self.payments.apply(row["gateway"], event)
            report.replayed += 1
        except ShopError as exc:
            report.errors += 1
            log.warning("re-applying %s failed: %s", row["event_id"], exc.message)

    def _stuck(self, before: float, after: tuple[float, str], limit: int) -> list[dict[str, Any]]:
        """Pending and accepted orders created before ``before``, the next ``limit``
        after ``after``."""
        with self.store.read() as tx:
            return tx.query(
                "SELECT number, status, gateway, total, currency, hold_expires_at, created_at FROM orders "
                "WHERE status IN (?, ?) AND created_at < ? "
                "AND (created_at > ? OR (created_at = ? AND number > ?)) "
                "ORDER BY created_at, number LIMIT ?",
                (PENDING, ACCEPTED, before, after[0], after[0], after[1], limit),
            )  # fmt: skip

    def _settle(self, order: dict[str, Any], now: float, report: ReconcileReport) -> None:
        """Settle one order with its gateway (docs/architecture.md, "Holds").

        A pending order's stock comes back only after its gateway has said it is not
        paid: where the gateway can, its payment session is expired first, so no
        capture can follow. A gateway that cannot be asked (not installed, not
        configured, unreachable, answering garbage) keeps the order's stock held; see
        :meth:`_unreachable` for how long.
        """
        number = order["number"]
        expired = order["hold_expires_at"] is not None and float(order["hold_expires_at"]) < now
        gateway = self.gateways.get(order["gateway"])
        if order["status"] == ACCEPTED or (gateway is not None and gateway.offline):
            if expired:  # an offline method's pay window ended with no payment marked
                self._expire(number, "expired: not paid within the pay window", report)
            return
        if gateway is None:
            if expired:
                self._unreachable(order, now, f"gateway {order['gateway']} is not live", report)
            return
        status = self._ask(order, gateway.fetch_status, expired, now, report)
        if status is None or self._apply_status(order, status, report) or not expired:
            return
        if gateway.can_expire:
            # NOTE: expire first, then release: a buyer paying at this very moment
            # either made it (the answer is succeeded) or is refused by the gateway.
            status = self._ask(order, gateway.expire_payment, expired, now, report)
            if status is None or self._apply_status(order, status, report):
                return
        self._expire(number, "expired: the gateway has no payment", report)

    def _ask(self, order: dict[str, Any], call: Callable[[str], Any], expired: bool, now: float,
             report: ReconcileReport) -> PaymentStatus | None:  # fmt: skip
        """The gateway's answer, or None when it cannot be asked (handled here)."""
        try:
            return _checked(call(order["number"]))
        except GatewayError as exc:
            reason = exc.message
        except ShopError:
            raise
        except Exception as exc:  # a plugin's bug must not stop the pass
            reason = f"{type(exc).__name__}: {exc}"
        if expired:
            self._unreachable(order, now, reason, report)
        else:
            report.errors += 1
            log.warning("reconciling %s failed: %s", order["number"], reason)
        return None

    def _unreachable(
        self, order: dict[str, Any], now: float, reason: str, report: ReconcileReport
    ) -> None:
        """An order whose hold ended and whose gateway cannot be asked.

        Its buyer may have paid, so its stock stays held. Once the gateway has not
        answered for ``unreachable_after`` seconds past the hold's end, the order is
        flagged for the admin (once: an event row, a WARNING naming it, the
        ``order_gateway_unreachable`` action) and counted in every pass's report while
        it stays pending; only with ``release_unreachable`` (the owner accepts that a
        late capture may find its units sold, to be refunded) is it expired and its
        stock given back.
        """
        report.errors += 1
        number, name = order["number"], order["gateway"]
        if now < float(order["hold_expires_at"]) + self.unreachable_after:
            log.warning("order %s: its hold ended but gateway %s cannot be asked (%s); the "
                        "stock stays held", number, name, reason)  # fmt: skip
            return
        report.unreachable += 1
        if self._flag(order, reason):
            log.warning("order %s needs the admin: gateway %s has not answered for %.0f s after "
                        "its hold ended (%s); %s", number, name, self.unreachable_after, reason,
                        "its stock is released" if self.release_unreachable
                        else "its stock stays held until the admin settles it")  # fmt: skip
        if self.release_unreachable:
            self._expire(number, f"expired: gateway {name} unreachable ({reason}); released as "
                         "ECSHOP_GATEWAY_UNREACHABLE_RELEASE allows", report)  # fmt: skip

    def _flag(self, order: dict[str, Any], reason: str) -> bool:
        """Record the flag on the order once; False when it is already there."""
        number = order["number"]
        with self.store.tx() as tx:
            if tx.one("SELECT id FROM order_events WHERE order_number = ? AND reason LIKE ?",
                      (number, f"{UNREACHABLE}:%")):  # fmt: skip
                return False
            record_event(tx, number, PENDING, PENDING, actor="reconciler",
                         reason=f"{UNREACHABLE}: {reason}",
                         data={"attention": UNREACHABLE, "gateway": order["gateway"]})  # fmt: skip
            full = load(tx, number)  # the whole row, as every order action gets it
        self.orders.hooks.do_action("order_gateway_unreachable", full)
        return True

    def _apply_status(self, order: dict[str, Any], status: Any, report: ReconcileReport) -> bool:
        """Apply a final status like a notification; False while it is not final."""
        event = event_from_status(order, status)
        if event is None:
            return False
        outcome = self._receive(order["gateway"], event)
        if event.type == SUCCEEDED and outcome in ("paid", "needs_attention", "refunded"):
            report.paid += 1
            metrics.RECONCILE_SETTLED.labels(outcome="paid").inc()
        elif event.type != SUCCEEDED and outcome == "declined":
            report.cancelled += 1
            metrics.RECONCILE_SETTLED.labels(outcome="declined").inc()
        return True

    def _expire(self, number: str, reason: str, report: ReconcileReport) -> None:
        self.orders.cancel(number, move="expire", actor="reconciler", reason=reason)
        report.expired += 1
        metrics.RECONCILE_SETTLED.labels(outcome="expired").inc()
        log.info("order %s %s; its stock is back", number, reason)

    def _receive(self, gateway: str, event: PaymentEvent) -> str:
        try:
            return self.payments.receive(gateway, event)
        except ShopError as exc:
            log.warning(
                "gateway status for %s did not match the order: %s", event.order, exc.message
            )
            raise

    def run_forever(
        self, interval: float, stop: threading.Event, lease_ttl: float | None = None
    ) -> None:
        """The background loop: one pass per interval while this process holds the lease."""
        ttl = lease_ttl or max(interval * 3, 30)
        failures = Repeats(log)  # a part down fails every pass: one line per outage
        while not stop.is_set():
            try:
                if acquire_lease(self.store, LEASE, self.holder, ttl):
                    report = self.run_once(
                        keep_going=lambda: (
                            not stop.is_set() and acquire_lease(self.store, LEASE, self.holder, ttl)
                        )
                    )
                    if report.checked or report.replayed or report.mailed:
                        log.info("reconcile: %s", report)
            except Exception as exc:  # keep the loop alive whatever one pass hits
                failures.failed(type(exc).__name__, "reconcile pass failed: %s", exc,
                                level=logging.ERROR, exc_info=exc)  # fmt: skip
            self._watch(interval, stop, ttl, failures)
        try:
            release_lease(self.store, LEASE, self.holder)
        except Exception:
            pass

    def _watch(self, interval: float, stop: threading.Event, ttl: float, failures: Repeats) -> None:
        """Wait ``interval`` seconds for the next pass, looking every second for a stock
        engine that lost its copy (Redis restarted, flushed, or a failover promoted a
        replica, which ``verify.lua`` unseals): the leader rebuilds it at once instead
        of at the next pass, so the storefront's 503s end as soon as the database has
        refilled it."""
        deadline = time.monotonic() + interval
        while not stop.wait(max(0.0, min(WATCH_EVERY, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return
            try:
                if self.stock.needs_rebuild() and acquire_lease(
                    self.store, LEASE, self.holder, ttl
                ):
                    self.stock.rebuild()
            except Exception as exc:  # Redis still down: the next look tries again
                failures.failed("rebuild", "stock engine not rebuilt: %s", exc)


class Background:
    """The reconciler loop in a daemon thread of this process; :meth:`stop` ends it and
    gives the lease back, so a clean shutdown does not leave the next leader waiting
    out the lease."""

    def __init__(self, reconciler: Reconciler, interval: float) -> None:
        self.reconciler = reconciler
        self.event = threading.Event()
        self.thread = threading.Thread(
            target=reconciler.run_forever, args=(interval, self.event),
            name="ecshop-reconciler", daemon=True,
        )  # fmt: skip

    def start(self) -> Background:
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """End the loop (a pass stops at its next batch) and wait up to ``timeout``
        seconds; the loop releases the lease as it ends. True if it ended in time."""
        self.event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        if self.thread.is_alive():
            log.warning("the reconciler did not stop within %gs; its lease runs out by itself",
                        timeout)  # fmt: skip
            return False
        return True


def start_background(app: Any) -> Background | None:
    """Run the reconciler loop in a daemon thread of this process (gunicorn worker)."""
    shop = getattr(app, "shop", None)
    if shop is None or shop.config.reconcile_interval <= 0:
        return None
    return Background(shop.reconciler, shop.config.reconcile_interval).start()
