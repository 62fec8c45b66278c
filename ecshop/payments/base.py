"""The gateway interface: a gateway only speaks its provider's protocol.

State, idempotency and stock stay in the core (``ecshop.payments.flow`` and
``ecshop.payments.notifications``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecshop.errors import BadRequest, GatewayError


@dataclass(frozen=True)
class PaymentOrder:
    number: str
    amount: int
    currency: str
    customer_email: str = ""
    description: str = ""


@dataclass(frozen=True)
class PaymentStart:
    """Where to send the customer: a redirect, an auto-posting form, or nothing (offline)."""

    redirect_url: str | None = None
    form_action: str | None = None
    form_fields: Mapping[str, str] = field(default_factory=dict)
    offline: bool = False
    instructions: str | None = None


@dataclass(frozen=True)
class PaymentEvent:
    id: str
    type: str  # payment.succeeded | payment.failed | refund.succeeded
    order: str
    amount: int
    currency: str
    payment_id: str | None
    created: int
    raw: bytes = b""


@dataclass(frozen=True)
class PaymentStatus:
    order: str
    status: str  # succeeded | failed | pending | refunded | partially_refunded | unknown
    amount: int | None = None
    currency: str | None = None
    payment_id: str | None = None
    refunded_amount: int = 0


@dataclass(frozen=True)
class RefundResult:
    id: str
    order: str
    amount: int
    refunded_total: int


class Gateway:
    """Base class of payment gateways. Settings come from ``ECSHOP_GATEWAY_<NAME>_<KEY>``."""

    name: str = ""
    title: str = ""
    offline: bool = False

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.settings = dict(settings)

    def start_payment(
        self, order: PaymentOrder, *, notify_url: str, return_url: str
    ) -> PaymentStart:
        raise NotImplementedError

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentEvent:
        """Verify and parse a notification; raise ``SignatureError`` on anything wrong."""
        raise BadRequest(f"gateway {self.name} takes no notifications", gateway=self.name)

    def fetch_status(self, order_number: str) -> PaymentStatus:
        return PaymentStatus(order_number, "unknown")

    def refund(self, order_number: str, amount: int) -> RefundResult:
        raise GatewayError(f"gateway {self.name} cannot refund")

    def capture(self, order_number: str, amount: int) -> Any:
        raise GatewayError(f"gateway {self.name} does not authorize-then-capture")
