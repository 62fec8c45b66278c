"""The admin's order actions as planned before they are made: which statuses allow each
(from orders.MOVES), what a cancel or a refund pays back, the refund's bounds, and the
role money going back needs."""

from __future__ import annotations

import pytest

from ecshop.admins import NotAllowed
from ecshop.audit import TOKEN, Actor
from ecshop.errors import BadRequest, IllegalTransition
from ecshop.order_admin import (
    CANCEL,
    MARK_PAID,
    REFUND,
    SHIP,
    check_role,
    event_actor,
    plan_of,
)
from ecshop.orders import STATUSES, may


def order(status: str, paid: int = 0, refunded: int = 0, total: int = 3700) -> dict:
    return {"number": "N1", "status": status, "currency": "JPY", "gateway": "sandbox",
            "total": total, "paid_amount": paid, "refunded_amount": refunded,
            "stock_state": "committed"}  # fmt: skip


@pytest.mark.parametrize("status", STATUSES)
def test_ship_and_cancel_are_planned_exactly_where_the_moves_allow(status):
    for action, move in ((SHIP, "ship"), (CANCEL, "admin_cancel")):
        if may(move, status):
            assert plan_of(order(status), action).status == status
        else:
            with pytest.raises(IllegalTransition):
                plan_of(order(status), action)


def test_cancelling_a_paid_order_refunds_what_is_left_and_needs_an_owner():
    plan = plan_of(order("paid", paid=3700, refunded=700), CANCEL)
    assert (plan.to, plan.refund) == ("cancelled", 3000)
    check_role(plan, "owner")
    with pytest.raises(NotAllowed):
        check_role(plan, "staff")
    unpaid = plan_of(order("accepted"), CANCEL)
    assert unpaid.refund == 0
    check_role(unpaid, "staff")


def test_a_refund_is_of_1_to_what_is_left_and_all_of_it_settles_the_order():
    assert plan_of(order("shipped", paid=3700), REFUND).refund == 3700  # all by default
    part = plan_of(order("shipped", paid=3700, refunded=200), REFUND, 1000)
    assert (part.refund, part.to, part.outstanding) == (1000, "shipped", 3500)
    assert plan_of(order("shipped", paid=3700, refunded=200), REFUND, 3500).to == "refunded"
    for amount in (0, -5, 3501):
        with pytest.raises(BadRequest):
            plan_of(order("shipped", paid=3700, refunded=200), REFUND, amount)
    with pytest.raises(BadRequest):
        plan_of(order("accepted"), REFUND)  # nothing paid
    with pytest.raises(NotAllowed):
        check_role(plan_of(order("paid", paid=3700), REFUND, 1), "staff")


def test_mark_paid_records_the_total_or_a_backorders_payment():
    assert plan_of(order("accepted"), MARK_PAID).amount == 3700
    assert plan_of(order("needs_attention", paid=3600), MARK_PAID).amount == 3600
    for status in ("cancelled", "paid", "shipped"):
        with pytest.raises(IllegalTransition):
            plan_of(order(status), MARK_PAID)


def test_events_name_the_admin_account_and_the_api_stays_admin():
    assert event_actor(Actor("admin:hanako", "web")) == "admin:hanako"
    assert event_actor(TOKEN) == "admin"
