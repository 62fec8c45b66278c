"""The shop's side of a payment: starting it, refunding it, asking for its status.

Gateways only speak their provider's protocol; this module turns their answers into
order transitions through the order and payment services.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from ecshop.errors import GatewayError, NotFound
from ecshop.orders import ACCEPTED, PENDING, OrderService, load
from ecshop.payments.base import PaymentOrder, refund_through
from ecshop.payments.notifications import PaymentService, event_from_status
from ecshop.signing import RETURN_LINK_MARGIN, RETURN_PURPOSE, Signer


def _iso(ts: Any) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(ts)))


class PaymentFlow:
    """Payments of orders through their gateways.

    Args:
        return_links: signs the value that lets a customer back from the gateway see the
            order (``ticket=`` on the return URL) in place of the order's long-lived
            access token, which gateways, browsers and proxies would keep in their logs.
    """

    def __init__(self, orders: OrderService, payments: PaymentService, gateways: dict[str, Any],
                 *, base_url: str, return_links: Signer | None = None) -> None:  # fmt: skip
        self.orders = orders
        self.payments = payments
        self.gateways = gateways
        self.base_url = base_url.rstrip("/")
        self.return_links = return_links or Signer("", purpose=RETURN_PURPOSE, ttl=0)

    def _gateway(self, name: str) -> Any:
        gateway = self.gateways.get(name)
        if gateway is None:
            raise NotFound(f"no payment gateway {name!r}", gateway=name)
        return gateway

    def urls(self, order: dict[str, Any]) -> tuple[str, str]:
        """The notify and return URLs the gateway is given for this order."""
        name = order["gateway"]
        # NOTE: the ticket ends a day after the order's hold, not a day from now, so a
        # replayed checkout (same Idempotency-Key) hands out the very same links.
        hold_end = order.get("hold_expires_at")
        expires = None if hold_end is None else float(hold_end) + RETURN_LINK_MARGIN
        ticket = self.return_links.sign(order["number"], expires=expires)
        query = urlencode({"order": order["number"], "ticket": ticket})
        return (
            f"{self.base_url}/payments/{name}/notify",
            f"{self.base_url}/payments/{name}/return?{query}",
        )

    def returning_order(self, number: str, ticket: str) -> dict[str, Any]:
        """The order a customer coming back from its gateway with ``ticket`` may see.

        Raises:
            NotFound: no such order, or the ticket is tampered with, expired or another
                order's (the same answer for all, so order numbers cannot be probed).
        """
        if self.return_links.verify(number, ticket):
            with self.orders.store.read() as tx:
                try:
                    return load(tx, number)
                except NotFound:
                    pass
        raise NotFound(f"no order {number!r} for this token", number=number)

    def start(self, order: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
        """What the customer needs to pay: a redirect URL or an auto-posting form.

        An offline method (cash on delivery, bank transfer) moves the order to
        ``accepted`` instead, selling its stock now.
        """
        gateway = self._gateway(order["gateway"])
        customer = json.loads(order["customer_json"])
        notify_url, return_url = self.urls(order)
        start = gateway.start_payment(
            PaymentOrder(
                number=order["number"], amount=int(order["total"]), currency=order["currency"],
                customer_email=customer.get("email", ""),
                description=", ".join(f"{ln['name']} x{ln['qty']}" for ln in lines)[:200],
            ),
            notify_url=notify_url, return_url=return_url,
        )  # fmt: skip
        test_mode = bool(getattr(gateway, "test_mode", False))
        if getattr(start, "offline", False):
            if order["status"] == PENDING:
                self.orders.accept_offline(order["number"], actor=f"gateway:{order['gateway']}",
                                           instructions=getattr(start, "instructions", None))  # fmt: skip
            return {
                "offline": True,
                "instructions": getattr(start, "instructions", None),
                "pay_by": _iso(order["hold_expires_at"]),
                "status": ACCEPTED,
                "test_mode": test_mode,
            }
        payment: dict[str, Any] = {"redirect_url": start.redirect_url, "test_mode": test_mode}
        if getattr(start, "form_fields", None):
            payment["form"] = {
                "action": start.form_action or start.redirect_url,
                "fields": dict(start.form_fields),
            }
        return payment

    def settle(self, order: dict[str, Any]) -> str | None:
        """Ask the gateway about a pending order and apply a final answer like a notification."""
        gateway = self._gateway(order["gateway"])
        try:
            status = gateway.fetch_status(order["number"])
        except GatewayError:
            return None
        event = event_from_status(order, status)
        if event is None:
            return None
        return self.payments.receive(order["gateway"], event)

    def refund(self, order: dict[str, Any], amount: int, *, actor: str, reason: str,
               settle: bool = True) -> None:  # fmt: skip
        """Refund through the order's gateway, then record it on the order (see
        ``OrderService.record_refund`` for ``settle``)."""
        gateway = self._gateway(order["gateway"])
        if getattr(gateway, "offline", False):  # paid back by hand: the shop names it
            refund_id = f"manual:{secrets.token_hex(8)}"
        else:
            result = refund_through(gateway, order["number"], amount, currency=order["currency"],
                                    order_total=int(order["total"]))  # fmt: skip
            refund_id = str(result.id)
        self.orders.record_refund(
            order["number"], amount, gateway=order["gateway"], refund_id=refund_id,
            origin="shop", actor=actor, reason=reason, settle=settle,
        )  # fmt: skip
