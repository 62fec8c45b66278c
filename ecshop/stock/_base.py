"""Changes of ``on_hand`` (adjust, counts, imports), common to both engines.

Each change is a delta with a reason and an audit row in one database transaction;
the engine's own counter of sellable units follows through :meth:`EngineBase._follow`,
called last inside the transaction so that a refusal rolls the database back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ecshop.errors import Conflict, NotFound
from ecshop.stock import _ledger, counts
from ecshop.stock._types import Levels, check_count, check_text
from ecshop.store import Store


class EngineBase:
    """Shared part of the Redis and SQL engines."""

    #: True when ``stock.available`` in the database is the engine's counter (SQL).
    available_in_db = False

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- hooks --------------------------------------------------------------------------
    def _follow(self, sku: str, delta: int, *, create: bool = False) -> None:
        """Move the engine's ``available`` by ``delta`` (no-op for the SQL engine)."""

    def _unfollow(self, moves: list[tuple[str, int]]) -> None:
        """Undo ``_follow`` calls after the database refused to commit (best effort)."""

    def levels(self, skus: Iterable[str] | None = None) -> dict[str, Levels]:  # pragma: no cover
        raise NotImplementedError

    def available(self, skus: Iterable[str]) -> dict[str, int]:
        """What can be sold now of each SKU that has stock (the ``available`` of
        :meth:`levels`)."""
        wanted = list(skus)
        return {sku: lv.available for sku, lv in self.levels(wanted).items()} if wanted else {}

    def page(self, *, after: str | None, limit: int) -> tuple[dict[str, Levels], str | None]:
        """Levels of up to ``limit`` SKUs after ``after`` in SKU order, and the next cursor."""
        with self.store.read() as tx:
            skus = _ledger.sku_page(tx, after=after, limit=limit + 1)
        more = len(skus) > limit
        skus = skus[:limit]
        return self.levels(skus) if skus else {}, (skus[-1] if more else None)

    # -- on_hand changes ----------------------------------------------------------------
    def add_sku(self, sku: str, on_hand: int = 0, *, actor: str) -> None:
        """Create the stock of a new product (idempotent: an existing SKU is left alone)."""
        check_count(on_hand, "on_hand")
        moves: list[tuple[str, int]] = []
        try:
            with self.store.tx() as tx:
                if _ledger.insert_sku(tx, sku, on_hand, actor=actor):
                    self._follow(sku, on_hand, create=True)
                    moves.append((sku, on_hand))
        except BaseException:
            self._unfollow(moves)
            raise

    def adjust(self, sku: str, delta: int, *, reason: str, actor: str) -> Levels:
        """Move ``on_hand`` (and ``available``) of a SKU by ``delta``.

        Raises:
            ValidationError: a zero or non-integer delta, or an empty reason.
            NotFound: unknown SKU.
            InsufficientStock: fewer sellable units than ``-delta``.
        """
        check_count(delta, "delta", signed=True)
        reason = check_text(reason, "reason")
        self._apply([(sku, delta)], reason=reason, actor=actor)
        return self.levels([sku])[sku]

    def set_on_hand(
        self, sku: str, on_hand: int, *, expected_on_hand: int, actor: str, reason: str = "count"
    ) -> Levels:
        """Set ``on_hand`` from a count, as a delta against the value it was based on.

        Raises:
            StaleStock: ``on_hand`` is no longer ``expected_on_hand`` (carries it).
            InsufficientStock: more units are held or sold than the new count.
        """
        check_count(on_hand, "on_hand")
        check_count(expected_on_hand, "expected_on_hand")
        reason = check_text(reason, "reason")
        moves: list[tuple[str, int]] = []
        try:
            with self.store.tx() as tx:
                current = _ledger.stale_check(tx, sku, expected_on_hand)
                if on_hand != current:
                    self._move(tx, sku, on_hand - current, reason=reason, actor=actor, moves=moves)
        except BaseException:
            self._unfollow(moves)
            raise
        return self.levels([sku])[sku]

    def import_counts(
        self, rows: Iterable[Mapping[str, Any]], *, dry_run: bool, actor: str
    ) -> list[dict[str, Any]]:
        """Apply counts (``sku``, ``on_hand``, optional ``expected_on_hand``) all or nothing.

        Returns:
            The diff, one entry per row (see :func:`ecshop.stock.counts.diff`); with
            ``dry_run`` nothing is written.

        Raises:
            Conflict: some row is stale, unknown or short; ``details["diff"]`` has them
                and nothing was written.
        """
        checked = counts.check_rows(rows)
        moves: list[tuple[str, int]] = []
        try:
            with self.store.tx() as tx:
                # NOTE: the rows are locked (MySQL) or the database is (SQLite) while the
                # diff is computed and applied, so no change slips in between.
                for row in sorted(checked, key=lambda r: r["sku"]):
                    try:
                        _ledger.stock_row(tx, row["sku"], lock=not dry_run)
                    except NotFound:
                        pass
                found = counts.diff(checked, self.levels([r["sku"] for r in checked]))
                bad = [e for e in found if e["status"] in ("stale", "unknown_sku", "short")]
                if dry_run:
                    return found
                if bad:
                    raise Conflict(
                        f"{len(bad)} rows cannot be applied (first: {bad[0]['sku']}, "
                        f"{bad[0]['status']}); nothing was written",
                        diff=found,
                    )
                for entry in sorted(found, key=lambda e: e["sku"]):
                    if entry["status"] == "change":
                        self._move(tx, entry["sku"], entry["delta"], reason="import", actor=actor,
                                   moves=moves)  # fmt: skip
        except BaseException:
            self._unfollow(moves)
            raise
        return found

    # -- internals ----------------------------------------------------------------------
    def _apply(self, changes: list[tuple[str, int]], *, reason: str, actor: str) -> None:
        moves: list[tuple[str, int]] = []
        try:
            with self.store.tx() as tx:
                for sku, delta in changes:
                    self._move(tx, sku, delta, reason=reason, actor=actor, moves=moves)
        except BaseException:
            self._unfollow(moves)
            raise

    def _move(
        self,
        tx: Any,
        sku: str,
        delta: int,
        *,
        reason: str,
        actor: str,
        moves: list[tuple[str, int]],
    ) -> None:
        _ledger.apply_delta(
            tx, sku, delta, reason=reason, actor=actor, available_too=self.available_in_db
        )
        self._follow(sku, delta)
        moves.append((sku, delta))
