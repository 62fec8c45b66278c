"""``ecshop stock audit [--fix]`` and ``ecshop stock rebuild``: exit codes and output."""

from __future__ import annotations

import sys
from typing import Any

from ecshop.errors import ShopError


def _describe(entry: dict[str, Any]) -> str:
    if entry.get("sku") is None:
        return f"  * {entry.get('problem', 'no data')}"
    parts = [f"  {entry['sku']}: on_hand {entry.get('on_hand')}"]
    for key in ("expected", "actual"):
        if key in entry:
            parts.append(f"{key} {entry[key]}")
    if "expected_available" in entry:
        parts.append(f"available {entry['available']}, expected {entry['expected_available']}")
    if "audit_trail_sum" in entry:
        parts.append(f"audit trail sums to {entry['audit_trail_sum']}")
    return ", ".join(parts)


def _report(drift: list[dict[str, Any]]) -> None:
    if not drift:
        print("stock audit: no drift")
        return
    print(f"stock audit: {len(drift)} SKU(s) drift")
    for entry in drift:
        print(_describe(entry))


def audit(shop: Any, fix: bool) -> int:
    """Print per-SKU drift; with ``fix`` rebuild the engine and audit again.

    Returns:
        0 when there is no drift (after the fix, with ``fix``), 1 when there is, 2 when
        the engine or database failed.
    """
    try:
        drift = shop.stock.audit()
        _report(drift)
        if drift and fix:
            print("rebuilding the stock engine from the database ...")
            shop.stock.rebuild()
            drift = shop.stock.audit()
            _report(drift)
    except ShopError as exc:
        print(f"ecshop stock audit: {exc.message}", file=sys.stderr)
        return 2
    return 1 if drift else 0


def rebuild(shop: Any) -> int:
    """Rebuild the engine from the database, then audit; 0 when no drift is left."""
    try:
        shop.stock.rebuild()
        print("stock engine rebuilt from the database")
        drift = shop.stock.audit()
    except ShopError as exc:
        print(f"ecshop stock rebuild: {exc.message}", file=sys.stderr)
        return 2
    _report(drift)
    return 1 if drift else 0
