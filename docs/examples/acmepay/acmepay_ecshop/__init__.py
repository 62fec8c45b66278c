"""AcmePay for ecshop: a complete payment gateway plugin in one module.

AcmePay speaks the sandbox gateway's protocol (``ecshop sandbox-gateway``), so this
plugin can be run and tested end to end on any machine; for a real provider, change
the URLs, the link signature and the notification check to what its documentation
says. Settings: ``ECSHOP_GATEWAY_ACMEPAY_URL``, ``ECSHOP_GATEWAY_ACMEPAY_SECRET`` and
``ECSHOP_GATEWAY_ACMEPAY_TEST_MODE`` (``ecshop plugins`` lists them).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from ecshop.errors import GatewayError, SignatureError
from ecshop.payments.base import (
    Gateway,
    PaymentEvent,
    PaymentOrder,
    PaymentStart,
    PaymentStatus,
    RefundResult,
    Setting,
)
from ecshop.sandbox.protocol import sign_query, verify_body

NAME = "acmepay"
VERSION = "0.3.1"
TOLERANCE = 300  # seconds a notification's timestamp may be off

log = logging.getLogger("acmepay")


class AcmePayGateway(Gateway):
    name = "acmepay"
    title = "AcmePay"
    # Checked and converted at load: without a URL and a real secret AcmePay is not
    # offered, and `ecshop plugins` says which variable to set.
    SETTINGS = (
        Setting("url", "url", required=True, help="AcmePay's API address"),
        Setting("secret", required=True, secret=True, help="the secret AcmePay shares with you"),
        Setting("test_mode", bool, default=True, help="payments go to AcmePay's test account"),
    )

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self.base = str(self.settings.get("url") or "").rstrip("/")
        self.secret = str(self.settings.get("secret") or "")

    # The customer goes to the provider with a signed link.
    def start_payment(
        self, order: PaymentOrder, *, notify_url: str, return_url: str
    ) -> PaymentStart:
        link = {
            "merchant": "acmepay-shop",
            "order": order.number,
            "amount": str(order.amount),
            "currency": order.currency,
            "notify_url": notify_url,
            "return_url": return_url,
        }
        link["sig"] = sign_query(link, self.secret)
        return PaymentStart(redirect_url=f"{self.base}/pay?{urlencode(link)}")

    # The provider tells the shop what happened: verify first, then read.
    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentEvent:
        signature = {k.lower(): v for k, v in headers.items()}.get("sandbox-signature")
        created = verify_body(signature, body, self.secret, tolerance=TOLERANCE)
        try:
            data = json.loads(body)
            return PaymentEvent(
                id=str(data["id"]),
                type=str(data["type"]),
                order=str(data["order"]),
                amount=int(data["amount"]),
                currency=str(data["currency"]),
                payment_id=data.get("payment_id"),
                created=created,
                raw=body,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureError(f"AcmePay sent a malformed notification: {exc}") from exc

    # The reconciler asks about orders whose notification never came.
    def fetch_status(self, order_number: str) -> PaymentStatus:
        data = self._call("GET", f"/v1/payments/{quote(order_number, safe='')}")
        return PaymentStatus(
            order=order_number,
            status=str(data.get("status", "unknown")),
            amount=data.get("amount"),
            currency=data.get("currency"),
            payment_id=data.get("payment_id"),
            refunded_amount=int(data.get("refunded_amount") or 0),
        )

    # The shop passes the order's currency and total; AcmePay only needs the amount.
    def refund(
        self,
        order_number: str,
        amount: int,
        *,
        currency: str | None = None,
        order_total: int | None = None,
    ) -> RefundResult:
        data = self._call("POST", "/v1/refunds", {"order": order_number, "amount": amount})
        return RefundResult(
            id=str(data["id"]),
            order=order_number,
            amount=amount,
            refunded_total=int(data["refunded_amount"]),
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if not self.base or not self.secret:
            raise GatewayError("set ECSHOP_GATEWAY_ACMEPAY_URL and ECSHOP_GATEWAY_ACMEPAY_SECRET")
        request = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise GatewayError(f"AcmePay answered {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise GatewayError(f"AcmePay is unreachable: {exc}") from exc


def log_paid(order: Mapping[str, Any]) -> None:
    log.info("AcmePay order %s is paid", order["number"])


def register(host: Any) -> None:
    host.add_gateway(AcmePayGateway)
    host.add_action("order_paid", log_paid)
