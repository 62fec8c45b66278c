"""Built-in plugin: shipping by a flat fee, per-prefecture zones and a free-shipping
threshold, and a log line when an order is paid.

Settings (minor units of the shop's currency, tax included like every price):
``ECSHOP_PLUGIN_SHIPPING_FEE_FEE`` (default 500), ``..._FREE_OVER`` (default 5000: a
subtotal of at least this ships free, whatever the zone; 0 = never free) and
``..._ZONES`` (``hokkaido:1200,okinawa:1500,47:1500``: the fee for an address in that
prefecture, named by romaji, kanji or JIS code 01-47), or a ``[plugin.shipping_fee]``
table. The customer's ``address.prefecture`` picks the zone; an order with no address,
or a prefecture with no zone of its own, pays the flat fee. Shipping is taxed at the
standard rate (:mod:`ecshop.tax`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ecshop.prefectures import code_of
from ecshop.schema import MAX_PRICE
from ecshop.settings import Setting

NAME = "shipping_fee"
VERSION = "1.2"


def parse_zones(text: str) -> dict[str, int]:
    """``hokkaido:1200,47:1500`` as ``{"01": 1200, "47": 1500}`` (JIS code -> fee).

    Raises:
        ValueError: an item is not ``<prefecture>:<fee>``, names no prefecture, or
            names one twice.
    """
    zones: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, fee = item.rpartition(":")
        code = code_of(name) if sep else None
        if code is None or not fee.strip().isdigit() or int(fee) > MAX_PRICE:
            raise ValueError(f"{item!r} is not <prefecture>:<fee>, e.g. hokkaido:1200")
        if code in zones:
            raise ValueError(f"{item!r}: prefecture {code} has a zone already")
        zones[code] = int(fee)
    return zones


SETTINGS = (
    Setting("fee", int, default=500, minimum=0,
            help="shipping fee per order, in minor units of the shop's currency"),
    Setting("free_over", int, default=5000, minimum=0,
            help="a subtotal of at least this ships free (0: never free)"),
    Setting("zones", str, default="", parse=parse_zones,
            help="fees by prefecture, e.g. hokkaido:1200,okinawa:1500 (names or JIS codes)"),
)  # fmt: skip

log = logging.getLogger("ecshop.plugins.shipping_fee")
Totals = dict[str, Any]


def zone_fee(customer: Any, zones: Mapping[str, int], fee: int) -> int:
    """The fee for ``customer``'s address: its prefecture's zone, else the flat ``fee``."""
    address = customer.get("address") if isinstance(customer, Mapping) else None
    prefecture = address.get("prefecture") if isinstance(address, Mapping) else None
    code = code_of(prefecture) if isinstance(prefecture, str) else None
    return zones.get(code, fee) if code else fee


def shipping_filter(fee: int, free_over: int, zones: Mapping[str, int] | None = None,
                    ) -> Callable[[Totals, dict[str, Any]], Totals]:  # fmt: skip
    """The ``cart_totals`` filter setting shipping: nothing from ``free_over`` on, else
    the zone's fee or ``fee``."""
    table = dict(zones or {})

    def add_shipping(totals: Totals, cart: dict[str, Any]) -> Totals:
        free = 0 < free_over <= totals["subtotal"]
        shipping = 0 if free else zone_fee(cart.get("customer"), table, fee)
        # the shop adds shipping (and every fee line) into the total itself
        return {**totals, "shipping": shipping}

    return add_shipping


def on_paid(order: dict[str, Any]) -> None:
    log.info("order %s paid: %s %s", order["number"], order["total"], order["currency"])


def register(host: Any) -> None:
    settings = host.settings
    zones = settings["zones"]
    if isinstance(zones, str):  # the default, unconverted
        zones = parse_zones(zones)
    host.add_filter("cart_totals", shipping_filter(settings["fee"], settings["free_over"], zones))
    host.add_action("order_paid", on_paid)
