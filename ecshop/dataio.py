"""Export and import: the whole shop as one portable file, for backups and server moves.

The file is gzip-compressed JSON lines: a header (format, schema version, source
dialect), then per table a line naming its columns, one JSON array per row and an end
line with the row count, then a footer with every count. It is written from one
consistent snapshot (a read transaction on SQLite, ``WITH CONSISTENT SNAPSHOT`` on
MariaDB), so every order has its lines and every hold its order. It is dialect-neutral:
an export of the embedded SQLite shop imports into MariaDB and back.

An import goes into an empty database at the same schema version, in one transaction:
a truncated or damaged file changes nothing, and neither does a row that breaks the
shop's rules (``ecshop._rows``: the API's own field rules): the error names its table,
row and field.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ecshop._rows import RowChecker
from ecshop.errors import BadRequest, Conflict, ShopError
from ecshop.files import open_private
from ecshop.store import Store, Tx

FORMAT = "ecshop-export"
FORMAT_VERSION = 1
# In foreign-key order. Leases, sessions (carts, CSRF tokens), password-reset links and
# login attempts are runtime state and are not carried over: after a move, shoppers
# start with a fresh session (members log in again).
TABLES = ("settings", "products", "stock", "stock_changes", "stock_holds", "members", "orders",
          "order_lines", "order_fees", "order_taxes", "order_events", "payments_journal",
          "order_refunds", "outbox", "idempotency_keys", "admin_users", "audit_log")  # fmt: skip
CHUNK = 500


@contextmanager
def snapshot(store: Store) -> Iterator[Tx]:
    """A read transaction that sees one moment of the whole database."""
    with store.read() as tx:
        if store.dialect == "mysql":
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            tx.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        else:
            # NOTE: a deferred SQLite transaction takes its snapshot at the first read.
            tx.scalar("SELECT COUNT(*) FROM schema_version")
        yield tx


def export(store: Store, path: str | Path) -> dict[str, int]:
    """Write the shop to ``path`` (the file appears whole or not at all, mode 0600: it
    holds customers' data); return the row count per table."""
    counts: dict[str, int] = {}
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        with (
            snapshot(store) as tx,
            open_private(partial) as raw,
            gzip.open(raw, "wt", encoding="utf-8") as out,
        ):
            version = int(tx.scalar("SELECT MAX(version) FROM schema_version") or 0)
            _line(out, {"format": FORMAT, "format_version": FORMAT_VERSION, "schema_version": version,
                        "dialect": store.dialect, "created_at": time.time()})  # fmt: skip
            for table in TABLES:
                counts[table] = _export_table(tx, table, out)
            _line(out, {"end_of_export": True, "counts": counts})
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return counts


def _line(out: IO[str], item: Any) -> None:
    out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")


def _export_table(tx: Tx, table: str, out: IO[str]) -> int:
    names, rows = tx.iterate(f"SELECT * FROM {table}")
    _line(out, {"table": table, "columns": names})
    count = 0
    for row in rows:
        _line(out, list(row))
        count += 1
    _line(out, {"end": table, "rows": count})
    return count


def read_header(path: str | Path) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as src:
        return _header(src)


def _header(src: IO[str]) -> dict[str, Any]:
    try:
        header = json.loads(src.readline())
    except (ValueError, OSError, EOFError, RecursionError) as exc:
        raise BadRequest(f"not an ecshop export: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BadRequest("not an ecshop export (no ecshop-export header)")
    if header.get("format_version") != FORMAT_VERSION:
        raise BadRequest(f"export format {header.get('format_version')!r} is not supported")
    return header


def table_rows(path: str | Path, table: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header of an export and every row of one of its tables, as dicts.

    Raises:
        BadRequest: not an export, damaged, or cut short before the table's end line.
    """
    if table not in TABLES:
        raise BadRequest(f"an export holds no table {table!r}")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as src:
            header = _header(src)
            columns: list[str] | None = None
            rows: list[dict[str, Any]] = []
            for raw in src:
                record = json.loads(raw)
                if isinstance(record, dict) and record.get("table") == table:
                    columns = [str(c) for c in record.get("columns") or ()]
                elif isinstance(record, dict) and record.get("end") == table:
                    if record.get("rows") != len(rows):
                        raise BadRequest(f"table {table} in the export is incomplete")
                    return header, rows
                elif columns is not None and isinstance(record, list):
                    rows.append(dict(zip(columns, record, strict=True)))
    except (OSError, EOFError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the export file is damaged: {exc}") from exc
    raise BadRequest(f"the export ends before the end of table {table}: it was cut short")


def verify(path: str | Path) -> dict[str, int]:
    """Read an export through to its end marker; return its counts (BadRequest if damaged)."""
    counts: dict[str, int] = {}
    try:
        with gzip.open(path, "rt", encoding="utf-8") as src:
            _header(src)
            table = ""
            for raw in src:
                record = json.loads(raw)
                if isinstance(record, dict):
                    if record.get("end_of_export"):
                        if record.get("counts") != counts:
                            raise BadRequest("the export's counts do not match its rows")
                        return counts
                    if "table" in record:
                        table = str(record["table"])
                        counts[table] = 0
                    continue
                counts[table] += 1
    except (OSError, EOFError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the export file is damaged: {exc}") from exc
    raise BadRequest("the export has no end marker: it was cut short")


def import_(store: Store, path: str | Path) -> dict[str, int]:
    """Load an export into this (migrated, empty) database; return the rows per table.

    Raises:
        BadRequest: not an export, a different schema version, or a truncated or damaged file.
        Conflict: the database already holds products or orders.
    """
    current = store.schema_version()
    try:
        with gzip.open(path, "rt", encoding="utf-8") as src, store.tx() as tx:
            header = _header(src)
            if type(header.get("schema_version")) is not int:
                raise BadRequest("the export's header has no schema version")
            if header["schema_version"] != current:
                raise BadRequest(
                    f"the export is at schema version {header['schema_version']}, this database "
                    f"at {current}: run the same ecshop version on both sides"
                )
            for table in ("products", "orders", "stock"):
                if tx.scalar(f"SELECT COUNT(*) FROM {table}"):
                    raise Conflict(
                        f"the database is not empty ({table} has rows): import into a new one"
                    )
            counts = _import_tables(tx, _records(src))
    except (OSError, EOFError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the export file is damaged: {exc}") from exc
    return counts


def _records(src: IO[str]) -> Iterator[Any]:
    for raw in src:
        yield json.loads(raw)


def _columns(tx: Tx, record: dict[str, Any]) -> list[str]:
    """The record's column names, each one a real column of its table (they become SQL)."""
    names, rows = tx.iterate(f"SELECT * FROM {record['table']} WHERE 1 = 0")
    list(rows)
    columns = record.get("columns")
    if not isinstance(columns, list) or not columns or len(set(map(str, columns))) != len(columns):
        raise BadRequest(f"table {record['table']} in the export has no valid column list")
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise BadRequest(f"table {record['table']} has no column {str(unknown[0])[:64]!r}")
    return [str(c) for c in columns]


def _insert(tx: Tx, sql: str, table: str, batch: list[list[Any]]) -> None:
    try:
        tx.executemany(sql, batch)
    except ShopError:
        raise
    except Exception as exc:  # a driver's constraint error: one line, not a traceback
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise BadRequest(f"table {table}: the database refused a row: {reason}") from exc


def _import_tables(tx: Tx, records: Iterator[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    checker = RowChecker()
    for record in records:
        if isinstance(record, dict) and record.get("end_of_export"):
            if record.get("counts") != counts:
                raise BadRequest(
                    f"the export's counts {record.get('counts')} do not match its rows {counts}"
                )
            return counts
        if not (isinstance(record, dict) and record.get("table") in TABLES):
            raise BadRequest(f"unexpected line in the export: {str(record)[:100]!r}")
        table, columns = str(record["table"]), _columns(tx, record)
        if table in counts:
            raise BadRequest(f"table {table} appears twice in the export")
        checker.columns(table, columns)
        sql = (f"INSERT INTO {table} ({', '.join(f'`{c}`' for c in columns)}) "
               f"VALUES ({', '.join('?' for _ in columns)})")  # fmt: skip
        batch: list[list[Any]] = []
        count = 0
        for row in records:
            if isinstance(row, dict):
                if row.get("end") != table or row.get("rows") != count + len(batch):
                    raise BadRequest(f"table {table} in the export is incomplete")
                break
            checker.row(table, columns, row, count + len(batch) + 1)
            batch.append(row)
            if len(batch) >= CHUNK:
                _insert(tx, sql, table, batch)
                count += len(batch)
                batch = []
        else:
            raise BadRequest(f"the export ends inside table {table}")
        if batch:
            _insert(tx, sql, table, batch)
            count += len(batch)
        counts[table] = count
    raise BadRequest("the export has no end marker: it was cut short")
