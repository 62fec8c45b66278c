"""Maintenance mode, shared by every worker and host through the ``settings`` table.

While it is on, storefront pages and the storefront API answer 503 with
``Retry-After``; payment notifications and returns, the admin API, health and metrics
keep working, so payments in flight during a migration still land.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ecshop.store import Store

KEY = "maintenance"
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Maintenance:
    on: bool
    message: str = ""
    retry_after: int = 300


def read(store: Store) -> Maintenance:
    with store.read() as tx:
        row = tx.one("SELECT value FROM settings WHERE name = ?", (KEY,))
    if row is None:
        return Maintenance(False)
    data = json.loads(row["value"])
    return Maintenance(
        bool(data.get("on")), str(data.get("message", "")), int(data.get("retry_after", 300))
    )


def write(store: Store, state: Maintenance) -> None:
    value = json.dumps({"on": state.on, "message": state.message, "retry_after": state.retry_after})
    now = time.time()
    with store.tx() as tx:
        if not tx.execute(
            "UPDATE settings SET value = ?, updated_at = ? WHERE name = ?", (value, now, KEY)
        ):
            tx.execute(
                "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)", (KEY, value, now)
            )


class MaintenanceSwitch:
    """Reads the switch at most once a second per process (a cheap check per request)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._state = Maintenance(False)
        self._read_at = 0.0

    def current(self) -> Maintenance:
        now = time.monotonic()
        if now - self._read_at > CACHE_SECONDS:
            self._state = read(self.store)
            self._read_at = now
        return self._state
