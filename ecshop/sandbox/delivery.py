"""Notification delivery for the sandbox gateway: signed POSTs, retries and fault switches.

A scheduler thread takes due deliveries from the queue in the state file and hands them
to a small pool of senders; a new event wakes it at once (no polling). Each attempt is
signed afresh (``Sandbox-Signature``) and recorded. A non-2xx answer or a network error
is retried with exponential backoff until the retry budget (attempts, counting the
first) is spent. Each sender keeps its connection to a notify address open between
attempts (HTTP/1.1 keep-alive), as a real provider's webhook senders do.

The fault switches are drawn from one seeded RNG when an event is raised, so a seed
gives the same pattern of faults for the same sequence of events:

- ``drop``: the first delivery is recorded as ``dropped`` and never sent, and is not
  retried either: the notification is lost for good, as when a gateway's webhook gets
  lost on the way. The shop learns of the payment only from the status API (its
  reconciler, or the customer's return).
- ``dup``: once delivered (2xx), the same event (same id and body) is queued again and
  delivered a second time, with its own retries.
- ``delay_ms``: every delivery attempt waits this long before it is sent.
- ``reorder``: each new event is held for a random time up to ``REORDER_WINDOW`` and
  every batch of due deliveries is shuffled, so arrival order differs from the order
  in which payments were settled.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
from collections.abc import MutableSequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from ecshop.sandbox.protocol import SIGNATURE_HEADER, sign_body
from ecshop.sandbox.schema import Fate, QueuedDelivery
from ecshop.sandbox.state import SandboxState

log = logging.getLogger("ecshop.sandbox_gateway")

REORDER_WINDOW = 0.5
"""Longest time (seconds) ``reorder`` holds a new event back."""
IDLE_WAIT = 1.0
"""Longest time (seconds) the scheduler sleeps when no one wakes it (a safety net)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Faults:
    """The fault switches. Probabilities are in [0, 1]."""

    drop: float = 0.0
    dup: float = 0.0
    delay_ms: int = 0
    reorder: bool = False
    seed: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a delivery is retried."""

    budget: int = 10
    base_ms: int = 200
    cap_ms: int = 30_000

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.base_ms * 2 ** (attempt - 1), self.cap_ms) / 1000.0


class FaultDice:
    """The seeded RNG behind the fault switches (thread-safe)."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()

    def fate(self) -> Fate:
        """Decide the faults for one new event."""
        with self._lock:
            drop = self._rng.random() < self.faults.drop
            dup = self._rng.random() < self.faults.dup
            hold = self._rng.uniform(0.0, REORDER_WINDOW) if self.faults.reorder else 0.0
        return Fate(delay=self.faults.delay_ms / 1000.0 + hold, drop=drop, dup=dup)

    def shuffle(self, items: MutableSequence[T]) -> None:
        with self._lock:
            self._rng.shuffle(items)


_Target = tuple[str, str, int | None]
"""Scheme, host and port of a notify URL."""

_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
"""How a kept-alive connection the receiver closed meanwhile fails on its next use."""


class _Connections(threading.local):
    """Each sender thread's open connections, by scheme and host."""

    def __init__(self) -> None:
        self.open: dict[_Target, http.client.HTTPConnection] = {}

    def get(self, target: _Target, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to ``target``, and whether it was used before."""
        conn = self.open.get(target)
        if conn is not None:
            return conn, True
        scheme, host, port = target
        kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = kind(host, port, timeout=timeout)
        self.open[target] = conn
        return conn, False

    def drop(self, target: _Target) -> None:
        conn = self.open.pop(target, None)
        if conn is not None:
            conn.close()


def _split(url: str) -> tuple[_Target, str]:
    """Where to connect for ``url`` and the path to ask; ValueError if it is no http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, parts.port), path


