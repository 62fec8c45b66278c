"""The buyer's delivery date and time slot (配達日時指定), where the shop offers them.

``ECSHOP_DELIVERY_RANGE_DAYS`` > 0 offers a date: from ``ECSHOP_DELIVERY_LEAD_DAYS``
days after today (in ``ECSHOP_TIMEZONE``) through ``RANGE_DAYS`` days after that first
day; ``ECSHOP_DELIVERY_SLOTS`` (``morning,14-16,16-18,18-20``) offers time slots. The
checkout body may then carry ``delivery: {date, slot}``, both optional; the order keeps
what was chosen.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ecshop.errors import ValidationError
from ecshop.schema import Schema, obj

#: the checkout body's ``delivery`` (what is offered is checked by :meth:`DeliveryPolicy.check`)
DELIVERY: Schema = obj({}, {
    "date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$",
             "description": "a date as YYYY-MM-DD"},
    "slot": {"type": "string", "minLength": 1, "maxLength": 32,
             "description": "one of the shop's delivery time slots"},
})  # fmt: skip


@dataclass(frozen=True)
class DeliveryPolicy:
    """What delivery choices a shop offers."""

    slots: tuple[str, ...] = ()
    lead_days: int = 2
    range_days: int = 0
    timezone: str = "Asia/Tokyo"

    def window(self, now: float | None = None) -> tuple[dt.date, dt.date] | None:
        """The first and last date a buyer may choose; None when dates are not offered."""
        if self.range_days <= 0:
            return None
        today = dt.datetime.fromtimestamp(time.time() if now is None else now,
                                          ZoneInfo(self.timezone)).date()  # fmt: skip
        first = today + dt.timedelta(days=self.lead_days)
        return first, first + dt.timedelta(days=self.range_days)

    def options(self, now: float | None = None) -> dict[str, Any]:
        """What the checkout form offers: ``{"dates": [...], "slots": [...]}``."""
        window = self.window(now)
        dates = []
        if window:
            day = window[0]
            while day <= window[1]:
                dates.append(day.isoformat())
                day += dt.timedelta(days=1)
        return {"dates": dates, "slots": list(self.slots)}

    def check(self, delivery: Any, now: float | None = None) -> dict[str, str] | None:
        """The checked choice (``{"date"?, "slot"?}``), None for no choice.

        Raises:
            ValidationError: a date outside the window or not offered, an unknown slot.
        """
        if not delivery:
            return None
        chosen: dict[str, str] = {}
        if "date" in delivery:
            chosen["date"] = self._date(delivery["date"], now)
        if "slot" in delivery:
            if delivery["slot"] not in self.slots:
                offered = ", ".join(self.slots) or "none"
                raise ValidationError(f"delivery.slot must be one of the shop's slots ({offered})",
                                      field="delivery.slot")  # fmt: skip
            chosen["slot"] = delivery["slot"]
        return chosen or None

    def _date(self, text: str, now: float | None) -> str:
        window = self.window(now)
        if window is None:
            raise ValidationError("this shop does not take delivery dates", field="delivery.date")
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise ValidationError("delivery.date must be a date as YYYY-MM-DD",
                                  field="delivery.date") from None  # fmt: skip
        if not window[0] <= day <= window[1]:
            raise ValidationError(
                f"delivery.date must be from {window[0].isoformat()} to {window[1].isoformat()}",
                field="delivery.date", first=window[0].isoformat(), last=window[1].isoformat(),
            )  # fmt: skip
        return day.isoformat()
