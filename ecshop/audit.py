"""The audit log: every change an admin makes, through the admin pages, the admin API or
the CLI: who (``admin:<username>``, ``token``, ``cli:<user>``), when, what (an action
name and its target), and the values before and after.

A line is written right after the change it describes commits (the services own their
transactions); a process that dies in between loses that line, never the change.
"""

from __future__ import annotations

import getpass
import json
import time
from dataclasses import dataclass
from typing import Any

from ecshop.store import Store

VIA = ("web", "api", "cli")
MAX_TEXT = 200_000


@dataclass(frozen=True)
class Actor:
    """Who changes something, and through what."""

    name: str
    via: str

    @classmethod
    def cli(cls) -> Actor:
        try:
            user = getpass.getuser()
        except Exception:  # no user name in this environment
            user = "unknown"
        return cls(f"cli:{user}"[:100], "cli")


TOKEN = Actor("token", "api")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)[:MAX_TEXT]


def record(store: Store, actor: Actor, action: str, target: str = "",
           before: Any = None, after: Any = None) -> None:  # fmt: skip
    """Write one line of the audit log."""
    with store.tx() as tx:
        tx.execute(
            "INSERT INTO audit_log (at, actor, via, action, target, before_json, after_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), actor.name[:100], actor.via, action[:64], str(target)[:255],
             _text(before), _text(after)),
        )  # fmt: skip


def search(store: Store, *, action: str = "", actor: str = "", target: str = "",
           via: str = "", since: float | None = None, until: float | None = None,
           before_id: int | None = None, limit: int = 50) -> list[dict[str, Any]]:  # fmt: skip
    """Lines newest first, filtered (``action`` and ``target`` by prefix, ``actor``
    exactly); ``before_id`` pages on."""
    where: list[str] = []
    values: list[Any] = []
    for column, value in (("action", action), ("target", target)):
        if value:
            where.append(f"{column} LIKE ? ESCAPE '!'")
            values.append(value.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%")
    for column, value in (("actor", actor), ("via", via)):
        if value:
            where.append(f"{column} = ?")
            values.append(value)
    for clause, bound in (("at >= ?", since), ("at < ?", until), ("id < ?", before_id)):
        if bound is not None:
            where.append(clause)
            values.append(bound)
    sql = "SELECT id, at, actor, via, action, target, before_json, after_json FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    with store.read() as tx:
        rows = tx.query(sql, (*values, limit))
    out = []
    for row in rows:
        item = dict(row)
        item["before"] = json.loads(item.pop("before_json") or "null")
        item["after"] = json.loads(item.pop("after_json") or "null")
        out.append(item)
    return out
