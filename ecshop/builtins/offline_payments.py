"""Offline payment methods: cash on delivery and bank transfer.

The order goes to ``accepted`` at checkout and holds its stock for the method's pay
window (setting ``pay_window``, seconds: 3 days for bank transfer, 7 for cash on
delivery); the admin marks it paid with ``POST /api/v1/admin/orders/{number}/mark-paid``
when the money arrives, otherwise the reconciler cancels it when the window ends and the
stock comes back. The customer may cancel it while it is unpaid.
"""

from __future__ import annotations

from typing import Any

from ecshop.money import format_money
from ecshop.payments.base import Gateway, PaymentOrder, PaymentStart, Setting

NAME = "offline_payments"
VERSION = "1.0"


class CashOnDelivery(Gateway):
    name = "cod"
    title = "Cash on delivery"
    offline = True
    pay_window = 7 * 86400

    def start_payment(
        self, order: PaymentOrder, *, notify_url: str, return_url: str
    ) -> PaymentStart:
        return PaymentStart(
            offline=True,
            instructions=f"Pay {format_money(order.amount, order.currency)} on delivery.",
        )


class BankTransfer(Gateway):
    name = "bank_transfer"
    title = "Bank transfer"
    offline = True
    pay_window = 3 * 86400
    SETTINGS = (
        Setting("account", required=True, help="the account buyers transfer to"),
    )  # ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT

    def start_payment(
        self, order: PaymentOrder, *, notify_url: str, return_url: str
    ) -> PaymentStart:
        account = self.settings["account"]
        return PaymentStart(offline=True, instructions=(
            f"Transfer {format_money(order.amount, order.currency)} to {account}, "
            f"reference {order.number}."))  # fmt: skip


def register(host: Any) -> None:
    host.add_gateway(CashOnDelivery)
    host.add_gateway(BankTransfer)
