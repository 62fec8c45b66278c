"""The dialect-neutral part of the store: transactions, rows, migrations."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any, TypeVar

from ecshop import metrics
from ecshop.errors import StoreError, Unavailable
from ecshop.redact import mask

T = TypeVar("T")
Row = dict[str, Any]
Params = Sequence[Any]


class DuplicateKey(StoreError):
    """A unique or primary key already holds this value."""

    code = "duplicate_key"
    status = 409


class StoreBusy(Unavailable):
    """A lock wait timed out or a deadlock was broken: retry later."""

    code = "database_busy"


class SchemaTooNew(StoreError):
    """The database schema is newer than this version of ecshop knows."""

    code = "schema_too_new"


class _Soon:
    """The rows of a query sent ahead (see :meth:`Tx.query_soon`), once they are read."""

    __slots__ = ("error", "rows")

    def __init__(self) -> None:
        self.rows: list[Row] | None = None
        self.error: Exception | None = None


class Tx:
    """One open transaction. Use it only inside ``with store.tx() as tx``."""

    def __init__(self, store: Store, conn: Any) -> None:
        self._store = store
        self._conn = conn
        self.dialect = store.dialect
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._inflight: _Soon | None = None
        self._failed: Exception | None = None  # a deferred write failed: never commit

    def defer(self, sql: str, params: Params = ()) -> None:
        """Queue a write whose result nobody reads, to be sent with the next statement.

        Where the dialect can batch statements (MySQL), queued writes travel in one
        round trip together with the next statement or the ``COMMIT``; elsewhere the
        write runs at once. Either way it is part of this transaction, and an error it
        raises (a duplicate key, say) fails the transaction before it commits: it is
        raised by the next statement or the commit, and every statement after it raises
        too, so a caller that catches it cannot commit the rest by mistake.
        """
        if not self._store.pipelined:
            try:
                self.execute(sql, params)
            except Exception as exc:
                self._failed = exc
                raise
            return
        self._pending.append((self._store.prepare(sql), tuple(params)))

    def query_soon(self, sql: str, params: Params = ()) -> Callable[[], list[Row]]:
        """Send a SELECT now; return a function that waits for its rows.

        Where the dialect can (MySQL), the server works on the query while the caller
        does something else, such as a call to another server; any other statement on
        this transaction first waits for it. Elsewhere the query runs at once.
        """
        if not self._store.pipelined:
            done = self.query(sql, params)
            return lambda: done
        self._settle()
        if self._pending:
            self.flush()
        soon = _Soon()
        try:
            self._store.send_query(self._conn, self._store.prepare(sql), tuple(params))
        except Exception as exc:
            raise self._store.translate_error(exc) from exc
        self._inflight = soon

        def rows() -> list[Row]:
            if soon is self._inflight:
                self._settle()
            if soon.error is not None:
                raise soon.error
            assert soon.rows is not None
            return soon.rows

        return rows

    def _settle(self) -> None:
        """Read the answer of the query sent ahead, if one is on its way."""
        soon, self._inflight = self._inflight, None
        if soon is None:
            return
        try:
            soon.rows = self._store.read_query(self._conn)
        except Exception as exc:
            soon.error = self._store.translate_error(exc)

    @property
    def pending(self) -> bool:
        """True while deferred writes wait to be sent."""
        return bool(self._pending)

    def flush(self, then: str | None = None) -> None:
        """Send the queued writes now (followed by ``then``, if given) in one round trip."""
        self._settle()
        if self._failed is not None:
            raise StoreError("an earlier write of this transaction failed") from self._failed
        if not self._pending and then is None:
            return
        batch, self._pending = self._pending, []
        cur = self._conn.cursor()
        try:
            self._store.run_batch(cur, batch, then)
        except Exception as exc:
            error = self._store.translate_error(exc)
            self._failed = error
            if error is exc:
                raise
            raise error from exc
        finally:
            cur.close()

    def discard(self) -> None:
        """Forget the queued writes and any failure among them, and read an answer left
        on the wire: for a rollback (to a savepoint) that undoes them."""
        self._pending = []
        self._failed = None
        self._settle()

    def _run(self, sql: str, params: Params) -> Any:
        if self._pending or self._inflight or self._failed:
            self.flush()
        cur = self._conn.cursor()
        try:
            cur.execute(self._store.prepare(sql), tuple(params))
        except Exception as exc:
            cur.close()
            raise self._store.translate_error(exc) from exc
        return cur

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        cur = self._run(sql, params)
        count = int(cur.rowcount)
        cur.close()
        return count

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT; return the new row's auto-increment id."""
        cur = self._run(sql, params)
        rowid = int(cur.lastrowid or 0)
        cur.close()
        return rowid

    def executemany(self, sql: str, rows: Sequence[Params]) -> int:
        if not rows:
            return 0
        if self._pending or self._inflight or self._failed:
            self.flush()
        cur = self._conn.cursor()
        try:
            cur.executemany(self._store.prepare(sql), [tuple(r) for r in rows])
        except Exception as exc:
            cur.close()
            raise self._store.translate_error(exc) from exc
        count = int(cur.rowcount)
        cur.close()
        return count

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a SELECT; return every row as a dict."""
        cur = self._run(sql, params)
        names = [d[0] for d in cur.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        cur.close()
        return rows

    def iterate(
        self, sql: str, params: Params = (), size: int = 1000
    ) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        """Run a SELECT; return its column names and an iterator over its rows (tuples)."""
        cur = self._run(sql, params)
        names = [d[0] for d in cur.description or ()]

        def rows() -> Iterator[tuple[Any, ...]]:
            try:
                while True:
                    chunk = cur.fetchmany(size)
                    if not chunk:
                        return
                    yield from (tuple(r) for r in chunk)
            finally:
                cur.close()

        return names, rows()

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """Run a SELECT; return its first row or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Params = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))


