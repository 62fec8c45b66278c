"""MySQL/MariaDB through mysqlclient: InnoDB, utf8mb4, strict mode, READ COMMITTED."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ecshop.errors import ConfigError
from ecshop.redact import mask
from ecshop.store._base import DuplicateKey, Store, StoreBusy, Tx

# MySQL error numbers we map onto our own errors.
ER_DUP_ENTRY = 1062
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
CR_SERVER_GONE = (2006, 2013)
IDLE_CHECK_SECONDS = 10.0
_PREPARED: dict[str, str] = {}

SQL_MODE = "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"


def connect_args(url: str) -> dict[str, Any]:
    """mysqlclient's ``connect()`` keywords from ``mysql://user:pw@host:port/db?unix_socket=``."""
    parts = urlsplit(url)
    args: dict[str, Any] = {
        "user": unquote(parts.username or "root"),
        "passwd": unquote(parts.password or ""),
        "db": parts.path.lstrip("/") or "ecshop",
        "charset": "utf8mb4",
        "use_unicode": True,
        "autocommit": False,
    }
    query = parse_qs(parts.query)
    if "unix_socket" in query:
        args["unix_socket"] = query["unix_socket"][0]
    else:
        args["host"] = parts.hostname or "127.0.0.1"
        args["port"] = parts.port or 3306
    return args


class MySQLStore(Store):
    dialect = "mysql"
    pipelined = True

    def __init__(self, url: str, *, lock_timeout: int = 5, group_commit: bool = False) -> None:
        super().__init__(url, lock_timeout=lock_timeout, group_commit=group_commit)
        self.args = connect_args(url)

    def _connect(self) -> Any:
        try:
            import MySQLdb
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError(
                "ECSHOP_DATABASE_URL: mysql needs mysqlclient: pip install 'ecshop[mysql]'"
            ) from exc
        from MySQLdb.constants import CLIENT

        try:
            # NOTE: MULTI_STATEMENTS lets a transaction's deferred writes and its COMMIT
            # travel in one round trip (Tx.defer); mysqlclient turns it on by default
            # anyway. Every value goes through mysqlclient's escaping, and identifiers
            # are ecshop's own (an import checks its column names against the table).
            conn = MySQLdb.connect(**self.args, client_flag=CLIENT.MULTI_STATEMENTS)
        except MySQLdb.Error as exc:
            raise StoreBusy(
                mask(f"cannot connect to the database {self.describe()}: {exc}"), retry_after=5
            ) from exc
        cur = conn.cursor()
        cur.execute(f"SET SESSION sql_mode='{SQL_MODE}'")
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cur.execute(f"SET SESSION innodb_lock_wait_timeout={int(self.lock_timeout)}")
        cur.execute(f"SET SESSION lock_wait_timeout={int(self.lock_timeout)}")
        cur.execute("SET NAMES utf8mb4 COLLATE utf8mb4_bin")
        cur.close()
        conn.commit()
        return conn

    def _begin(self, conn: Any, write: bool) -> Any:
        # NOTE: autocommit is off and the isolation level is set per session, so the
        # first statement opens the transaction: no START TRANSACTION round trip. A
        # connection idle for a while is pinged first and replaced if the server
        # dropped it, while no transaction is open and nothing can be lost.
        now = time.monotonic()
        if now - getattr(self._local, "used_at", 0.0) > IDLE_CHECK_SECONDS:
            import MySQLdb

            try:
                conn.ping()
            except MySQLdb.Error:
                self._drop_connection()
                conn = self.connection()
        self._local.used_at = now
        return conn

    def prepare(self, sql: str) -> str:
        prepared = _PREPARED.get(sql)
        if prepared is None:
            prepared = sql.replace("%", "%%").replace("?", "%s")
            if len(_PREPARED) < 4096:
                _PREPARED[sql] = prepared
        return prepared

    def send_query(self, conn: Any, sql: str, params: tuple[Any, ...]) -> None:
        cur = conn.cursor()
        try:
            query = cur.mogrify(sql, params)  # mysqlclient's own escaping of every value
        finally:
            cur.close()
        conn.send_query(query.encode("utf-8"))

    def read_query(self, conn: Any) -> list[dict[str, Any]]:
        conn.read_query_result()
        result = conn.store_result()
        return [] if result is None else list(result.fetch_row(maxrows=0, how=1))

    def run_batch(
        self, cur: Any, batch: list[tuple[str, tuple[Any, ...]]], then: str | None
    ) -> None:
        """The statements joined by ``;``, sent at once; the server stops at the first error."""
        sql = ";\n".join([*(stmt for stmt, _ in batch), *([then] if then else [])])
        cur.execute(sql, tuple(value for _, params in batch for value in params))
        while cur.nextset():  # each statement's result, and the error of a failed one
            pass

    def _commit(self, conn: Any, tx: Tx) -> None:
        if tx.pending:
            tx.flush(then="COMMIT")
        else:
            super()._commit(conn, tx)

    def translate_error(self, exc: Exception) -> Exception:
        import MySQLdb

        if isinstance(exc, MySQLdb.Error) and exc.args:
            errno = exc.args[0]
            if errno == ER_DUP_ENTRY:
                return DuplicateKey(str(exc.args[1:]))
            if errno in (ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK):
                return StoreBusy("the database is busy, try again shortly", retry_after=2)
            if errno in CR_SERVER_GONE:
                self._drop_connection()
                return StoreBusy("lost the database connection, try again", retry_after=2)
        return exc

    def server_version(self) -> str:
        with self.tx(write=False) as tx:
            return str(tx.scalar("SELECT VERSION()"))

    def _has_table(self, tx: Tx, name: str) -> bool:
        return (
            tx.one(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = ?",
                (name,),
            )
            is not None
        )
