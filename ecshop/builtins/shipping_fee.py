"""Built-in plugin: a flat shipping fee with a free-shipping threshold, and a log line
when an order is paid.

Settings (minor units of the shop's currency): ``ECSHOP_PLUGIN_SHIPPING_FEE_FEE``
(default 500) and ``ECSHOP_PLUGIN_SHIPPING_FEE_FREE_OVER`` (default 5000: a subtotal of
at least this ships free; 0 = never free), or a ``[plugin.shipping_fee]`` table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ecshop.settings import Setting

NAME = "shipping_fee"
VERSION = "1.1"
SETTINGS = (
    Setting("fee", int, default=500, minimum=0,
            help="shipping fee per order, in minor units of the shop's currency"),
    Setting("free_over", int, default=5000, minimum=0,
            help="a subtotal of at least this ships free (0: never free)"),
)  # fmt: skip

log = logging.getLogger("ecshop.plugins.shipping_fee")
Totals = dict[str, Any]


def shipping_filter(fee: int, free_over: int) -> Callable[[Totals, dict[str, Any]], Totals]:
    """The ``cart_totals`` filter adding ``fee``, or nothing from ``free_over`` on."""

    def add_shipping(totals: Totals, cart: dict[str, Any]) -> Totals:
        free = 0 < free_over <= totals["subtotal"]
        shipping = 0 if free else fee
        # the shop adds shipping (and every fee line) into the total itself
        return {**totals, "shipping": shipping}

    return add_shipping


def on_paid(order: dict[str, Any]) -> None:
    log.info("order %s paid: %s %s", order["number"], order["total"], order["currency"])


def register(host: Any) -> None:
    settings = host.settings
    host.add_filter("cart_totals", shipping_filter(settings["fee"], settings["free_over"]))
    host.add_action("order_paid", on_paid)
