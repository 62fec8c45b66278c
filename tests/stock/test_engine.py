"""The behaviour both stock engines share: the same tests on Redis, SQLite and MariaDB."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ecshop._stockcore_py import EPOCH_KEY
from ecshop.errors import (
    Conflict,
    InsufficientStock,
    NotFound,
    StaleStock,
    ValidationError,
)
from ecshop.stock import Levels
from ecshop.store import Store

from .conftest import OrderMirror, expire_hold


def lv(engine: Any, sku: str) -> Levels:
    return engine.levels([sku])[sku]


def test_reserve_commit_ship(shelf: Any, mirror: OrderMirror, stock_store: Store) -> None:
    mirror.place("o1", [("TEA", 2), ("CUP", 1)])
    assert lv(shelf, "TEA") == Levels(on_hand=5, available=3, held=2, sold_unshipped=0)
    assert mirror.pay("o1") is True
    assert shelf.commit("o1") is True  # already committed: still True
    assert lv(shelf, "TEA") == Levels(5, 3, 0, 2)
    mirror.ship("o1")
    shelf.ship("o1", actor="test")  # idempotent
    assert lv(shelf, "TEA") == Levels(3, 3, 0, 0)
    assert lv(shelf, "CUP") == Levels(1, 1, 0, 0)
    with stock_store.read() as tx:
        rows = tx.query("SELECT sku, delta, reason, ref FROM stock_changes WHERE reason = 'ship'")
    assert sorted((r["sku"], r["delta"], r["ref"]) for r in rows) == [
        ("CUP", -1, "o1"),
        ("TEA", -2, "o1"),
    ]
    assert shelf.audit() == []


def test_reserve_is_all_or_nothing(shelf: Any) -> None:
    with pytest.raises(InsufficientStock) as err:
        shelf.reserve("o1", [("TEA", 1), ("CUP", 3), ("POT", 1)], ttl=60)
    assert err.value.items == [("CUP", 3, 2), ("POT", 1, 0)]
    assert err.value.status == 409
    assert lv(shelf, "TEA") == Levels(5, 5, 0, 0)
    assert shelf.commit("o1") is False


def test_reserve_merges_lines_and_is_idempotent(shelf: Any) -> None:
    shelf.reserve("o1", [("TEA", 1), ("TEA", 2)], ttl=60)
    shelf.reserve("o1", [("TEA", 1), ("TEA", 2)], ttl=60)
    assert lv(shelf, "TEA") == Levels(5, 2, 3, 0)


@pytest.mark.parametrize(
    "lines",
    [[], [("TEA", 0)], [("TEA", -1)], [("TEA", 1.0)], [("TEA", True)], [("", 1)], [(1, 1)]],
)
def test_bad_lines_are_refused(shelf: Any, lines: Any) -> None:
    with pytest.raises(ValidationError):
        shelf.reserve("o1", lines, ttl=60)
    assert lv(shelf, "TEA").available == 5


def test_unknown_sku_is_not_found(shelf: Any) -> None:
    with pytest.raises(NotFound):
        shelf.reserve("o1", [("TEA", 1), ("NOPE", 1)], ttl=60)
    assert lv(shelf, "TEA").available == 5


def test_expired_hold_comes_back_lazily(
    shelf: Any, mirror: OrderMirror, stock_store: Store
) -> None:
    mirror.place("o1", [("CUP", 2)])
    with pytest.raises(InsufficientStock):
        shelf.reserve("o2", [("CUP", 1)], ttl=60)
    expire_hold(shelf, stock_store, "o1")
    shelf.reserve("o2", [("CUP", 2)], ttl=60)  # reclaims o1 on the way
    assert lv(shelf, "CUP") == Levels(2, 0, 2, 0)
    assert shelf.commit("o1") is False
    assert shelf.commit("o2") is True


def test_commit_of_an_expired_hold_is_false(
    shelf: Any, mirror: OrderMirror, stock_store: Store
) -> None:
    mirror.place("o1", [("TEA", 2)])
    expire_hold(shelf, stock_store, "o1")
    assert shelf.commit("o1") is False
    assert lv(shelf, "TEA") == Levels(5, 5, 0, 0)
    shelf.reserve("o1", [("TEA", 2)], ttl=60)  # the caller may re-reserve under the token
    assert shelf.commit("o1") is True


def test_sweep_reclaims_expired_holds(shelf: Any, mirror: OrderMirror, stock_store: Store) -> None:
    for n in range(3):
        mirror.place(f"o{n}", [("TEA", 1)])
    expire_hold(shelf, stock_store, "o0")
    expire_hold(shelf, stock_store, "o1")
    assert shelf.sweep() == 2
    assert shelf.sweep() == 0
    assert lv(shelf, "TEA") == Levels(5, 4, 1, 0)


def test_holds_are_counted_granted_refused_and_expired(
    shelf: Any, stock_store: Store, counted: Any
) -> None:
    def holds() -> list[float]:
        return [
            counted("ecshop_stock_holds_total", event=e) for e in ("granted", "refused", "expired")
        ]

    shelf.reserve("o1", [("CUP", 2)], ttl=60)
    shelf.reserve("o1", [("CUP", 2)], ttl=60)  # the same hold again: nothing new
    assert holds() == [1, 0, 0]
    with pytest.raises(InsufficientStock):
        shelf.reserve("o2", [("CUP", 1)], ttl=60)
    assert holds() == [1, 1, 0]
    expire_hold(shelf, stock_store, "o1")
    shelf.reserve("o2", [("CUP", 2)], ttl=60)  # takes o1's units back on the way
    assert holds() == [2, 1, 1]
    expire_hold(shelf, stock_store, "o2")
    assert shelf.sweep() == 1
    assert holds() == [2, 1, 2]


def test_every_hold_given_back_on_expiry_is_logged_at_info(
    shelf: Any, stock_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ecshop.stock")
    shelf.reserve("o1", [("CUP", 2)], ttl=60)
    assert not [r for r in caplog.records if "expired" in r.getMessage()]
    expire_hold(shelf, stock_store, "o1")
    shelf.reserve("o2", [("CUP", 2)], ttl=60)  # takes o1's units back on the way
    expire_hold(shelf, stock_store, "o2")
    assert shelf.sweep() == 1
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    [lazily] = [m for m in lines if m.startswith("gave back")]
    [swept] = [m for m in lines if m.startswith("swept")]
    assert "o2" in lazily and ("o1" in lazily or "1 expired" in lazily)
    assert "back on sale" in swept


def test_release_and_restock_are_idempotent(shelf: Any, mirror: OrderMirror) -> None:
    mirror.place("o1", [("TEA", 2)])
    assert shelf.release("o1") is True
    assert shelf.release("o1") is False
    assert lv(shelf, "TEA") == Levels(5, 5, 0, 0)
    mirror.place("o2", [("TEA", 3)])
    assert shelf.release("x") is False
    mirror.pay("o2")
    assert shelf.release("o2") is False  # a sale is given back by restock, not release
    shelf.restock("o2", [("TEA", 3)])
    shelf.restock("o2", [("TEA", 3)])
    assert lv(shelf, "TEA") == Levels(5, 5, 0, 0)


def test_adjust_writes_a_delta_with_reason(
    shelf: Any, mirror: OrderMirror, stock_store: Store
) -> None:
    mirror.place("o1", [("TEA", 4)])
    assert shelf.adjust("TEA", 10, reason="received", actor="ann") == Levels(15, 11, 4, 0)
    with pytest.raises(InsufficientStock) as err:
        shelf.adjust("TEA", -12, reason="damaged", actor="ann")
    assert err.value.items == [("TEA", 12, 11)]
    assert shelf.adjust("TEA", -11, reason="damaged", actor="ann") == Levels(4, 0, 4, 0)
    with stock_store.read() as tx:
        rows = tx.query(
            "SELECT delta, on_hand_after, reason FROM stock_changes WHERE sku = 'TEA' ORDER BY id"
        )
    assert [(r["delta"], r["on_hand_after"], r["reason"]) for r in rows] == [
        (5, 5, "initial"), (10, 15, "received"), (-11, 4, "damaged"),
    ]  # fmt: skip
    for bad in (0, 1.5, "3"):
        with pytest.raises(ValidationError):
            shelf.adjust("TEA", bad, reason="x", actor="ann")
    with pytest.raises(ValidationError):
        shelf.adjust("TEA", 1, reason=" ", actor="ann")
    with pytest.raises(NotFound):
        shelf.adjust("NOPE", 1, reason="x", actor="ann")
    assert shelf.audit() == []


def test_set_on_hand_refuses_a_stale_base(shelf: Any) -> None:
    with pytest.raises(StaleStock) as err:
        shelf.set_on_hand("TEA", 40, expected_on_hand=42, actor="ann", reason="count")
    assert err.value.details["on_hand"] == 5
    assert err.value.status == 409
    assert (
        shelf.set_on_hand("TEA", 40, expected_on_hand=5, actor="ann", reason="count").on_hand == 40
    )
    shelf.reserve("o1", [("TEA", 30)], ttl=60)
    with pytest.raises(InsufficientStock):
        shelf.set_on_hand("TEA", 20, expected_on_hand=40, actor="ann", reason="count")
    assert lv(shelf, "TEA") == Levels(40, 10, 30, 0)


def test_import_counts_dry_run_then_apply(shelf: Any, stock_store: Store) -> None:
    rows = [
        {"sku": "TEA", "on_hand": 7, "expected_on_hand": 5},
        {"sku": "CUP", "on_hand": 2},
        {"sku": "POT", "on_hand": 3, "expected_on_hand": 0},
    ]
    found = shelf.import_counts(rows, dry_run=True, actor="ann")
    assert [(e["sku"], e["delta"], e["status"]) for e in found] == [
        ("TEA", 2, "change"), ("CUP", 0, "unchanged"), ("POT", 3, "change"),
    ]  # fmt: skip
    assert lv(shelf, "TEA").on_hand == 5
    shelf.import_counts(rows, dry_run=False, actor="ann")
    assert lv(shelf, "TEA") == Levels(7, 7, 0, 0)
    assert lv(shelf, "POT") == Levels(3, 3, 0, 0)
    # the same file again is stale on TEA and POT: nothing is written
    with pytest.raises(Conflict) as err:
        shelf.import_counts([*rows, {"sku": "NOPE", "on_hand": 1}], dry_run=False, actor="ann")
    statuses = {e["sku"]: e["status"] for e in err.value.details["diff"]}
    assert statuses == {"TEA": "stale", "CUP": "unchanged", "POT": "stale", "NOPE": "unknown_sku"}
    assert lv(shelf, "TEA").on_hand == 7
    assert shelf.audit() == []


def test_import_never_takes_held_units(shelf: Any) -> None:
    shelf.reserve("o1", [("TEA", 4)], ttl=60)
    found = shelf.import_counts([{"sku": "TEA", "on_hand": 1}], dry_run=True, actor="ann")
    assert found[0]["status"] == "short"
    with pytest.raises(Conflict):
        shelf.import_counts([{"sku": "TEA", "on_hand": 1}], dry_run=False, actor="ann")
    assert lv(shelf, "TEA") == Levels(5, 1, 4, 0)


def test_add_sku_is_idempotent(shelf: Any) -> None:
    shelf.add_sku("TEA", 99, actor="test")
    assert lv(shelf, "TEA") == Levels(5, 5, 0, 0)


def test_levels_of_all_and_none(shelf: Any) -> None:
    assert set(shelf.levels()) == {"TEA", "CUP", "POT"}
    assert shelf.levels([]) == {}
    assert shelf.levels(["NOPE"]) == {}


def test_available_is_the_levels_available(shelf: Any, mirror: OrderMirror) -> None:
    mirror.place("o1", [("TEA", 2), ("CUP", 2)])
    mirror.pay("o1")
    mirror.place("o2", [("TEA", 1)])
    skus = ["TEA", "CUP", "POT", "NOPE", "TEA"]
    assert shelf.available(skus) == {s: lv.available for s, lv in shelf.levels(skus).items()}
    assert shelf.available(skus) == {"TEA": 2, "CUP": 0, "POT": 0}
    assert shelf.available([]) == {}


def test_rebuild_keeps_what_the_database_says(shelf: Any, mirror: OrderMirror) -> None:
    mirror.place("o1", [("TEA", 2)])
    mirror.place("o2", [("TEA", 1), ("CUP", 1)])
    mirror.pay("o2")
    before = shelf.levels()
    shelf.rebuild()
    assert shelf.levels() == before
    assert shelf.audit() == []


def test_ship_needs_a_sale(shelf: Any, mirror: OrderMirror) -> None:
    with pytest.raises(Conflict):
        shelf.ship("never-sold", actor="test")
    mirror.place("o1", [("TEA", 1)])
    with pytest.raises(Conflict):
        shelf.ship("o1", actor="test")  # held, not paid
    mirror.pay("o1")
    mirror.ship("o1")
    shelf.ship("o1", actor="test")  # shipped before: nothing more happens
    assert lv(shelf, "TEA") == Levels(4, 4, 0, 0)


def test_a_hold_until_released_is_never_reclaimed(
    shelf: Any, mirror: OrderMirror, engine_kind: str
) -> None:
    """A gateway order's hold (``ttl=None``): its buyer may have paid, so neither a later
    reserve, the sweep nor a rebuild gives its units back; only release() does. A timed
    hold beside it expires as before."""
    mirror.place("gw", [("CUP", 2)], ttl=None)  # CUP: the shelf's 2 units
    mirror.place("offline", [("TEA", 5)], ttl=60)
    expire_hold(shelf, mirror.store, "offline")
    with pytest.raises(InsufficientStock):
        shelf.reserve("next", [("CUP", 1)], ttl=60)
    # the expired offline hold only; the Redis engine's reserve above took it back
    # already (it reclaims the earliest expired holds of any SKU)
    assert shelf.sweep() == (0 if engine_kind == "redis" else 1)
    assert lv(shelf, "TEA") == Levels(5, 5, 0, 0)
    if engine_kind == "redis":
        shelf.client.delete(f"{shelf.prefix}{EPOCH_KEY}")  # Redis lost its data
        shelf.rebuild()
    assert lv(shelf, "CUP") == Levels(2, 0, 2, 0)
    assert shelf.audit() == []
    assert shelf.release("gw") is True
    shelf.reserve("next", [("CUP", 1)], ttl=60)
    assert lv(shelf, "CUP") == Levels(2, 1, 1, 0)


def test_a_hold_until_released_commits_whenever_the_payment_comes(
    shelf: Any, mirror: OrderMirror
) -> None:
    mirror.place("gw", [("TEA", 1)], ttl=None)
    shelf.sweep()
    assert mirror.pay("gw") is True
    assert lv(shelf, "TEA") == Levels(5, 4, 0, 1)


def test_holds_until_released_are_listed_by_age_for_the_orphan_check(
    shelf: Any, engine_kind: str
) -> None:
    """A hold no order owns (a checkout died before its order's commit) must be findable:
    Redis lists holds-until-released older than a given age; on the SQL engines a hold
    and its order share one transaction, so there are none."""
    shelf.reserve("lost", [("TEA", 1)], ttl=None)
    shelf.reserve("timed", [("TEA", 1)], ttl=60)
    if engine_kind != "redis":
        assert shelf.orphans(0) == []
        return
    assert shelf.orphans(3600) == []  # taken just now
    assert shelf.orphans(-5) == ["lost"]  # every hold-until-released, timed ones never
