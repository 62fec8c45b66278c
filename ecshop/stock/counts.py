"""Absolute stock counts (CSV import, stocktake) turned into deltas against their base."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

from ecshop.errors import ValidationError
from ecshop.stock._types import MAX_DELTA, Levels

MAX_ROWS = 100_000
HEADER = ("sku", "on_hand", "expected_on_hand")


def _count(text: str, name: str) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) > MAX_DELTA:
        raise ValueError(f"{name} must be a whole number of 0 or more, not {text!r}")
    return int(text)


def parse_counts_csv(data: bytes | str) -> list[dict[str, Any]]:
    """Parse CSV ``sku,on_hand[,expected_on_hand]`` (a header line is optional).

    Returns:
        One dict per data row: ``line``, ``sku``, ``on_hand``, ``expected_on_hand``
        (None when the column is empty or absent).

    Raises:
        ValidationError: with ``errors=[{"line": n, "message": ...}]`` naming every
            malformed row; nothing is returned then.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationError("the CSV must be UTF-8", errors=[]) from exc
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    reader = csv.reader(io.StringIO(data))
    for cells in reader:
        line = reader.line_num
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if line == 1 and tuple(c.lower() for c in cells) in (HEADER[:2], HEADER):
            continue
        try:
            if len(cells) not in (2, 3):
                raise ValueError(
                    f"expected sku,on_hand[,expected_on_hand], got {len(cells)} fields"
                )
            sku = cells[0]
            if not 0 < len(sku) <= 64:
                raise ValueError("sku must be 1 to 64 characters")
            if sku in seen:
                raise ValueError(f"sku {sku} already on line {seen[sku]}")
            on_hand = _count(cells[1], "on_hand")
            expected = (
                _count(cells[2], "expected_on_hand") if len(cells) == 3 and cells[2] else None
            )
        except ValueError as exc:
            errors.append({"line": line, "message": str(exc)})
            continue
        seen[sku] = line
        rows.append({"line": line, "sku": sku, "on_hand": on_hand, "expected_on_hand": expected})
        if len(rows) > MAX_ROWS:
            errors.append({"line": line, "message": f"more than {MAX_ROWS} rows"})
            break
    if errors:
        first = errors[0]
        raise ValidationError(
            f"line {first['line']}: {first['message']} "
            f"({len(errors)} malformed rows, nothing written)",
            errors=errors,
        )
    if not rows:
        raise ValidationError("the CSV has no rows", errors=[])
    return rows


def check_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate import rows given as dicts (``sku``, ``on_hand``, ``expected_on_hand``)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, 1):
        sku, on_hand = row.get("sku"), row.get("on_hand")
        expected = row.get("expected_on_hand")
        line = row.get("line", i)
        if not isinstance(sku, str) or not 0 < len(sku) <= 64 or sku in seen:
            raise ValidationError(f"row {line}: bad or repeated sku", line=line)
        for value in (on_hand, expected):
            if value is not None and (type(value) is not int or not 0 <= value <= MAX_DELTA):
                raise ValidationError(f"row {line}: counts must be whole numbers", line=line)
        if on_hand is None:
            raise ValidationError(f"row {line}: on_hand is missing", line=line)
        seen.add(sku)
        out.append({"line": line, "sku": sku, "on_hand": on_hand, "expected_on_hand": expected})
    return out


def diff(rows: list[dict[str, Any]], levels: Mapping[str, Levels]) -> list[dict[str, Any]]:
    """What an import would change, row by row.

    ``status`` is ``change``, ``unchanged``, ``stale`` (the base is not the current
    ``on_hand``), ``unknown_sku`` or ``short`` (units are held or sold: ``on_hand``
    cannot go below ``held + sold_unshipped``).
    """
    out = []
    for row in rows:
        lv = levels.get(row["sku"])
        entry = {**row, "on_hand_before": None, "delta": None, "status": "unknown_sku"}
        if lv is not None:
            delta = row["on_hand"] - lv.on_hand
            entry.update(on_hand_before=lv.on_hand, delta=delta)
            expected = row["expected_on_hand"]
            if expected is not None and expected != lv.on_hand:
                entry["status"] = "stale"
            elif delta == 0:
                entry["status"] = "unchanged"
            elif lv.available + delta < 0:
                entry["status"] = "short"
                entry["available"] = lv.available
            else:
                entry["status"] = "change"
        out.append(entry)
    return out
