"""FormPay for ecshop: a gateway for a hosted-page provider of the form-post kind.

FormPay is a made-up provider shaped like many real ones:

- the customer's browser posts a signed form to FormPay's hosted page;
- FormPay posts its callbacks to the shop as ``application/x-www-form-urlencoded``,
  signed in a body field (``sig``: HMAC-SHA256 over the other fields in a canonical
  order), with the time of signing in ``ts``;
- it retries a callback until the shop answers the literal body ``OK``;
- it sends no event id: the gateway derives one from the callback's content (the
  transaction id and the result, plus the refund number for a refund), so a retried
  callback is the same event and the shop takes it once;
- its status and refund API take signed forms too and answer JSON.

Settings: ``ECSHOP_GATEWAY_FORMPAY_URL``, ``ECSHOP_GATEWAY_FORMPAY_SHOP_ID``,
``ECSHOP_GATEWAY_FORMPAY_SECRET`` (at least 32 bytes) and optionally
``ECSHOP_GATEWAY_FORMPAY_TOLERANCE`` (seconds a callback's ``ts`` may be off, 300).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from ecshop.errors import GatewayError, SignatureError
from ecshop.payments.base import (
    Gateway,
    NotificationOutcome,
    NotificationReply,
    NotificationRequest,
    PaymentEvent,
    PaymentOrder,
    PaymentStart,
    PaymentStatus,
    RefundResult,
)

NAME = "formpay"
VERSION = "0.1.0"

#: FormPay's callback results, as the shop's event types
EVENT_TYPES = {
    "paid": "payment.succeeded",
    "declined": "payment.failed",
    "refunded": "refund.succeeded",
}
#: FormPay's payment states, as the shop's payment statuses
STATUSES = {
    "none": "unknown",
    "pending": "pending",
    "paid": "succeeded",
    "declined": "failed",
    "partially_refunded": "partially_refunded",
    "refunded": "refunded",
}
CALLBACK_FIELDS = ("shop_id", "order_no", "tx_id", "result", "amount", "currency", "ts")


def canonical(fields: Mapping[str, str]) -> str:
    """FormPay's signed text: every field but ``sig``, sorted by name, ``name=value``
    joined by ``&``, values percent-encoded (RFC 3986)."""
    return "&".join(
        f"{k}={quote(str(v), safe='')}" for k, v in sorted(fields.items()) if k != "sig"
    )


def sign(fields: Mapping[str, str], secret: str) -> str:
    """The ``sig`` of a FormPay form."""
    return hmac.new(secret.encode(), canonical(fields).encode(), hashlib.sha256).hexdigest()


class FormPayGateway(Gateway):
    name = "formpay"
    title = "FormPay"
    required_settings = ("url", "shop_id")
    secret_settings = ("secret",)

    def __init__(self, settings: Mapping[str, str]) -> None:
        super().__init__(settings)
        self.base = self.settings.get("url", "").rstrip("/")
        self.shop_id = self.settings.get("shop_id", "")
        self.secret = self.settings.get("secret", "")
        self.tolerance = int(self.settings.get("tolerance") or 300)

    def _signed(self, **fields: str) -> dict[str, str]:
        fields = {"shop_id": self.shop_id, **fields, "ts": str(int(time.time()))}
        return {**fields, "sig": sign(fields, self.secret)}

    # The customer's browser posts a signed form to the hosted page.
    def start_payment(
        self, order: PaymentOrder, *, notify_url: str, return_url: str
    ) -> PaymentStart:
        return PaymentStart(
            form_action=f"{self.base}/pay",
            form_fields=self._signed(
                order_no=order.number,
                amount=str(order.amount),
                currency=order.currency,
                notify_url=notify_url,
                return_url=return_url,
            ),
        )

    # A callback: a signed form in the body. Verify first, then read.
    def parse_request(self, request: NotificationRequest) -> PaymentEvent:
        fields = request.form()
        given = fields.get("sig", "")
        if not given or not hmac.compare_digest(given, sign(fields, self.secret)):
            raise SignatureError("FormPay callback signature does not match")
        missing = [name for name in CALLBACK_FIELDS if not fields.get(name)]
        if missing:
            raise SignatureError(f"FormPay callback lacks {', '.join(missing)}")
        try:
            signed_at, amount = int(fields["ts"]), int(fields["amount"])
        except ValueError as exc:
            raise SignatureError(f"FormPay callback has a malformed number: {exc}") from exc
        # The replay window: FormPay signs every attempt afresh, so an old signature is
        # a replayed callback (a retry within the window is the same event anyway).
        if abs(time.time() - signed_at) > self.tolerance:
            raise SignatureError(
                "FormPay callback is older than the tolerance", tolerance=self.tolerance
            )
        if fields["shop_id"] != self.shop_id:
            raise SignatureError(f"FormPay callback is for shop {fields['shop_id']!r}")
        kind = EVENT_TYPES.get(fields["result"])
        if kind is None:
            raise SignatureError(f"FormPay callback has an unknown result {fields['result']!r}")
        refund_no = fields.get("refund_no") or None
        if kind == "refund.succeeded" and refund_no is None:
            raise SignatureError("FormPay refund callback lacks refund_no")
        # FormPay sends no event id: one is derived from what the callback says, so
        # every retry of the same callback is the same event.
        event_id = ":".join(filter(None, (fields["tx_id"], fields["result"], refund_no)))
        return PaymentEvent(
            id=event_id,
            type=kind,
            order=fields["order_no"],
            amount=amount,
            currency=fields["currency"],
            payment_id=fields["tx_id"],
            created=signed_at,
            raw=request.body,
            refund_id=refund_no,
        )

    # FormPay stops retrying only when the body is exactly "OK".
    def notification_reply(self, outcome: NotificationOutcome) -> NotificationReply:
        if outcome.journaled:  # received now, or a duplicate: stop retrying
            return NotificationReply.text("OK")
        return NotificationReply.text(f"NG {outcome.result}", outcome.status)

    # The reconciler asks about orders whose callback never came.
    def fetch_status(self, order_number: str) -> PaymentStatus:
        data = self._call("/api/status", order_no=order_number)
        return PaymentStatus(
            order=order_number,
            status=STATUSES.get(str(data.get("result")), "unknown"),
            amount=data.get("amount"),
            currency=data.get("currency"),
            payment_id=data.get("tx_id"),
            refunded_amount=int(data.get("refunded") or 0),
        )

    def refund(self, order_number: str, amount: int) -> RefundResult:
        data = self._call("/api/refund", order_no=order_number, amount=str(amount))
        return RefundResult(
            id=str(data["refund_no"]),
            order=order_number,
            amount=amount,
            refunded_total=int(data["refunded"]),
        )

    def _call(self, path: str, **fields: str) -> Any:
        if not self.base or not self.secret:
            raise GatewayError("set ECSHOP_GATEWAY_FORMPAY_URL and ECSHOP_GATEWAY_FORMPAY_SECRET")
        request = urllib.request.Request(
            self.base + path,
            data=urlencode(self._signed(**fields)).encode(),
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise GatewayError(f"FormPay answered {exc.code}: {exc.read()[:200]!r}") from exc
        except (OSError, ValueError) as exc:
            raise GatewayError(f"FormPay is unreachable: {exc}") from exc


def register(host: Any) -> None:
    host.add_gateway(FormPayGateway)
