"""The gateway interface: a gateway only speaks its provider's protocol.

State, idempotency and stock stay in the core (``ecshop.payments.flow`` and
``ecshop.payments.notifications``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ecshop.errors import BadRequest, GatewayError
from ecshop.payments.callback import (
    NotificationOutcome,
    NotificationReply,
    NotificationRequest,
    json_reply,
)
from ecshop.settings import MIN_SECRET_BYTES, Setting, resolve

__all__ = ["MIN_SECRET_BYTES", "Gateway", "PaymentEvent", "PaymentOrder", "PaymentStart",
           "PaymentStatus", "RefundResult", "Setting", "refund_through"]  # fmt: skip

#: the longest pay window an offline method may have (a leap year)
MAX_PAY_WINDOW = 366 * 86400


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
    # succeeded | failed | pending | expired | refunded | partially_refunded | unknown
    status: str
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
    - ``SETTINGS``: the :class:`~ecshop.settings.Setting` s it takes, typed, required or
      not, secret or not. They are converted once, at load, into :attr:`settings`; a
      required one unset or a bad value makes the gateway not live (not offered, a
      checkout naming it refused, named by ``ecshop plugins`` and ``ecshop serve``).
    - ``required_settings`` / ``secret_settings``: the older, untyped way to say the
      same (each name becomes a required text setting, a secret one at least
      :data:`MIN_SECRET_BYTES` bytes long).
    - ``test_mode``: a gateway of test payments (the sandbox). A gateway of a real
      provider with a test account declares a ``test_mode`` bool setting instead; its
      value sets the attribute. Buyers see a "TEST MODE" banner.
    - ``can_expire``: :meth:`expire_payment` is implemented.
    """

    name: str = ""
    title: str = ""
    offline: bool = False
    pay_window: float = 3 * 86400
    SETTINGS: ClassVar[tuple[Setting, ...]] = ()
    required_settings: tuple[str, ...] = ()
    secret_settings: tuple[str, ...] = ()
    test_mode: bool = False
    can_expire: bool = False

    def __init__(self, settings: Mapping[str, str]) -> None:
        #: the settings as the owner set them (text)
        self.raw_settings = {str(k): str(v) for k, v in settings.items()}
        resolved = resolve(self.declared_settings(), self.raw_settings, self.variable_prefix())
        #: the settings, converted to their declared types (undeclared keys as text)
        self.settings: dict[str, Any] = resolved.values
        self._problems = resolved.problems
        if any(s.name == "test_mode" for s in self.declared_settings()):
            self.test_mode = bool(self.settings.get("test_mode", type(self).test_mode))

    @classmethod
    def variable_prefix(cls) -> str:
        """``ECSHOP_GATEWAY_<NAME>_``: where the owner sets this gateway's settings."""
        return f"ECSHOP_GATEWAY_{cls.name.upper()}_"

    @classmethod
    def declared_settings(cls) -> tuple[Setting, ...]:
        """Every setting this gateway takes: ``SETTINGS``, then the older
        ``required_settings`` / ``secret_settings`` names, then an offline method's
        ``pay_window``."""
        declared = {s.name: s for s in cls.SETTINGS}
        for key in dict.fromkeys(cls.required_settings + cls.secret_settings):
            declared.setdefault(key, Setting(key, required=True,
                                             secret=key in cls.secret_settings))  # fmt: skip
        if cls.offline:
            declared.setdefault("pay_window", Setting(
                "pay_window", float, default=float(cls.pay_window), minimum=1,
                maximum=MAX_PAY_WINDOW, help="seconds an unpaid order holds its stock"))  # fmt: skip
        return tuple(declared.values())

    def missing_settings(self) -> list[str]:
        """Why this gateway cannot run, one line each naming the environment variable:
        a required setting unset, a value that does not convert, a secret shorter than
        :data:`MIN_SECRET_BYTES` bytes. Empty when it is live."""
        # NOTE: a subclass whose __init__ skips ours has no problems recorded.
        return list(getattr(self, "_problems", ()))

    def hold_seconds(self) -> float | None:
        """How long an order of this gateway holds its stock: an offline method's pay
        window, or None (until the gateway has said the order is not paid)."""
        if not self.offline:
            return None
        window = self.settings.get("pay_window")
        return float(self.pay_window if window is None else window)

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
        """What the provider knows of the order's payment (the reconciler and the return
        page ask).

        Answer one of:

        - ``succeeded``: captured (with ``amount``, ``currency``, ``payment_id``);
          ``refunded`` / ``partially_refunded`` once money went back;
        - ``failed``: declined, the buyer cannot pay this session any more;
        - ``pending``: the provider has seen the order (a payment session exists) and
          it is not final yet;
        - ``expired``: the session ended unpaid (:meth:`expire_payment`, or the
          provider's own timeout): no payment can follow;
        - ``unknown``: the provider has never seen the order (the buyer never reached
          its page). The reconciler takes ``pending``, ``expired`` and ``unknown`` as
          "not paid" once the order's hold is over, and gives the stock back.

        Raises:
            GatewayError: the provider cannot be reached, refuses the call or answers
                something that is not one of these. Never answer ``unknown`` for "I
                could not ask": the stock of an order whose buyer may have paid would
                be sold again. The reconciler keeps such an order's stock held, and
                after ``ECSHOP_GATEWAY_UNREACHABLE_AFTER`` seconds past the hold's end
                flags it for the admin.
        """
        return PaymentStatus(order_number, "unknown")

    def refund(
        self, order_number: str, amount: int, *, currency: str | None = None,
        order_total: int | None = None,
    ) -> RefundResult:  # fmt: skip
        """Give back ``amount`` (minor units of ``currency``) of the order's payment.

        ``order_total`` is what the order cost, for providers that need to know whether
        a refund is full or partial. The core always passes both; a gateway written for
        ``refund(order_number, amount)`` keeps working (see :func:`refund_through`).

        Raises:
            GatewayError: the provider refused it or cannot be reached.
        """
        raise GatewayError(f"gateway {self.name} cannot refund")

    def expire_payment(self, order_number: str) -> PaymentStatus:
        """End the order's payment session so that no capture can follow, and answer its
        final status (``succeeded`` when the buyer paid first). Gateways that can do this
        set ``can_expire = True``; the reconciler calls it before it gives the order's
        stock back. Raise ``GatewayError`` when the provider cannot be reached."""
        raise GatewayError(f"gateway {self.name} cannot expire a payment session")

    def capture(self, order_number: str, amount: int) -> Any:
        raise GatewayError(f"gateway {self.name} does not authorize-then-capture")


def _takes_money_keywords(method: Any) -> bool:
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    names = {p.name for p in params}
    return {"currency", "order_total"} <= names or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params
    )


def refund_through(
    gateway: Any, order_number: str, amount: int, *, currency: str, order_total: int
) -> RefundResult:
    """Call ``gateway.refund`` with the order's currency and total where it takes them,
    and as ``refund(order_number, amount)`` where it was written before they existed."""
    if _takes_money_keywords(gateway.refund):
        return gateway.refund(order_number, amount, currency=currency, order_total=order_total)  # type: ignore[no-any-return]
    return gateway.refund(order_number, amount)  # type: ignore[no-any-return]
