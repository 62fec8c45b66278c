"""Built-in plugin: the shop's client of the sandbox payment provider (``ecshop.sandbox``).

A test gateway: offered only once ECSHOP_GATEWAY_SANDBOX_URL and
ECSHOP_GATEWAY_SANDBOX_SECRET (at least 32 bytes) are set. Optional:
ECSHOP_GATEWAY_SANDBOX_MERCHANT, ECSHOP_GATEWAY_SANDBOX_TOLERANCE (seconds) and
ECSHOP_GATEWAY_SANDBOX_EXPIRE_SESSIONS.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

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
from ecshop.sandbox.protocol import (
    SIGNATURE_HEADER,
    canonical_query,
    sign_canonical,
    verify_body,
)


class SandboxGateway(Gateway):
    name = "sandbox"
    title = "Sandbox (test payments)"
    # a test gateway: offered only once its URL and a real secret are configured
    SETTINGS = (
        Setting("url", "url", required=True, help="the sandbox gateway's address"),
        Setting("secret", required=True, secret=True,
                help="the HMAC secret shared with ecshop sandbox-gateway"),
        Setting("merchant", default="ecshop", help="the merchant name on pay links"),
        Setting("tolerance", int, default=300, minimum=1,
                help="seconds a notification's timestamp may be off"),
        Setting("expire_sessions", bool, default=True,
                help="0: behave as a provider that cannot expire a payment session"),
    )  # fmt: skip
    test_mode = True
    can_expire = True

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self.url = str(self.settings.get("url") or "").rstrip("/")
        self.secret = str(self.settings.get("secret") or "")
        self.merchant = str(self.settings["merchant"])
        self.tolerance = int(self.settings["tolerance"])
        # expire_sessions=0: behave as a provider that cannot expire a payment session
        # (to try the shop's late-capture path against the sandbox)
        self.can_expire = bool(self.settings["expire_sessions"])

    def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if not self.url or not self.secret:
            raise GatewayError(
                "sandbox gateway is not configured (ECSHOP_GATEWAY_SANDBOX_URL/_SECRET)"
            )
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.secret}", "Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise GatewayError(
                f"sandbox gateway answered {exc.code}: {exc.read()[:200]!r}"
            ) from exc
        except (OSError, ValueError) as exc:
            raise GatewayError(f"sandbox gateway unreachable: {exc}") from exc

    def start_payment(
        self, order: PaymentOrder, *, notify_url: str, return_url: str
    ) -> PaymentStart:
        fields = {"merchant": self.merchant, "order": order.number, "amount": str(order.amount),
                  "currency": order.currency, "notify_url": notify_url, "return_url": return_url}  # fmt: skip
        query = canonical_query(fields)
        return PaymentStart(
            redirect_url=f"{self.url}/pay?{query}&sig={sign_canonical(query, self.secret)}"
        )

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        created = verify_body(
            lowered.get(SIGNATURE_HEADER.lower()), body, self.secret, tolerance=self.tolerance
        )
        try:
            data = json.loads(body)
            return PaymentEvent(id=str(data["id"]), type=str(data["type"]), order=str(data["order"]),
                                amount=int(data["amount"]), currency=str(data["currency"]),
                                payment_id=data.get("payment_id"), created=created, raw=body,
                                refund_id=data.get("refund_id"))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureError(f"malformed notification: {exc}") from exc

    def fetch_status(self, order_number: str) -> PaymentStatus:
        data = self._api("GET", f"/v1/payments/{quote(order_number, safe='')}")
        return PaymentStatus(order_number, str(data.get("status", "unknown")), data.get("amount"),
                             data.get("currency"), data.get("payment_id"), int(data.get("refunded_amount") or 0))  # fmt: skip

    def expire_payment(self, order_number: str) -> PaymentStatus:
        data = self._api("POST", f"/v1/payments/{quote(order_number, safe='')}/expire", {})
        return PaymentStatus(order_number, str(data.get("status", "unknown")), data.get("amount"),
                             data.get("currency"), data.get("payment_id"), int(data.get("refunded_amount") or 0))  # fmt: skip

    def refund(
        self, order_number: str, amount: int, *, currency: str | None = None,
        order_total: int | None = None,
    ) -> RefundResult:  # fmt: skip
        data = self._api("POST", "/v1/refunds", {"order": order_number, "amount": amount})
        return RefundResult(
            str(data.get("id", "")), order_number, amount, int(data.get("refunded_amount", amount))
        )


NAME = "sandbox"
VERSION = "1.0"


def register(host: Any) -> None:
    host.add_gateway(SandboxGateway)
