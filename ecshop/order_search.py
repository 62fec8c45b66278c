"""The admin's list of orders: newest first, filtered by status and by the days they
were placed on (in the shop's time zone), searched by number, email or name, and read a
page at a time after a keyset cursor, so a page deep in the list costs what the first
one does (the ``orders_created`` index, schema v10).

The list page, its CSV export and a bulk edit over a filter all read through
:func:`page`, so they see the same orders.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ecshop.errors import ValidationError
from ecshop.orders import STATUSES
from ecshop.store import Store, Tx

PAGE_SIZE = 50
COLUMNS = ("number, status, gateway, currency, total, paid_amount, refunded_amount, "
           "customer_json, created_at")  # fmt: skip
#: a customer field of ``orders.customer_json`` as text, per dialect
_FIELD = {
    "sqlite": "json_extract(customer_json, '$.{name}')",
    "mysql": "JSON_UNQUOTE(JSON_EXTRACT(customer_json, '$.{name}'))",
}


@dataclass(frozen=True)
class OrderFilter:
    """What the admin asked for: a status, the first and last day (``YYYY-MM-DD``,
    both included) and search words; empty means any."""

    status: str = ""
    since: str = ""
    until: str = ""
    q: str = ""

    def __post_init__(self) -> None:
        if self.status and self.status not in STATUSES:
            raise ValidationError(f"status must be one of {', '.join(STATUSES)}", field="status")
        for name in ("since", "until"):
            _day(getattr(self, name), name)

    @property
    def explicit(self) -> bool:
        """The admin narrowed the list (a status, a day or a search): only then may a
        bulk edit take every order it matches."""
        return any(asdict(self).values())

    def params(self) -> dict[str, str]:
        """The filter as query parameters (the empty ones left out)."""
        return {k: v for k, v in asdict(self).items() if v}


def _day(text: str, name: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name} must be a day as YYYY-MM-DD", field=name) from None


def _start(day: dt.date, zone: ZoneInfo) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last order's ``created_at`` and number."""

    created_at: float
    number: str

    def __str__(self) -> str:
        return f"{self.created_at!r}~{self.number}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Raises ValidationError: not a cursor of this list."""
        stamp, sep, number = text.partition("~")
        try:
            moment = float(stamp)
        except ValueError:
            moment = math.nan
        if not (sep and number and math.isfinite(moment)):
            raise ValidationError("after is not a cursor of this list", field="after")
        return cls(moment, number)


def _where(f: OrderFilter, dialect: str, zone: ZoneInfo) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    values: list[Any] = []
    if f.status:
        where.append("status = ?")
        values.append(f.status)
    since, until = _day(f.since, "since"), _day(f.until, "until")
    if since:
        where.append("created_at >= ?")
        values.append(_start(since, zone))
    if until:
        where.append("created_at < ?")
        values.append(_start(until + dt.timedelta(days=1), zone))
    words = f.q.strip().lower()
    if words:
        like = "%" + words.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
        field = _FIELD["mysql" if dialect == "mysql" else "sqlite"]
        where.append("(LOWER(number) LIKE ? ESCAPE '!' OR "
                     f"LOWER({field.format(name='email')}) LIKE ? ESCAPE '!' OR "
                     f"LOWER({field.format(name='name')}) LIKE ? ESCAPE '!')")  # fmt: skip
        values += [like, like, like]
    return where, values


def _row(row: dict[str, Any]) -> dict[str, Any]:
    try:
        customer = json.loads(row["customer_json"])
    except ValueError:
        customer = {}
    if not isinstance(customer, dict):
        customer = {}
    item = {k: v for k, v in row.items() if k != "customer_json"}
    for key in ("total", "paid_amount", "refunded_amount"):
        item[key] = int(item[key])
    item["created_at"] = float(item["created_at"])
    item["customer"] = customer
    item["name"] = str(customer.get("name") or "")
    item["email"] = str(customer.get("email") or "")
    return item


def _page(tx: Tx, f: OrderFilter, zone: ZoneInfo, after: Cursor | None,
          limit: int) -> list[dict[str, Any]]:  # fmt: skip
    where, values = _where(f, tx.dialect, zone)
    if after is not None:
        where.append("(created_at < ? OR (created_at = ? AND number < ?))")
        values += [after.created_at, after.created_at, after.number]
    sql = f"SELECT {COLUMNS} FROM orders"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, number DESC LIMIT ?"
    return [_row(r) for r in tx.query(sql, (*values, limit))]


def page(store: Store, f: OrderFilter, *, zone: str, after: Cursor | None = None,
         limit: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], Cursor | None]:  # fmt: skip
    """A page of the orders ``f`` matches, newest first, after the cursor ``after``;
    with the cursor of the next page, None on the last one."""
    with store.read() as tx:
        rows = _page(tx, f, ZoneInfo(zone), after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (Cursor(rows[-1]["created_at"], rows[-1]["number"]) if more else None)


def each(store: Store, f: OrderFilter, *, zone: str,
         batch: int = 500) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Every order ``f`` matches, newest first, read ``batch`` at a time (each batch in
    a read transaction of its own, so a long export holds no snapshot open)."""
    after: Cursor | None = None
    while True:
        rows, after = page(store, f, zone=zone, after=after, limit=batch)
        yield from rows
        if after is None:
            return


def by_numbers(store: Store, numbers: list[str]) -> dict[str, dict[str, Any]]:
    """The list's rows of these orders, by number (the unknown ones left out)."""
    if not numbers:
        return {}
    marks = ", ".join("?" for _ in numbers)
    with store.read() as tx:
        rows = tx.query(f"SELECT {COLUMNS} FROM orders WHERE number IN ({marks})", tuple(numbers))
    return {str(r["number"]): _row(r) for r in rows}