class _Work:
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[Tx], Any]) -> None:
        self.work = work
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """Leader/follower group commit: one durable commit for many threads' transactions."""

    MAX_BATCH = 64

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cond = threading.Condition()
        self._queue: list[_Work] = []
        self._leading = False
        self.batches = 0
        self.items = 0

    def submit(self, work: Callable[[Tx], T]) -> T:
        item = _Work(work)
        with self._cond:
            self._queue.append(item)
            while True:
                while self._leading and not item.done:
                    self._cond.wait()
                if item.done:
                    break
                self._leading = True
                batch = self._queue[: self.MAX_BATCH]
                del self._queue[: self.MAX_BATCH]
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._leading = False
                    self._cond.notify_all()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[no-any-return]

    def _run(self, batch: list[_Work]) -> None:
        try:
            with self.store.tx() as tx:
                for n, item in enumerate(batch):
                    tx.execute(f"SAVEPOINT w{n}")
                    try:
                        item.result = item.work(tx)
                        tx.flush()  # NOTE: a deferred write's error belongs to its piece
                    except Exception as exc:
                        item.error = exc
                        tx.discard()  # the piece's own writes go with its savepoint
                        tx.execute(f"ROLLBACK TO SAVEPOINT w{n}")
                    tx.execute(f"RELEASE SAVEPOINT w{n}")
            self.batches += 1
            self.items += len(batch)
            metrics.GROUP_COMMITS.inc()
            metrics.GROUP_COMMIT_WRITES.inc(len(batch))
        except BaseException as exc:
            # NOTE: the commit (or the transaction itself) failed: nothing of the batch
            # is durable, so every piece fails with that error.
            for item in batch:
                item.result, item.error = None, exc
        finally:
            for item in batch:
                item.done = True


