"""Carrying payment notifications from an old shop to a new one, after a server move.

Between the backup that moves a shop and the moment every gateway reaches the new host
(DNS caches, a proxy switched late), notifications still land on the old shop. It
journals them, applies them to its own database, which nobody reads any more, and
answers 2xx, so the gateway stops retrying: the new shop would learn of those payments
only by asking the gateway.

``ecshop journal export`` writes the old shop's journal rows that its backup does not
hold (``--after-backup``), or those received since a time (``--since``), to one file;
``ecshop journal replay`` hands each event to the new shop's payment service as if the
gateway had sent it now (:meth:`~ecshop.payments.notifications.PaymentService.receive`):
checked against its order (the same gateway, amount and currency), journaled once per
event id, then applied. Replaying is idempotent: an event the new shop has journaled
already (the gateway retried into the new host, an earlier replay) is a ``duplicate``,
and a payment its reconciler has already settled through the gateway's status API is
recorded and changes nothing. An event for an order the new shop does not have, or one
that does not fit its order, is reported and leaves the command with exit status 1;
it is never dropped silently.

The file is gzip JSON lines, mode 0600 like an export: a header (format
``ecshop-journal``), the ``payments_journal`` columns, one JSON array per row, and an
end line with the row count. The gateway's signature is not in it: the old shop checked
it before it journaled the row, and the file is handled like a backup.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ecshop import dataio
from ecshop._rows import RowChecker
from ecshop.errors import BadRequest, NotFound, SignatureError
from ecshop.files import open_private
from ecshop.payments.base import PaymentEvent
from ecshop.store import Store

log = logging.getLogger("ecshop.payments")

FORMAT = "ecshop-journal"
FORMAT_VERSION = 1
TABLE = "payments_journal"
COLUMNS = ("id", "gateway", "event_id", "order_number", "type", "amount", "currency",
           "payment_id", "refund_id", "payload_json", "outcome", "received_at", "applied_at")  # fmt: skip
#: what replaying one event came to
RECEIVED, DUPLICATE, UNKNOWN_ORDER, REFUSED = "received", "duplicate", "unknown_order", "refused"


def parse_time(text: str) -> float:
    """A moment given as unix seconds or as an ISO 8601 time with its UTC offset.

    Raises:
        BadRequest: anything else; a time without an offset is ambiguous.
    """
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise BadRequest(f"{text!r} is not a time")
        return seconds
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{text!r} is neither unix seconds nor an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise BadRequest(
            f"{text!r} has no UTC offset: write it as 2025-03-01T02:00:00+09:00 (or Z for UTC)"
        )
    return moment.timestamp()


def _line(out: IO[str], item: Any) -> None:
    out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")


def _backup_events(path: str | Path) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    header, rows = dataio.table_rows(path, TABLE)
    return header, {(str(r["gateway"]), str(r["event_id"])) for r in rows}


def export_journal(
    store: Store,
    path: str | Path,
    *,
    after_backup: str | Path | None = None,
    since: float | None = None,
) -> int:
    """Write the journal rows the backup ``after_backup`` does not hold, or those received
    at or after ``since`` (unix seconds), to ``path``; return how many.

    The rows are compared with the backup's by gateway and event id, not by time or row
    id, so a row committed while the backup was taken is neither lost nor doubled.

    Raises:
        BadRequest: neither or both selections, or the backup is not a whole export.
    """
    if (after_backup is None) == (since is None):
        raise BadRequest("name the backup the new shop was restored from, or a time")
    header: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION,
                              "dialect": store.dialect, "created_at": time.time()}  # fmt: skip
    known: set[tuple[str, str]] = set()
    if after_backup is not None:
        backup, known = _backup_events(after_backup)
        header["after_backup"] = {"file": Path(after_backup).name,
                                  "created_at": backup.get("created_at")}  # fmt: skip
    else:
        header["since"] = since
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    count = 0
    try:
        with (
            dataio.snapshot(store) as tx,
            open_private(partial) as raw,
            gzip.open(raw, "wt", encoding="utf-8") as out,
        ):
            _line(out, header)
            _line(out, {"table": TABLE, "columns": list(COLUMNS)})
            _, rows = tx.iterate(
                f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE received_at >= ? ORDER BY id",
                (since or 0.0,),
            )
            for row in rows:
                if (str(row[1]), str(row[2])) in known:
                    continue
                _line(out, list(row))
                count += 1
            _line(out, {"end": TABLE, "rows": count})
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return count


def _records(src: IO[str]) -> Iterator[Any]:
    for raw in src:
        yield json.loads(raw)


@dataclass(frozen=True)
class Entry:
    """One journaled event: the gateway it came through, and the event."""

    gateway: str
    event: PaymentEvent


def read_journal(path: str | Path) -> tuple[dict[str, Any], list[Entry]]:
    """The header and the events of a journal file, every row checked before any is used.

    Raises:
        BadRequest: not a journal file, damaged, cut short, or a row that breaks the
            journal's field rules (one line naming the row and the field).
    """
    checker = RowChecker()
    try:
        with gzip.open(path, "rt", encoding="utf-8") as src:
            records = _records(src)
            header = next(records, None)
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise BadRequest("not an ecshop journal file (no ecshop-journal header)")
            if header.get("format_version") != FORMAT_VERSION:
                raise BadRequest(
                    f"journal format {header.get('format_version')!r} is not supported"
                )
            start = next(records, None)
            if not isinstance(start, dict) or start.get("table") != TABLE:
                raise BadRequest("the journal file has no payments_journal table")
            columns = [str(c) for c in start.get("columns") or ()]
            checker.columns(TABLE, columns)
            events: list[Entry] = []
            for record in records:
                if isinstance(record, dict):
                    if record.get("end") != TABLE or record.get("rows") != len(events):
                        raise BadRequest("the journal file's row count does not match its rows")
                    return header, events
                checker.row(TABLE, columns, record, len(events) + 1)
                events.append(_entry(dict(zip(columns, record, strict=True))))
    except (OSError, EOFError, ValueError, RecursionError) as exc:
        raise BadRequest(f"the journal file is damaged: {exc}") from exc
    raise BadRequest("the journal file has no end line: it was cut short")


def _entry(row: dict[str, Any]) -> Entry:
    return Entry(str(row["gateway"]), PaymentEvent(
        id=str(row["event_id"]), type=str(row["type"]), order=str(row["order_number"]),
        amount=int(row["amount"]), currency=str(row["currency"]), payment_id=row["payment_id"],
        created=int(row["received_at"]), raw=str(row["payload_json"]).encode("utf-8"),
        refund_id=row.get("refund_id"),
    ))  # fmt: skip


@dataclass(frozen=True)
class Carried:
    """One replayed event and what came of it.

    Attributes:
        kind: ``received`` (journaled here now and applied), ``duplicate`` (this shop
            had journaled it already), ``unknown_order`` or ``refused`` (not settled).
        result: what applying it did (``paid``, ``declined``, ``ignored:already_paid``…),
            or why it was not settled.
    """

    entry: Entry
    kind: str
    result: str

    @property
    def settled(self) -> bool:
        """The event is in this shop's journal (now or before)."""
        return self.kind in (RECEIVED, DUPLICATE)

    def describe(self) -> str:
        e = self.entry.event
        head = f"{self.entry.gateway} {e.id}: order {e.order} {e.type} {e.amount} {e.currency}"
        return f"{head} -> {self.result if self.settled else 'NOT SETTLED: ' + self.result}"


def replay(payments: Any, entries: list[Entry]) -> list[Carried]:
    """Receive each event through ``payments`` (the shop's
    :class:`~ecshop.payments.notifications.PaymentService`), in the order given.

    An unknown order or an event that does not fit its order is logged and reported in
    the answer; a database failure raises (replay again: what was carried is a duplicate).
    """
    carried = []
    for entry in entries:
        gateway, event = entry.gateway, entry.event
        try:
            result = str(payments.receive(gateway, event))
            kind = DUPLICATE if result == "duplicate" else RECEIVED
        except NotFound:
            kind, result = UNKNOWN_ORDER, f"this shop has no order {event.order}"
        except SignatureError as exc:
            kind, result = REFUSED, exc.message
        if kind in (UNKNOWN_ORDER, REFUSED):
            log.warning("carried event %s of gateway %s for order %s is not settled: %s",
                        event.id, gateway, event.order, result)  # fmt: skip
        carried.append(Carried(entry, kind, result))
    return carried
