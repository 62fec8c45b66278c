"""SQLite, the embedded default: WAL, ``synchronous=FULL``, foreign keys on."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from ecshop.files import create_private, private_dir
from ecshop.store._base import DuplicateKey, Store, StoreBusy, Tx

# A writer holds the lock for its statements and one fsync, well under a millisecond
# here, so a waiter looks again after tens of µs at first: a sleep that overshoots the
# release leaves the database idle while both wait. Past LONG_WAIT (a checkpoint, a big
# import) it backs off to MAX_PAUSE.
FIRST_PAUSE = 0.00002
SHORT_PAUSE = 0.0002
LONG_WAIT = 0.005
MAX_PAUSE = 0.002


class WriterLock:
    """One writer at a time across the threads and processes sharing a database file.

    SQLite's own busy handler polls with sleeps of up to 100 ms, which under load turns
    a queue of writers into long tails. This lock hands over quickly: a thread lock
    inside the process, then ``flock`` on a side file between processes, tried again
    every 20–200 µs at first and every 2 ms past 5 ms of waiting, until the lock timeout
    (the kernel drops it if its holder dies).
    SQLite's own lock stays underneath for other programs.
    """

    def __init__(self, path: str | None, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._pid = -1
        self._thread_lock = threading.Lock()
        self._fd = -1

    def _file(self) -> int:
        if self._pid != os.getpid():  # a forked child gets its own lock and descriptor
            self._thread_lock = threading.Lock()
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600) if self.path else -1
            self._pid = os.getpid()
        return self._fd

    def acquire(self) -> None:
        fd = self._file()
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise StoreBusy("the database is busy, try again shortly", retry_after=2)
        if fd < 0:
            return
        started = time.monotonic()
        pause = FIRST_PAUSE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= self.timeout:
                    self._thread_lock.release()
                    raise StoreBusy(
                        "the database is busy, try again shortly", retry_after=2
                    ) from None
                time.sleep(pause)
                pause = min(pause * 1.2, SHORT_PAUSE if waited < LONG_WAIT else MAX_PAUSE)
            except BaseException:
                self._thread_lock.release()
                raise

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(self, url: str, *, lock_timeout: int = 5, group_commit: bool = False) -> None:
        super().__init__(url, lock_timeout=lock_timeout, group_commit=group_commit)
        self.path = url[len("sqlite:///") :]
        if self.path != ":memory:":
            private_dir(Path(self.path).parent)
        self._writer = WriterLock(
            None if self.path == ":memory:" else self.path + "-writer", lock_timeout
        )

    def _connect(self) -> Any:
        if self.path != ":memory:":
            # NOTE: SQLite gives the -wal and -shm files the mode of the database
            # file, so creating that one 0600 keeps all three private.
            create_private(self.path)
        # NOTE: isolation_level=None hands transaction control to us: every write
        # transaction starts with BEGIN IMMEDIATE, so two writers never deadlock on a
        # read-to-write lock upgrade; the second waits up to busy_timeout instead.
        conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=self.lock_timeout, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute(f"PRAGMA busy_timeout={int(self.lock_timeout * 1000)}")
        return conn

    def _begin(self, conn: Any, write: bool) -> Any:
        if write:
            self._writer.acquire()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._writer.release()
                raise
        else:
            conn.execute("BEGIN")
        return conn

    def _end(self, write: bool) -> None:
        if write:
            self._writer.release()

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
