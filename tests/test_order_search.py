"""The admin's order list on both dialects: newest first with a keyset cursor that
survives orders placed at the same moment, days in the shop's time zone, and the search
in the customer's JSON (email any case, a Japanese name, % taken literally)."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from ecshop.errors import ValidationError
from ecshop.order_search import Cursor, OrderFilter, by_numbers, each, page

TOKYO = ZoneInfo("Asia/Tokyo")
ZONE = "Asia/Tokyo"


def insert(store, number: str, when: dt.datetime, status: str = "paid", **customer: str) -> None:
    with store.tx() as tx:
        tx.execute(
            "INSERT INTO orders (number, access_token, status, stock_state, gateway, currency, "
            "subtotal, shipping, total, customer_json, paid_amount, refunded_amount, version, "
            "created_at, updated_at) VALUES (?, 'x', ?, 'committed', 'sandbox', 'JPY', 1000, 0, "
            "1000, ?, 1000, 0, 0, ?, ?)",
            (number, status, json.dumps(customer, ensure_ascii=False), when.timestamp(),
             when.timestamp()),
        )  # fmt: skip


def numbers(rows) -> list[str]:
    return [r["number"] for r in rows]


def test_pages_follow_each_other_through_orders_of_one_moment(store):
    moment = dt.datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=TOKYO)
    for name in ("A", "B", "C", "D", "E"):
        insert(store, name, moment)
    insert(store, "OLD", moment - dt.timedelta(seconds=1))
    seen, after = [], None
    while True:
        rows, after = page(store, OrderFilter(), zone=ZONE, after=after, limit=2)
        seen += numbers(rows)
        if after is None:
            break
        after = Cursor.parse(str(after))  # as the next link carries it
    assert seen == ["E", "D", "C", "B", "A", "OLD"]
    assert numbers(each(store, OrderFilter(), zone=ZONE, batch=4)) == seen
    assert set(by_numbers(store, ["C", "NOPE", "A"])) == {"A", "C"}


def test_days_are_the_shops_and_statuses_filter(store):
    insert(store, "JAN1-LATE", dt.datetime(2026, 1, 1, 23, 30, tzinfo=TOKYO))
    insert(store, "JAN1-EARLY", dt.datetime(2026, 1, 1, 0, 5, tzinfo=TOKYO), status="shipped")
    insert(store, "JAN2", dt.datetime(2026, 1, 2, 0, 10, tzinfo=TOKYO))
    day = OrderFilter(since="2026-01-01", until="2026-01-01")
    assert numbers(page(store, day, zone=ZONE)[0]) == ["JAN1-LATE", "JAN1-EARLY"]
    assert numbers(page(store, OrderFilter(status="shipped"), zone=ZONE)[0]) == ["JAN1-EARLY"]
    # the same days in UTC cut elsewhere
    assert numbers(page(store, day, zone="UTC")[0]) == ["JAN2", "JAN1-LATE"]


def test_search_reads_the_customers_email_and_name(store):
    at = dt.datetime(2026, 2, 1, 9, 0, tzinfo=TOKYO)
    insert(store, "N-1", at, email="Hanako@Example.com", name="山田花子", city="tea%town")
    insert(store, "N-2", at, email="taro@example.com", name="100% Taro")
    insert(store, "N-3", at, email="x@example.com", name="Jiro", note="hanako")

    def found(words: str) -> list[str]:
        return sorted(numbers(page(store, OrderFilter(q=words), zone=ZONE)[0]))

    assert found("hanako@example.COM") == ["N-1"]  # not N-3, whose note says hanako
    assert found("山田") == ["N-1"]
    assert found("100%") == ["N-2"] and found("%") == ["N-2"]
    assert found("n-3") == ["N-3"]
    assert found("nobody") == []


def test_a_bad_filter_or_cursor_is_a_validation_error():
    for bad in ({"status": "lost"}, {"since": "2026-02-30"}, {"until": "yesterday"}):
        with pytest.raises(ValidationError):
            OrderFilter(**bad)
    for cursor in ("", "abc", "nan~X", "1.5", "inf~X"):
        with pytest.raises(ValidationError):
            Cursor.parse(cursor)
    assert not OrderFilter().explicit and OrderFilter(q="x").explicit