class Deliverer:
    """The background delivery worker of one gateway process."""

    def __init__(
        self,
        state: SandboxState,
        secret: str,
        dice: FaultDice,
        retry: RetryPolicy,
        *,
        senders: int = 8,
        timeout: float = 5.0,
    ) -> None:
        self.state = state
        self.secret = secret
        self.dice = dice
        self.retry = retry
        self.timeout = timeout
        self._max_in_flight = senders * 4
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="sandbox-send")
        self._connections = _Connections()
        self._cond = threading.Condition()
        self._kicked = False
        self._stopping = False
        self._in_flight: set[int] = set()
        self._thread = threading.Thread(target=self._run, name="sandbox-deliver", daemon=True)

    def start(self) -> Deliverer:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look at the queue now (a new event was raised or an attempt finished)."""
        with self._cond:
            self._kicked = True
            self._cond.notify()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop scheduling, let attempts under way finish; the queue stays for next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- scheduling -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                self._kicked = False
                busy = list(self._in_flight)
            try:
                self._dispatch(busy)
                wait = self._wait_time()
            except Exception:  # a broken pass must not end delivery for good
                log.exception("delivery scheduling failed")
                wait = 1.0
            with self._cond:
                self._cond.wait_for(lambda: self._kicked or self._stopping, timeout=wait)

    def _dispatch(self, busy: list[int]) -> None:
        room = self._max_in_flight - len(busy)
        if room <= 0:
            return
        items = self.state.due(time.time(), busy, limit=room)
        if self.dice.faults.reorder:
            self.dice.shuffle(items)
        for item in items:
            with self._cond:
                self._in_flight.add(item.id)
            self._pool.submit(self._deliver, item)

    def _wait_time(self) -> float:
        """Seconds until the earliest delivery that is not already being sent is due."""
        with self._cond:
            busy = list(self._in_flight)
            full = len(busy) >= self._max_in_flight
        # NOTE: a delivery in flight is not waited for: its sender wakes us if it queues
        # a retry or a duplicate, or frees a place when every place was taken. Counting
        # it (its due time is past) would make this loop look at the queue every 10 ms
        # for as long as any delivery is under way.
        nxt = None if full else self.state.next_due(busy)
        if nxt is None:
            return IDLE_WAIT
        return min(IDLE_WAIT, max(0.0, nxt - time.time()))

    # -- sending ----------------------------------------------------------------------
    def _deliver(self, item: QueuedDelivery) -> None:
        queued_again = True  # on an unexpected failure, let the scheduler look again
        try:
            queued_again = self._attempt(item)
        except Exception:
            log.exception("delivery of %s failed unexpectedly", item.event_id)
        finally:
            with self._cond:
                was_full = len(self._in_flight) >= self._max_in_flight
                self._in_flight.discard(item.id)
            if queued_again or was_full:
                self.wake()

    def _attempt(self, item: QueuedDelivery) -> bool:
        """Make one attempt and record it; whether a retry or a duplicate was queued."""
        delay = self.dice.faults.delay_ms / 1000.0
        if item.drop_it and item.attempt == 1 and not item.duplicate:
            self.state.record_attempt(item, "dropped")
            return False
        status, error = self._post(item)
        now = time.time()
        if status is not None and 200 <= status < 300:
            again = now + delay if item.dup_it and not item.duplicate else None
            self.state.record_attempt(item, "delivered", http_status=status, duplicate_at=again)
            return again is not None
        retry_at = None
        if item.attempt < self.retry.budget:
            retry_at = now + self.retry.backoff(item.attempt) + delay
        outcome = "failed" if status is not None else "error"
        self.state.record_attempt(item, outcome, http_status=status, error=error, retry_at=retry_at)
        return retry_at is not None

    def _post(self, item: QueuedDelivery) -> tuple[int | None, str | None]:
        """POST the event; the HTTP status, or None and the reason it could not be sent.

        A redirect is an answer like any other non-2xx: it is not followed.
        """
        try:
            target, path = _split(item.notify_url)
        except ValueError as exc:
            return None, f"ValueError: {exc}"[:300]
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ecshop-sandbox-gateway",
            SIGNATURE_HEADER: sign_body(item.body, self.secret),
        }
        while True:
            conn, reused = self._connections.get(target, self.timeout)
            try:
                conn.request("POST", path, item.body, headers)
                resp = conn.getresponse()
                resp.read(65536)
            except (OSError, http.client.HTTPException) as exc:
                self._connections.drop(target)
                # NOTE: a kept-alive connection the receiver closed while idle fails on
                # reuse before anything was answered; that is no attempt, so send again
                # on a new one. Any other failure is the attempt's outcome.
                if reused and isinstance(exc, _STALE):
                    continue
                return None, f"{type(exc).__name__}: {exc}"[:300]
            if resp.will_close or not resp.isclosed():
                # closed by the receiver, or a body longer than we read
                self._connections.drop(target)
            return int(resp.status), None
