"""Notification delivery for the sandbox gateway: signed POSTs, retries and fault switches.

A scheduler thread takes due deliveries from the queue in the state file and hands them
to a small pool of senders. Each attempt is signed afresh (``Sandbox-Signature``) and
recorded. A non-2xx answer or a network error is retried with exponential backoff until
the retry budget (attempts, counting the first) is spent.

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
import urllib.error
import urllib.request
from collections.abc import MutableSequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ecshop.sandbox.protocol import SIGNATURE_HEADER, sign_body
from ecshop.sandbox.schema import Fate, QueuedDelivery
from ecshop.sandbox.state import SandboxState

log = logging.getLogger("ecshop.sandbox_gateway")

REORDER_WINDOW = 0.5
"""Longest time (seconds) ``reorder`` holds a new event back."""

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a 2xx: report it instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


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
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
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
        nxt = self.state.next_due()
        if nxt is None:
            return 1.0
        # NOTE: a due item may be in flight; its sender wakes us when it is done.
        return min(1.0, max(0.01, nxt - time.time()))

    # -- sending ----------------------------------------------------------------------
    def _deliver(self, item: QueuedDelivery) -> None:
        try:
            self._attempt(item)
        except Exception:
            log.exception("delivery of %s failed unexpectedly", item.event_id)
        finally:
            with self._cond:
                self._in_flight.discard(item.id)
            self.wake()

    def _attempt(self, item: QueuedDelivery) -> None:
        delay = self.dice.faults.delay_ms / 1000.0
        if item.drop_it and item.attempt == 1 and not item.duplicate:
            self.state.record_attempt(item, "dropped")
            return
        status, error = self._post(item)
        now = time.time()
        if status is not None and 200 <= status < 300:
            again = now + delay if item.dup_it and not item.duplicate else None
            self.state.record_attempt(item, "delivered", http_status=status, duplicate_at=again)
            return
        retry_at = None
        if item.attempt < self.retry.budget:
            retry_at = now + self.retry.backoff(item.attempt) + delay
        outcome = "failed" if status is not None else "error"
        self.state.record_attempt(item, outcome, http_status=status, error=error, retry_at=retry_at)

    def _post(self, item: QueuedDelivery) -> tuple[int | None, str | None]:
        """POST the event; the HTTP status, or None and the reason it could not be sent."""
        request = urllib.request.Request(
            item.notify_url,
            data=item.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "ecshop-sandbox-gateway",
                SIGNATURE_HEADER: sign_body(item.body, self.secret),
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                resp.read(65536)
                return int(resp.status), None
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code), None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
