"""Login throttling: at most ``limit`` failed attempts per key (an account, a client
address) in a sliding window, kept in the ``login_attempts`` table so every worker and
every shop host sees the same count.

An attempt is written *before* the password is checked and counted after, so attempts
made at the same moment by several workers cannot all slip under the limit: of the
attempts that see the count, at most ``limit`` are checked. A refused attempt and a
successful one take their rows back; a failed one leaves them to count. Keys are stored
as SHA-256, so the table names no email address.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ecshop.errors import RateLimited
from ecshop.store import Store

WINDOW = 15 * 60.0
LIMIT = 10
#: one attempt in this many also deletes the rows older than the window
SWEEP_EVERY = 64


class LoginThrottled(RateLimited):
    """Too many failed logins for this account or from this address."""

    code = "login_throttled"


def key(kind: str, value: str) -> str:
    """The stored key of ``value`` (an email, an address) of ``kind``."""
    return hashlib.sha256(f"{kind}\n{value}".encode()).hexdigest()


@dataclass
class Attempt:
    """One login attempt in progress: its id and the keys it counts against."""

    id: str
    keys: tuple[str, ...]


class Throttle:
    """Counts failed logins in ``store``.

    Args:
        window: seconds a failure counts.
        limit: failures allowed per key in the window; the next attempt is refused
            without looking at the password.
    """

    def __init__(self, store: Store, *, window: float = WINDOW, limit: int = LIMIT,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.store = store
        self.window = window
        self.limit = limit
        self.clock = clock
        self._attempts = 0

    def begin(self, keys: Iterable[str]) -> Attempt:
        """Start an attempt against ``keys``.

        Raises:
            LoginThrottled: a key has had ``limit`` failures in the window (with the
                seconds until the oldest of them stops counting).
        """
        attempt = Attempt(secrets.token_hex(16), tuple(dict.fromkeys(keys)))
        now = self.clock()
        with self.store.tx() as tx:
            for k in attempt.keys:
                tx.execute("INSERT INTO login_attempts (scope_key, attempt, at) VALUES (?, ?, ?)",
                           (k, attempt.id, now))  # fmt: skip
        wait = 0.0
        with self.store.read() as tx:
            for k in attempt.keys:
                rows = tx.query(
                    "SELECT at FROM login_attempts WHERE scope_key = ? AND at > ? "
                    "ORDER BY at, attempt", (k, now - self.window),
                )  # fmt: skip
                if len(rows) > self.limit:
                    oldest = float(rows[len(rows) - self.limit - 1]["at"])
                    wait = max(wait, oldest + self.window - now)
        self._attempts += 1
        if self._attempts % SWEEP_EVERY == 0:
            self.sweep()
        if wait > 0:
            self.forget(attempt)
            raise LoginThrottled(
                "too many failed logins: wait a while and try again",
                retry_after=max(1, int(wait) + 1),
            )
        return attempt

    def forget(self, attempt: Attempt) -> None:
        """Take the attempt's rows back (it succeeded, or was never checked)."""
        with self.store.tx() as tx:
            for k in attempt.keys:
                tx.execute("DELETE FROM login_attempts WHERE scope_key = ? AND attempt = ?",
                           (k, attempt.id))  # fmt: skip

    def failures(self, k: str) -> int:
        """Failures counted against key ``k`` now."""
        with self.store.read() as tx:
            return int(tx.scalar("SELECT COUNT(*) FROM login_attempts WHERE scope_key = ? AND at > ?",
                                 (k, self.clock() - self.window)))  # fmt: skip

    def sweep(self) -> int:
        with self.store.tx() as tx:
            return tx.execute("DELETE FROM login_attempts WHERE at <= ?",
                              (self.clock() - self.window,))  # fmt: skip
