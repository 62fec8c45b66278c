"""The order state machine: one table of moves, and the graph it makes."""

from __future__ import annotations

import re
from pathlib import Path

from ecshop import orders
from ecshop.orders import MOVES, TRANSITIONS, may

PACKAGE = Path(orders.__file__).resolve().parent


def test_the_moves_make_the_documented_graph():
    assert {
        "pending_payment": {"accepted", "paid", "needs_attention", "cancelled"},
        "accepted": {"paid", "needs_attention", "cancelled"},
        "paid": {"shipped", "cancelled", "refunded"},
        "shipped": {"refunded"},
        # a captured payment for a cancelled order is never dropped
        "cancelled": {"paid", "needs_attention"},
        "needs_attention": {"paid", "refunded"},
        "refunded": set(),
    } == TRANSITIONS


def test_money_arriving_by_hand_never_revives_a_cancelled_order():
    assert not may("mark_paid", "cancelled")
    assert may("capture", "cancelled")  # but a gateway's capture is kept
    assert may("mark_paid", "accepted") and may("mark_paid", "pending_payment")


def test_no_caller_keeps_its_own_list_of_legal_states():
    """Every transition goes through orders.MOVES: no module names the states a move
    may start from by itself."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        # the fake provider's own payment states (the ecshop.sandbox package)
        if "sandbox" in path.name or path.relative_to(PACKAGE).parts[0] == "sandbox":
            continue
        text = path.read_text(encoding="utf-8")
        if path.name != "orders.py" and re.search(
            r"allowed_from|frozenset\(\{\s*(PENDING|PAID|ACCEPTED)", text
        ):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []
    assert all(move.sources for move in MOVES.values())