class Store:
    """Base class of the SQLite and MySQL stores."""

    dialect = "generic"
    # True where statements can be sent ahead and several travel in one round trip
    # (Tx.defer, Tx.query_soon).
    pipelined = False

    def __init__(self, url: str, *, lock_timeout: int = 5, group_commit: bool = False) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self._local = threading.local()
        self.group: GroupCommit | None = GroupCommit(self) if group_commit else None

    # -- dialect hooks --------------------------------------------------------------
    def _connect(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _begin(self, conn: Any, write: bool) -> Any:  # pragma: no cover - abstract
        """Open a transaction on ``conn``; return the connection to use (it may be new)."""
        raise NotImplementedError

    def _end(self, write: bool) -> None:
        """Called once a transaction opened by :meth:`_begin` is over, whatever happened."""

    def prepare(self, sql: str) -> str:
        return sql

    def send_query(self, conn: Any, sql: str, params: tuple[Any, ...]) -> None:
        """Send one prepared SELECT without waiting (dialects that are ``pipelined``)."""
        raise NotImplementedError  # pragma: no cover

    def read_query(self, conn: Any) -> list[Row]:
        """Wait for the answer of :meth:`send_query`; return its rows."""
        raise NotImplementedError  # pragma: no cover

    def run_batch(
        self, cur: Any, batch: list[tuple[str, tuple[Any, ...]]], then: str | None
    ) -> None:  # pragma: no cover - only dialects that are ``pipelined`` queue writes
        """Run the prepared statements of ``batch`` (and ``then``) in one round trip."""
        raise NotImplementedError

    def _commit(self, conn: Any, tx: Tx) -> None:
        """Commit ``tx``: its queued writes and the ``COMMIT`` go together."""
        tx.flush()
        conn.commit()

    def translate_error(self, exc: Exception) -> Exception:
        return exc

    def server_version(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        """The URL without its password, for logs and ``ecshop info``."""
        return mask(self.url)

    # -- connections ----------------------------------------------------------------
    def connection(self) -> Any:
        """This thread's connection, reopened after a fork."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = self._connect()
            self._local.conn = conn
            self._local.pid = os.getpid()
            self._local.depth = 0
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            try:
                conn.close()
            except Exception:
                pass
        self._local.conn = None

    def _drop_connection(self) -> None:
        self.close()

    @contextmanager
    def tx(self, *, write: bool = True) -> Iterator[Tx]:
        """A transaction: commit on success, roll back on any exception.

        A ``tx()`` inside another on the same thread joins the outer one.
        """
        conn = self.connection()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield self._local.tx
            finally:
                self._local.depth -= 1
            return
        try:
            conn = self._begin(conn, write)
        except Exception as exc:
            self._drop_connection()
            raise self.translate_error(exc) from exc
        try:
            tx = Tx(self, conn)
            self._local.tx = tx
            self._local.depth = 1
            try:
                yield tx
            except BaseException:
                self._local.depth = 0
                try:
                    tx.discard()  # an answer left unread would block the connection
                    conn.rollback()
                except Exception:
                    self._drop_connection()
                raise
            self._local.depth = 0
            try:
                self._commit(conn, tx)
            except Exception as exc:
                try:
                    conn.rollback()
                except Exception:
                    pass
                self._drop_connection()
                error = self.translate_error(exc)
                if error is exc:  # a deferred write's error, already translated
                    raise
                raise error from exc
        finally:
            self._end(write)

    def read(self) -> Any:
        """A read-only transaction (a consistent snapshot where the dialect gives one)."""
        return self.tx(write=False)

    def grouped(self, work: Callable[[Tx], T]) -> T:
        """Run ``work(tx)`` in a write transaction, perhaps shared with other threads' work.

        With group commit on, concurrent callers in this process queue their work; one of
        them (the leader) runs the whole queue in one transaction, each piece inside its
        own savepoint, and commits once. Each caller returns (or raises what its own
        work raised) only after that commit, so its change is durable when it returns;
        a piece that raises is rolled back to its savepoint without touching the others.
        Off, it is ``with store.tx() as tx: return work(tx)``.
        """
        if self.group is None:
            with self.tx() as tx:
                return work(tx)
        return self.group.submit(work)

    # -- migrations -----------------------------------------------------------------
    def migrations(self) -> list[tuple[int, str]]:
        """Every migration this code knows for this dialect, as ``(version, sql)``."""
        folder = resources.files("ecshop.store") / "migrations" / self.dialect
        found = []
        for entry in folder.iterdir():
            if entry.name.endswith(".sql"):
                found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
        return sorted(found)

    def schema_version(self) -> int:
        """The schema version of the database, 0 when it has none yet."""
        with self.tx(write=False) as tx:
            if not self._has_table(tx, "schema_version"):
                return 0
            return int(tx.scalar("SELECT MAX(version) FROM schema_version") or 0)

    def _has_table(self, tx: Tx, name: str) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def migrate(self) -> list[int]:
        """Bring the schema up to date; return the versions applied (empty if none).

        Raises:
            SchemaTooNew: the database was migrated by a newer ecshop.
        """
        known = self.migrations()
        latest = known[-1][0] if known else 0
        current = self.schema_version()
        if current > latest:
            raise SchemaTooNew(
                f"database schema is version {current}, this ecshop knows up to {latest}; "
                "upgrade ecshop before using this database",
                schema_version=current,
                known_version=latest,
            )
        applied = []
        for version, sql in known:
            if version <= current:
                continue
            self._apply(version, sql)
            applied.append(version)
        return applied

    def _apply(self, version: int, sql: str) -> None:
        with self.tx() as tx:
            for statement in split_sql(sql):
                tx.execute(statement)
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version, time.time()),
            )


def split_sql(script: str) -> list[str]:
    """Split a migration file into statements (one per ``;`` at the end of a line)."""
    statements, current = [], []
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        if stripped.endswith(";"):
            statements.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements
