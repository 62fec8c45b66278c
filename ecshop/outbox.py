"""The outbox: mail to buyers, written in the transaction of the order change that
causes it, and sent after the commit (DESIGN.md, "Pages").

:class:`~ecshop.orders.OrderService` writes one ``outbox`` row per mail in the very
transaction that changes the order, so a crash after the commit loses no mail and a
rolled-back change sends none. :class:`MailSender` sends what is due, later (the
reconciler's background loop, ``ecshop mail send``, ``ecshop reconcile --once``, and in
a served shop right after the request whose commit wrote it: :meth:`MailSender.nudge`): it
renders the row's template, passes the message through ``mail_before_send`` and hands
it to the mailer (SMTP, a folder of ``.eml`` files, or what a ``mailer`` filter
returns), then marks the row ``sent``. A failure is retried with a growing delay, up to
``ECSHOP_MAIL_MAX_ATTEMPTS`` times, then the row is ``failed`` (logged).

Delivery is at least once: a process that dies after the mail server took the message
and before the row is marked sends it again; the message's ``Message-ID`` is the same
both times (``<outbox-<id>.<order>@ecshop>``) so mail clients show it once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecshop import metrics
from ecshop.mail import prepare
from ecshop.store import Store, Tx

log = logging.getLogger("ecshop.mail")
HOOK = "mailer"
ORDER_RECEIVED = "order_received"
PAYMENT_RECEIVED = "payment_received"
SHIPPED = "shipped"
CANCELLED = "cancelled"
REFUNDED = "refunded"
KINDS = (ORDER_RECEIVED, PAYMENT_RECEIVED, SHIPPED, CANCELLED, REFUNDED)
#: mails whose data holds a secret (a reset link): their data is dropped once sent
SECRET_KINDS = frozenset({"password_reset"})
#: the mail each move of an order sends its buyer (``cancelled`` only where the buyer
#: was told of the order: it was accepted or paid)
_BY_MOVE = {"accept_offline": ORDER_RECEIVED, "capture": PAYMENT_RECEIVED,
            "mark_paid": PAYMENT_RECEIVED, "ship": SHIPPED, "refund": REFUNDED}  # fmt: skip
_CANCELS = frozenset({"decline", "expire", "customer_cancel", "admin_cancel"})
#: seconds before the n-th retry: 1 min, 2, 4, ... at most 6 hours
BACKOFF_BASE = 60.0
BACKOFF_MAX = 6 * 3600.0
#: seconds a sender owns a row it took, before another may take it again
CLAIM = 300.0

Mailer = Callable[[dict[str, Any]], Any]


def mail_kind(move: str, from_status: str) -> str | None:
    """The mail the move ``move`` from ``from_status`` sends the buyer, None for none."""
    if move in _CANCELS:
        return CANCELLED if from_status in ("accepted", "paid") else None
    return _BY_MOVE.get(move)


_written = threading.local()


def note_written() -> None:
    """This thread wrote a mail to the outbox (the request's end nudges the sender)."""
    _written.mail = True


def take_written() -> bool:
    """Did this thread write a mail since it last asked? Resets the answer."""
    written = getattr(_written, "mail", False)
    _written.mail = False
    return written


def enqueue(tx: Tx, kind: str, order: dict[str, Any], data: dict[str, Any] | None = None) -> None:
    """Write the mail ``kind`` about ``order`` in ``tx`` (sent once ``tx`` commits).

    An order whose customer gave no email address gets none.
    """
    try:
        recipient = json.loads(order["customer_json"]).get("email")
    except (ValueError, AttributeError):
        recipient = None
    if not recipient:
        return
    now = time.time()
    tx.defer(
        "INSERT INTO outbox (kind, order_number, recipient, data_json, status, attempts, "
        "next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
        (kind, order["number"], recipient, json.dumps(data, ensure_ascii=False) if data else None,
         now, now),
    )  # fmt: skip
    note_written()


def backoff(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt."""
    return float(min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX))


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    stopped: int = 0

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.__dict__.items())


class MailSender:
    """Sends the outbox's due rows.

    Args:
        render: ``render(row) -> message`` (``ecshop.mail.MESSAGE``) for a row.
        transport: the shop's own mailer (SMTP or a folder); the ``mailer`` filter may
            replace it. ``None``: only a plugin's mailer sends.
    """

    def __init__(self, store: Store, hooks: Any, render: Callable[[dict[str, Any]], dict[str, Any]],
                 transport: Mailer | None, *, max_attempts: int = 8) -> None:  # fmt: skip
        self.store = store
        self.hooks = hooks
        self.render = render
        self.transport = transport
        self.max_attempts = max_attempts
        self._wake = threading.Event()
        self._prompt: threading.Thread | None = None

    def start_prompt(self) -> None:
        """Send what is due as soon as :meth:`nudge` is called, from a daemon thread of
        this process, instead of waiting for the next loop or cron pass. The rows are
        claimed as :meth:`send_due` claims them, so the loop and other processes never
        send one twice."""
        if self._prompt is None:
            self._prompt = threading.Thread(target=self._prompt_loop, name="ecshop-mail",
                                            daemon=True)  # fmt: skip
            self._prompt.start()

    def nudge(self) -> None:
        """A mail was committed: wake the prompt sender, if this process runs one."""
        if self._prompt is not None:
            self._wake.set()

    def _prompt_loop(self) -> None:
        from ecshop.logconf import Repeats

        failures = Repeats(log)  # the database down fails every wake: one line per outage
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.send_due(limit=50)
            except Exception as exc:  # keep the thread alive; the loop and cron retry
                failures.failed(type(exc).__name__, "prompt mail sending failed: %s", exc,
                                level=logging.ERROR, exc_info=exc)  # fmt: skip

    def due(self, now: float, limit: int) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            return tx.query(
                "SELECT id, kind, order_number, recipient, data_json, attempts FROM outbox "
                "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                (now, limit),
            )

    def _claim(self, row: dict[str, Any], now: float) -> bool:
        """Own the row for :data:`CLAIM` seconds; False when another sender took it."""
        with self.store.tx() as tx:
            return bool(tx.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending' "
                "AND next_attempt_at <= ? AND attempts = ?",
                (now + CLAIM, row["id"], now, row["attempts"]),
            ))  # fmt: skip

    def _mark(self, row_id: int, status: str, **fields: Any) -> None:
        assignments = "".join(f", {k} = ?" for k in fields)
        with self.store.tx() as tx:
            tx.execute(f"UPDATE outbox SET status = ?{assignments} WHERE id = ?",
                       (status, *fields.values(), row_id))  # fmt: skip

    def send_due(self, *, now: float | None = None, limit: int = 100) -> SendReport:
        """Send up to ``limit`` rows that are due at ``now``; one row's failure never
        stops the others."""
        report = SendReport()
        current = time.time() if now is None else now
        for row in self.due(current, limit):
            if self._claim(row, current):
                self._send(row, current, report)
        return report

    def _send(self, row: dict[str, Any], now: float, report: SendReport) -> None:
        try:
            message = prepare(self.hooks, self.render(row))
            if message is None:  # a plugin stopped it
                self._mark(row["id"], "stopped", last_error="stopped by mail_before_send")
                report.stopped += 1
                metrics.MAILS.labels(result="stopped").inc()
                return
            mailer = self.hooks.apply_filters(HOOK, self.transport)
            if not callable(mailer):
                raise RuntimeError("no mailer: set ECSHOP_SMTP_URL or ECSHOP_MAIL_DIR")
            mailer(message)
        except Exception as exc:  # SMTP down, a template's or a plugin's error: retry
            self._failed(row, now, f"{type(exc).__name__}: {exc}", report)
            return
        done: dict[str, Any] = {"sent_at": time.time(), "attempts": int(row["attempts"]) + 1}
        if row["kind"] in SECRET_KINDS:
            done["data_json"] = None  # a sent link is not kept in the table
        self._mark(row["id"], "sent", **done)
        report.sent += 1
        metrics.MAILS.labels(result="sent").inc()

    def _failed(self, row: dict[str, Any], now: float, error: str, report: SendReport) -> None:
        attempts = int(row["attempts"]) + 1
        if attempts >= self.max_attempts:
            self._mark(row["id"], "failed", attempts=attempts, last_error=error[:1000])
            report.failed += 1
            metrics.MAILS.labels(result="failed").inc()
            log.warning("mail %s (%s, order %s) failed %d times, given up: %s", row["id"],
                        row["kind"], row["order_number"], attempts, error)  # fmt: skip
            return
        self._mark(row["id"], "pending", attempts=attempts, last_error=error[:1000],
                   next_attempt_at=now + backoff(attempts))  # fmt: skip
        report.retried += 1
        metrics.MAILS.labels(result="retried").inc()
        log.warning("mail %s (%s, order %s) not sent, attempt %d: %s", row["id"], row["kind"],
                    row["order_number"], attempts, error)  # fmt: skip
