"""Example plugin: a flat shipping fee with a free-shipping threshold, and a log line
when an order is paid."""

from __future__ import annotations

import logging
from typing import Any

NAME = "shipping_fee"
VERSION = "1.0"
FEE = 500
FREE_FROM = 5000

log = logging.getLogger("ecshop.plugins.shipping_fee")


def add_shipping(totals: dict[str, Any]) -> dict[str, Any]:
    """Set shipping; the shop adds it (and every fee line) into the total itself."""
    return {**totals, "shipping": 0 if totals["subtotal"] >= FREE_FROM else FEE}


def on_paid(order: dict[str, Any]) -> None:
    log.info("order %s paid: %s %s", order["number"], order["total"], order["currency"])


def register(host: Any) -> None:
    host.add_filter("cart_totals", add_shipping, accepted_args=1)
    host.add_action("order_paid", on_paid)
