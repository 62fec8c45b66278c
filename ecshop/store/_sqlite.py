"""SQLite, the embedded default: WAL, ``synchronous=FULL``, foreign keys on."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ecshop.store._base import DuplicateKey, Store, StoreBusy, Tx


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(self, url: str, *, lock_timeout: int = 5) -> None:
        super().__init__(url, lock_timeout=lock_timeout)
        self.path = url[len("sqlite:///") :]
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    def _connect(self) -> Any:
        # NOTE: isolation_level=None hands transaction control to us: every write
        # transaction starts with BEGIN IMMEDIATE, so two writers never deadlock on a
        # read-to-write lock upgrade; the second waits up to busy_timeout instead.
        conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=self.lock_timeout, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(self.lock_timeout * 1000)}")
        return conn

    def _begin(self, conn: Any, write: bool) -> Any:
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        return conn

    def translate_error(self, exc: Exception) -> Exception:
        if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc).upper():
            return DuplicateKey(str(exc))
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower():
            return StoreBusy("the database is busy, try again shortly", retry_after=2)
        return exc

    def server_version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def _has_table(self, tx: Tx, name: str) -> bool:
        return (
            tx.one("SELECT name FROM sqlite_master WHERE type='table' AND name=?", (name,))
            is not None
        )
