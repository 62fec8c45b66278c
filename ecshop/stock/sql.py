"""The SQL stock engine: the embedded default, and the choice without Redis.

``stock.available`` is the counter of sellable units; ``stock_holds`` is the ledger of
holds (``held``, with an expiry) and sales (``committed``). A reserve is one conditional
``UPDATE stock SET available = available + ? WHERE sku = ? AND available + ? >= 0`` per
SKU, always in SKU order, inside one transaction: no read-modify-write, so two buyers
can never both take the last unit. Called inside another ``store.tx()`` it joins that
transaction (a checkout is then one durable commit).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ecshop import metrics
from ecshop.errors import Conflict, InsufficientStock, NotFound
from ecshop.stock import _ledger
from ecshop.stock._base import EngineBase
from ecshop.stock._types import NEVER, Levels, check_text, check_token, check_ttl
from ecshop.stockcore import core
from ecshop.store import Store, Tx

log = logging.getLogger("ecshop.stock")

SWEEP_BATCH = 1000


def _marks(items: Iterable[Any]) -> str:
    return ", ".join("?" for _ in items)


class SQLStockEngine(EngineBase):
    """Stock kept in the database only (SQLite or MySQL/MariaDB)."""

    available_in_db = True

    def __init__(self, store: Store) -> None:
        super().__init__(store)

    # -- holds --------------------------------------------------------------------------
    def reserve(self, token: str, lines: Iterable[tuple[str, int]], *, ttl: float | None) -> None:
        """Hold every line of a cart for ``ttl`` seconds, all or nothing; idempotent.

        ``ttl=None`` holds until :meth:`release` or :meth:`commit`: neither a later
        reserve nor the sweep reclaims it (an order whose buyer may have paid).

        Raises:
            ValidationError: bad lines, token or ttl.
            NotFound: a SKU has no stock row.
            InsufficientStock: with every short line as ``(sku, requested, available)``.
        """
        check_token(token)
        ttl = check_ttl(ttl)
        canon = core.canonicalize_lines(lines)
        now = time.time()
        expires = NEVER if ttl is None else now + ttl
        with self.store.tx() as tx:
            own = self._holds(tx, token)
            if own and (own[0]["state"] == "committed" or min(r["exp"] for r in own) > now):
                return
            skus = [sku for sku, _ in canon]
            expired = {
                r["token"]
                for r in tx.query(
                    f"SELECT DISTINCT token FROM stock_holds WHERE sku IN ({_marks(skus)}) "
                    "AND state = 'held' AND expires_at <= ?",
                    (*skus, now),
                )
            }
            if own:
                expired.add(token)
            gains = self._held_units(tx, sorted(expired))
            deltas: dict[str, int] = dict(gains)
            for sku, qty in canon:
                deltas[sku] = deltas.get(sku, 0) - qty
            try:
                self._take(tx, deltas, dict(canon), gains)
            except InsufficientStock:
                metrics.HOLD_REFUSED.inc()  # and the expired holds stay (rolled back)
                raise
            self._drop(tx, sorted(expired), "held")
            tx.executemany(
                "INSERT INTO stock_holds (token, sku, qty, state, expires_at, created_at) "
                "VALUES (?, ?, ?, 'held', ?, ?)",
                [(token, sku, qty, expires, now) for sku, qty in canon],
            )
        if expired:
            metrics.HOLD_EXPIRED.inc(len(expired))
            log.info("gave back expired hold(s) %s before holding for %s",
                     ", ".join(sorted(expired)), token)  # fmt: skip
        metrics.HOLD_GRANTED.inc()

    def commit(self, token: str) -> bool:
        """Turn a live hold into a sale. False when the hold is gone (expired, released)."""
        check_token(token)
        with self.store.tx() as tx:
            own = self._holds(tx, token, lock=True)
            if not own:
                return False
            if own[0]["state"] == "committed":
                return True
            if min(r["exp"] for r in own) <= time.time():
                self._give_back(tx, token, own)
                return False
            tx.execute(
                "UPDATE stock_holds SET state = 'committed' WHERE token = ? AND state = 'held'",
                (token,),
            )
            return True

    def release(self, token: str) -> bool:
        """Give back the units of a hold; False when there is no hold (idempotent)."""
        check_token(token)
        with self.store.tx() as tx:
            own = self._holds(tx, token, lock=True)
            if not own or own[0]["state"] != "held":
                return False
            self._give_back(tx, token, own)
            return True

    def restock(self, ref: str, lines: Iterable[tuple[str, int]]) -> None:
        """Give back the units of a sale cancelled before shipping (idempotent per ref).

        The committed hold under ``ref`` is the record of what was sold and gives the
        units back; ``lines`` (the order's lines) are accepted for the interface only.
        """
        check_token(ref)
        with self.store.tx() as tx:
            own = self._holds(tx, ref, lock=True)
            if not own or own[0]["state"] != "committed":
                return
            self._give_back(tx, ref, own)

    def ship(self, token: str, *, actor: str) -> None:
        """The units of a sale leave: ``on_hand`` falls (audit reason ``ship``). Idempotent.

        Raises:
            Conflict: the token is held but not sold, or has no sale and never shipped.
        """
        check_token(token)
        actor = check_text(actor, "actor")
        with self.store.tx() as tx:
            own = self._holds(tx, token, lock=True)
            if not own:
                if _ledger.shipped_before(tx, token):
                    return
                raise Conflict(f"no sale under {token} to ship", token=token)
            if own[0]["state"] != "committed":
                raise Conflict(f"{token} is held, not sold: it cannot ship", token=token)
            for r in sorted(own, key=lambda r: r["sku"]):
                _ledger.apply_delta(tx, r["sku"], -r["qty"], reason="ship", actor=actor, ref=token)
            tx.execute("DELETE FROM stock_holds WHERE token = ?", (token,))

    # -- reads and upkeep ---------------------------------------------------------------
    def levels(self, skus: Iterable[str] | None = None) -> dict[str, Levels]:
        """``on_hand, available, held, sold_unshipped`` of the SKUs (all when None)."""
        wanted = None if skus is None else sorted(set(skus))
        if wanted == []:
            with self.store.read() as tx:
                tx.scalar("SELECT 1")
            return {}
        with self.store.read() as tx:
            where, params = "", []
            if wanted is not None:
                where, params = f" WHERE sku IN ({_marks(wanted)})", wanted
            rows = tx.query(f"SELECT sku, on_hand, available FROM stock{where}", params)
            sums = tx.query(
                f"SELECT sku, state, SUM(qty) AS units FROM stock_holds{where} GROUP BY sku, state",
                params,
            )
        held: dict[str, int] = defaultdict(int)
        sold: dict[str, int] = defaultdict(int)
        for s in sums:
            (held if s["state"] == "held" else sold)[s["sku"]] += int(s["units"])
        return {
            r["sku"]: Levels(int(r["on_hand"]), int(r["available"]), held[r["sku"]], sold[r["sku"]])
            for r in rows
        }

    def available(self, skus: Iterable[str]) -> dict[str, int]:
        """What can be sold now of each SKU that has stock: the counter alone, in one
        read (a catalog page needs no more)."""
        wanted = sorted(set(skus))
        if not wanted:
            return {}
        with self.store.read() as tx:
            rows = tx.query(f"SELECT sku, available FROM stock WHERE sku IN ({_marks(wanted)})",
                            wanted)  # fmt: skip
        return {r["sku"]: int(r["available"]) for r in rows}

    def sweep(self) -> int:
        """Give back the units of every expired hold; return how many holds."""
        total = 0
        while True:
            with self.store.tx() as tx:
                tokens = [
                    r["token"]
                    for r in tx.query(
                        "SELECT DISTINCT token FROM stock_holds WHERE state = 'held' "
                        "AND expires_at <= ? ORDER BY token LIMIT ?",
                        (time.time(), SWEEP_BATCH),
                    )
                ]
                if not tokens:
                    return total
                gains = self._held_units(tx, tokens)
                for sku in sorted(gains):
                    self._add(tx, sku, gains[sku])
                self._drop(tx, tokens, "held")
            total += len(tokens)
            metrics.HOLD_EXPIRED.inc(len(tokens))
            log.info("swept expired hold(s) %s: their units are back on sale", ", ".join(tokens))

    def audit(self) -> list[dict[str, Any]]:
        """Per-SKU drift between ``available`` and ``on_hand - held - sold``; empty when none."""
        drift = []
        levels = self.levels()
        with self.store.read() as tx:
            ledger = _ledger.changes_drift(tx)
        for sku, lv in sorted(levels.items()):
            expected = lv.on_hand - lv.held - lv.sold_unshipped
            if lv.available != expected or sku in ledger:
                entry: dict[str, Any] = {
                    "sku": sku, "on_hand": lv.on_hand, "expected_available": expected,
                    "available": lv.available, "held": lv.held, "sold_unshipped": lv.sold_unshipped,
                }  # fmt: skip
                if sku in ledger:
                    entry["audit_trail_sum"] = ledger[sku][1]
                drift.append(entry)
        return drift

    def rebuild(self) -> None:
        """Recompute ``available`` from ``on_hand`` and the holds (after a sweep)."""
        self.sweep()
        with self.store.tx() as tx:
            for sku, lv in sorted(self.levels().items()):
                expected = max(0, lv.on_hand - lv.held - lv.sold_unshipped)
                if lv.available != expected:
                    tx.execute(
                        "UPDATE stock SET available = ?, version = version + 1, updated_at = ? "
                        "WHERE sku = ?",
                        (expected, time.time(), sku),
                    )

    def orphans(self, older_than: float) -> list[str]:
        """Always empty: a hold and its order are written in one transaction here."""
        return []

    def needs_rebuild(self) -> bool:
        """Always False: the SQL engine's counters live in the database itself."""
        return False

    def close(self) -> None:
        """Nothing to close: the store belongs to the caller."""

    # -- internals ----------------------------------------------------------------------
    @staticmethod
    def _holds(tx: Tx, token: str, *, lock: bool = False) -> list[dict[str, Any]]:
        rows = tx.query(
            "SELECT sku, qty, state, expires_at AS exp FROM stock_holds "
            "WHERE token = ? ORDER BY sku" + (_ledger.for_update(tx) if lock else ""),
            (token,),
        )
        return [{**r, "qty": int(r["qty"]), "exp": float(r["exp"])} for r in rows]

    @staticmethod
    def _held_units(tx: Tx, tokens: list[str]) -> dict[str, int]:
        gains: dict[str, int] = defaultdict(int)
        for start in range(0, len(tokens), 500):
            chunk = tokens[start : start + 500]
            for r in tx.query(
                f"SELECT sku, qty FROM stock_holds WHERE token IN ({_marks(chunk)}) "
                "AND state = 'held'",
                chunk,
            ):
                gains[r["sku"]] += int(r["qty"])
        return dict(gains)

    @staticmethod
    def _drop(tx: Tx, tokens: list[str], state: str) -> None:
        for start in range(0, len(tokens), 500):
            chunk = tokens[start : start + 500]
            tx.execute(
                f"DELETE FROM stock_holds WHERE token IN ({_marks(chunk)}) AND state = ?",
                (*chunk, state),
            )

    @staticmethod
    def _add(tx: Tx, sku: str, units: int) -> int:
        return tx.execute(
            "UPDATE stock SET available = available + ?, version = version + 1 "
            "WHERE sku = ? AND available + ? >= 0",
            (units, sku, units),
        )

    def _take(
        self, tx: Tx, deltas: dict[str, int], wanted: dict[str, int], gains: dict[str, int]
    ) -> None:
        """Apply per-SKU deltas in SKU order; on any refusal undo them all and raise."""
        applied: list[tuple[str, int]] = []
        short: list[tuple[str, int, int]] = []
        missing: str | None = None
        for sku in sorted(deltas):
            delta = deltas[sku]
            if delta and self._add(tx, sku, delta):
                applied.append((sku, delta))
                continue
            row = tx.one("SELECT available FROM stock WHERE sku = ?", (sku,))
            if row is None:
                missing = missing or sku
            elif delta:
                short.append((sku, wanted[sku], int(row["available"]) + gains.get(sku, 0)))
        if short or missing:
            # NOTE: undone by hand as well as by the rollback: inside a caller's
            # transaction that catches the error, nothing of this call may remain.
            for sku, delta in reversed(applied):
                self._add(tx, sku, -delta)
            if missing:
                raise NotFound(f"no stock for sku {missing!r}", sku=missing)
            raise InsufficientStock(short)

    def _give_back(self, tx: Tx, token: str, own: list[dict[str, Any]]) -> None:
        for r in sorted(own, key=lambda r: r["sku"]):
            self._add(tx, r["sku"], r["qty"])
        tx.execute("DELETE FROM stock_holds WHERE token = ?", (token,))
