"""Offline payment methods: cash on delivery and bank transfer.

The order goes to ``accepted`` at checkout (its stock is sold then); the admin marks it
paid with ``POST /api/v1/admin/orders/{number}/mark-paid`` when the money arrives.
"""

from __future__ import annotations

from typing import Any

from ecshop.payments.base import Gateway, PaymentOrder, PaymentStart

NAME = "offline_payments"
VERSION = "1.0"


class CashOnDelivery(Gateway):
    name = "cod"
    title = "Cash on delivery"
    offline = True

    def start_payment(
        self, order: PaymentOrder, *, notify_url: str, return_url: str
    ) -> PaymentStart:
        return PaymentStart(
            offline=True, instructions=f"Pay {order.amount} {order.currency} on delivery."
        )


class BankTransfer(Gateway):
    name = "bank_transfer"
    title = "Bank transfer"
    offline = True

    def start_payment(
        self, order: PaymentOrder, *, notify_url: str, return_url: str
    ) -> PaymentStart:
        account = self.settings.get("account", "(set ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT)")
        return PaymentStart(offline=True, instructions=(
            f"Transfer {order.amount} {order.currency} to {account}, reference {order.number}."))  # fmt: skip


def register(host: Any) -> None:
    host.add_gateway(CashOnDelivery)
    host.add_gateway(BankTransfer)
