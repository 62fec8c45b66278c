"""The delivery date and time slot: only what the shop offers, within its window (in
the shop's time zone), stored with the order."""

from __future__ import annotations

import datetime as dt

import pytest

from ecshop.config import load_config
from ecshop.delivery import DeliveryPolicy
from ecshop.errors import ConfigError, ValidationError

# 2026-12-02 23:30 in Tokyo (14:30 UTC): "today" is the 2nd there
NOW = dt.datetime(2026, 12, 2, 14, 30, tzinfo=dt.UTC).timestamp()
POLICY = DeliveryPolicy(("morning", "14-16", "18-20"), lead_days=2, range_days=5)


def test_the_window_starts_lead_days_after_today_in_the_shops_time_zone():
    assert POLICY.options(NOW) == {
        "dates": ["2026-12-04", "2026-12-05", "2026-12-06", "2026-12-07", "2026-12-08",
                  "2026-12-09"],
        "slots": ["morning", "14-16", "18-20"],
    }  # fmt: skip
    late = DeliveryPolicy((), 2, 5, "UTC")
    assert late.options(NOW)["dates"][0] == "2026-12-04"
    assert POLICY.check({"date": "2026-12-04", "slot": "14-16"}, NOW) == {
        "date": "2026-12-04", "slot": "14-16"}  # fmt: skip
    assert POLICY.check({"slot": "morning"}, NOW) == {"slot": "morning"}
    assert POLICY.check(None, NOW) is None


@pytest.mark.parametrize(("delivery", "message"), [
    ({"date": "2026-12-03"}, "delivery.date must be from 2026-12-04 to 2026-12-09"),
    ({"date": "2026-12-10"}, "delivery.date must be from 2026-12-04 to 2026-12-09"),
    ({"date": "2026-02-30"}, "delivery.date must be a date as YYYY-MM-DD"),
    ({"slot": "night"}, "delivery.slot must be one of the shop's slots"),
])  # fmt: skip
def test_a_choice_the_shop_does_not_offer_is_a_400(delivery, message):
    with pytest.raises(ValidationError, match=message) as info:
        POLICY.check(delivery, NOW)
    assert info.value.status == 400


def test_a_shop_without_delivery_choices_refuses_them():
    with pytest.raises(ValidationError, match="does not take delivery dates"):
        DeliveryPolicy().check({"date": "2026-12-05"}, NOW)
    with pytest.raises(ValidationError, match=r"slots \(none\)"):
        DeliveryPolicy().check({"slot": "morning"}, NOW)


def test_the_settings_are_read_and_checked():
    config = load_config({"ECSHOP_DELIVERY_SLOTS": "morning,14-16", "ECSHOP_DELIVERY_RANGE_DAYS": "7",
                          "ECSHOP_DELIVERY_LEAD_DAYS": "3"})  # fmt: skip
    assert (config.delivery_slots, config.delivery_lead_days, config.delivery_range_days) == (
        ("morning", "14-16"), 3, 7)  # fmt: skip
    for name, raw in (("DELIVERY_SLOTS", "a,a"), ("DELIVERY_RANGE_DAYS", "-1"),
                      ("TIMEZONE", "Mars/Olympus")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"ECSHOP_{name}"):
            load_config({f"ECSHOP_{name}": raw})
