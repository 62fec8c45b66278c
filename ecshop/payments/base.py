"""The gateway interface: a gateway only speaks its provider's protocol.

State, idempotency and stock stay in the core (``ecshop.payments.flow`` and
``ecshop.payments.notifications``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecshop.errors import BadRequest, GatewayError
from ecshop.payments.callback import (
    NotificationOutcome,
    NotificationReply,
    NotificationRequest,
    json_reply,
)

#: the shortest shared secret a gateway may run with
MIN_SECRET_BYTES = 32


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
    #: the gateway's id of the refund a ``refund.succeeded`` is about: the shop records
    #: each refund once under it, whether it started the refund or the merchant did
    refund_id: str | None = None


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
    """Base class of payment gateways. Settings come from ``ECSHOP_GATEWAY_<NAME>_<KEY>``.

    Class attributes a gateway sets:

    - ``name``, ``title``; ``offline`` for methods paid outside a gateway (the order is
      ``accepted`` and holds its stock for ``pay_window`` seconds, the ``pay_window``
      setting overriding it).
    - ``required_settings``: settings without which the gateway cannot run, and
      ``secret_settings``: those that are shared secrets (at least
      :data:`MIN_SECRET_BYTES` bytes). A gateway missing one is not live: it is not
      offered, and a checkout naming it is refused.
    - ``test_mode``: a gateway for test payments (the sandbox).
    - ``can_expire``: :meth:`expire_payment` is implemented.
    """

    name: str = ""
    title: str = ""
    offline: bool = False
    pay_window: float = 3 * 86400
    required_settings: tuple[str, ...] = ()
    secret_settings: tuple[str, ...] = ()
    test_mode: bool = False
    can_expire: bool = False

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.settings = dict(settings)

    def missing_settings(self) -> list[str]:
        """Why this gateway cannot run: each required setting that is unset, and each
        secret shorter than :data:`MIN_SECRET_BYTES` bytes. Empty when it is live."""
        missing = []
        for key in dict.fromkeys(self.required_settings + self.secret_settings):
            value = str(self.settings.get(key, "") or "")
            if not value.strip():
                missing.append(f"{key} (not set)")
            elif key in self.secret_settings and len(value.encode()) < MIN_SECRET_BYTES:
                missing.append(f"{key} (shorter than {MIN_SECRET_BYTES} bytes)")
        return missing

    def hold_seconds(self) -> float | None:
        """How long an order of this gateway holds its stock: an offline method's pay
        window, or None (until the gateway has said the order is not paid)."""
        if not self.offline:
            return None
        raw = self.settings.get("pay_window")
        try:
            window = float(raw) if raw not in (None, "") else float(self.pay_window)
        except ValueError:
            window = -1.0
        if not 0 < window <= 366 * 86400:
            raise GatewayError(f"gateway {self.name}: pay_window must be 1 to 31622400 seconds")
        return window

    def start_payment(
        self, order: PaymentOrder, *, notify_url: str, return_url: str
    ) -> PaymentStart:
        raise NotImplementedError

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentEvent:
        """Verify and parse a notification; raise ``SignatureError`` on anything wrong.

        A gateway that needs more than the headers and the body (the query string, the
        content type) implements :meth:`parse_request` instead; then this one calls it.
        """
        if type(self).parse_request is not Gateway.parse_request:
            return self.parse_request(NotificationRequest(headers, body))
        raise BadRequest(f"gateway {self.name} takes no notifications", gateway=self.name)

    def parse_request(self, request: NotificationRequest) -> PaymentEvent:
        """Verify and parse a notification from everything the provider sent: the raw
        body, the headers, the query string. The shop calls this one; by default it
        passes the headers and the body to :meth:`parse_notification`.

        Raises:
            SignatureError: the signature, its timestamp or the content is wrong (400).
        """
        return self.parse_notification(request.headers, request.body)

    def notification_reply(self, outcome: NotificationOutcome) -> NotificationReply:
        """The answer the provider expects to a notification, once the shop has
        journaled it (``outcome.journaled``: received now or a duplicate), refused it
        (``refused``: a 4xx) or failed to record it (``failed``: a 5xx, so it retries).

        The default is JSON: ``{"received": true, "event", "outcome"}`` with 200, or
        the shop's error object with the outcome's status. A provider that wants a
        literal ``OK`` returns ``NotificationReply.text("OK")`` for a journaled outcome.
        The shop never sends a 2xx for an outcome that is not journaled.
        """
        return json_reply(outcome)

    def fetch_status(self, order_number: str) -> PaymentStatus:
        return PaymentStatus(order_number, "unknown")

    def refund(self, order_number: str, amount: int) -> RefundResult:
        raise GatewayError(f"gateway {self.name} cannot refund")

    def expire_payment(self, order_number: str) -> PaymentStatus:
        """End the order's payment session so that no capture can follow, and answer its
        final status (``succeeded`` when the buyer paid first). Gateways that can do this
        set ``can_expire = True``; the reconciler calls it before it gives the order's
        stock back. Raise ``GatewayError`` when the provider cannot be reached."""
        raise GatewayError(f"gateway {self.name} cannot expire a payment session")

    def capture(self, order_number: str, amount: int) -> Any:
        raise GatewayError(f"gateway {self.name} does not authorize-then-capture")
