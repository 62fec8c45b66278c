"""The SQL engine only: it shares the caller's transaction (Redis cannot)."""

from __future__ import annotations

from typing import Any

import pytest

from ecshop.errors import InsufficientStock
from ecshop.stock import Levels
from ecshop.store import Store

from .test_engine import lv


@pytest.fixture(params=["sqlite", "mysql"])
def engine_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_reserve_joins_the_callers_transaction(shelf: Any, stock_store: Store) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), stock_store.tx():
        shelf.reserve("o1", [("TEA", 2)], ttl=60)
        raise Boom
    assert lv(shelf, "TEA") == Levels(5, 5, 0, 0)
    # a refusal inside a caller's transaction that goes on leaves nothing behind
    with stock_store.tx(), pytest.raises(InsufficientStock):
        shelf.reserve("o2", [("CUP", 1), ("TEA", 6)], ttl=60)
    assert lv(shelf, "CUP") == Levels(2, 2, 0, 0)
