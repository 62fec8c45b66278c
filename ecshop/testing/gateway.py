"""The gateway conformance kit: pytest checks that every payment gateway must pass.

A gateway author subclasses :class:`GatewayConformance` (or
:class:`OfflineGatewayConformance` for a method paid outside the shop) in a test module
and provides a ``harness`` fixture::

    import pytest
    from ecshop.testing.gateway import GatewayConformance, GatewayHarness

    class TestMyPay(GatewayConformance):
        @pytest.fixture
        def harness(self):
            yield GatewayHarness(
                gateway=MyPayGateway({"key": TEST_KEY, ...}),
                customer=press_pay_or_decline,  # (PaymentStart, "pay" | "decline") -> None
                signed_notification=provider_test_notification,  # optional, see below
            )

The kit checks what the core relies on: a payment starts by sending the customer to
the provider; the provider's notification parses into an event carrying the order, the
amount and the currency faithfully; a tampered body, a tampered or missing signature
and a stale timestamp are refused with ``SignatureError``; a redelivered notification
carries the same event id (the core journals one row per id); an amount or currency
that does not fit the order is caught by the core's own check; the status API knows
paid, declined and unknown orders; refunds, partial then full, are tracked and a refund
beyond the payment is refused.

Notifications really travel: the kit runs a small HTTP receiver on 127.0.0.1 and gives
its URL to ``start_payment`` as ``notify_url``, so the provider (or its test double)
must be able to reach 127.0.0.1. ``signed_notification(fields, timestamp)`` returns the
``(headers, body)`` the provider would send for an event with these fields
(``id``, ``type``, ``order``, ``amount``, ``currency``, ``payment_id``) signed at
``timestamp`` with the test key; without it the checks that need a forged-but-genuine
notification (stale timestamp, mismatched amount) are skipped with the reason.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ecshop.errors import GatewayError, ShopError, SignatureError
from ecshop.money import format_money
from ecshop.payments.base import Gateway, PaymentEvent, PaymentOrder, PaymentStart
from ecshop.payments.notifications import (
    CAPTURED_STATES,
    FAILED,
    REFUNDED,
    SUCCEEDED,
    check_against_order,
)

Headers = Mapping[str, str]
SignedNotification = Callable[[Mapping[str, Any], int], tuple[Headers, bytes]]

STALE_SECONDS = 3600


@dataclass
class Delivery:
    """One notification as it reached the receiver, and what the receiver answered."""

    headers: dict[str, str]
    body: bytes
    answered: int


class NotificationInbox:
    """A real HTTP endpoint on 127.0.0.1 that records every notification delivered to it.

    ``fail_next`` deliveries are answered 500 (so the provider retries), the rest 200.
    """

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.fail_next = 0
        self._changed = threading.Condition()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with inbox._changed:
                    status = 500 if inbox.fail_next > 0 else 200
                    inbox.fail_next = max(0, inbox.fail_next - 1)
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    inbox.deliveries.append(Delivery(headers, body, status))
                    inbox._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/notify"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, predicate: Callable[[list[Delivery]], bool], timeout: float) -> list[Delivery]:
        """The deliveries so far, once ``predicate`` holds for them (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.deliveries):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no matching notification within {timeout:.0f}s "
                        f"({len(self.deliveries)} deliveries received)"
                    )
                self._changed.wait(left)
            return list(self.deliveries)


@dataclass
class GatewayHarness:
    """What the kit needs to drive one gateway.

    Attributes:
        gateway: the configured gateway under test (test credentials).
        customer: act as the customer on the provider's side for a started payment:
            ``"pay"`` or ``"decline"``; return once the provider has recorded it.
        signed_notification: the provider's genuine notification for given event fields
            at a given time, signed with the test key (optional).
        currency, amount: what test orders cost.
        refunds: whether the gateway refunds through the provider.
        wait: seconds to wait for a notification to arrive.
    """

    gateway: Gateway
    customer: Callable[[PaymentStart, str], None] | None = None
    signed_notification: SignedNotification | None = None
    currency: str = "JPY"
    amount: int = 3000
    refunds: bool = True
    wait: float = 20.0
    extra: dict[str, Any] = field(default_factory=dict)


def new_order(harness: GatewayHarness, amount: int | None = None) -> PaymentOrder:
    """A test order with a fresh, readable number."""
    return PaymentOrder(number=f"CK-{secrets.token_hex(5).upper()}",
                        amount=harness.amount if amount is None else amount,
                        currency=harness.currency, customer_email="kit@example.com",
                        description="conformance kit order")  # fmt: skip


def order_row(order: PaymentOrder) -> dict[str, Any]:
    """The order as the core's checks see it."""
    return {"number": order.number, "total": order.amount, "currency": order.currency}


def _events_for(gateway: Gateway, deliveries: list[Delivery], number: str) -> list[PaymentEvent]:
    events = []
    for delivery in deliveries:
        try:
            event = gateway.parse_notification(delivery.headers, delivery.body)
        except ShopError:
            continue
        if event.order == number:
            events.append(event)
    return events


class GatewayConformance:
    """The checks for a gateway that takes payments through a provider.

    Subclass it as ``Test…`` and provide a ``harness`` fixture yielding a
    :class:`GatewayHarness`.
    """

    @pytest.fixture
    def inbox(self) -> Iterator[NotificationInbox]:
        inbox = NotificationInbox()
        yield inbox
        inbox.close()

    # -- helpers ------------------------------------------------------------------------
    def start(
        self, harness: GatewayHarness, inbox: NotificationInbox, order: PaymentOrder
    ) -> PaymentStart:
        return harness.gateway.start_payment(
            order, notify_url=inbox.url,
            return_url=f"http://127.0.0.1:9/payments/{harness.gateway.name}/return?order={order.number}",
        )  # fmt: skip

    def settle(
        self, harness: GatewayHarness, inbox: NotificationInbox, action: str = "pay",
        *, count: int = 1, order: PaymentOrder | None = None,
    ) -> tuple[PaymentOrder, list[Delivery], list[PaymentEvent]]:  # fmt: skip
        """Start a payment, act as the customer, and wait for ``count`` of its notifications."""
        assert harness.customer is not None, "the harness needs a customer callable"
        order = order or new_order(harness)
        harness.customer(self.start(harness, inbox, order), action)
        gateway = harness.gateway
        deliveries = inbox.wait(
            lambda ds: len(_events_for(gateway, ds, order.number)) >= count, harness.wait
        )
        mine = [d for d in deliveries if _events_for(gateway, [d], order.number)]
        return order, mine, _events_for(gateway, mine, order.number)

    def forged(self, harness: GatewayHarness, order: PaymentOrder, timestamp: int,
               **changes: Any) -> tuple[Headers, bytes]:  # fmt: skip
        if harness.signed_notification is None:
            pytest.skip("the harness has no signed_notification to forge a genuine notification")
        fields = {"id": f"evt_kit_{secrets.token_hex(6)}", "type": SUCCEEDED, "order": order.number,
                  "amount": order.amount, "currency": order.currency, "payment_id": "pay_kit"}  # fmt: skip
        fields.update(changes)
        return harness.signed_notification(fields, timestamp)

    # -- starting a payment ----------------------------------------------------------------
    def test_start_payment_sends_the_customer_to_the_provider(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        start = self.start(harness, inbox, new_order(harness))
        assert not start.offline and not harness.gateway.offline
        target = start.redirect_url or start.form_action
        assert target and target.startswith(("https://", "http://")), start

    # -- notifications -------------------------------------------------------------------
    def test_paid_notification_carries_order_amount_and_currency(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        order, _, events = self.settle(harness, inbox, "pay")
        event = events[0]
        assert (event.type, event.order, event.amount, event.currency) == (
            SUCCEEDED, order.number, order.amount, order.currency)  # fmt: skip
        assert event.id and event.payment_id
        check_against_order(event, order_row(order))

    def test_declined_payment_notifies_payment_failed(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        order, _, events = self.settle(harness, inbox, "decline")
        assert [e.type for e in events] == [FAILED]
        assert events[0].order == order.number

    def test_tampered_body_is_refused(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        _, deliveries, _ = self.settle(harness, inbox, "pay")
        genuine = deliveries[0]
        body = genuine.body
        middle = len(body) // 2
        flipped = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
        digits = body.replace(str(harness.amount).encode(), str(harness.amount + 1).encode())
        for tampered in {flipped, body + b" ", b" " + body, digits, b"{}", b""} - {body}:
            with pytest.raises(SignatureError):
                harness.gateway.parse_notification(genuine.headers, tampered)

    def test_tampered_or_missing_signature_is_refused(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        _, deliveries, _ = self.settle(harness, inbox, "pay")
        genuine = deliveries[0]
        with pytest.raises(SignatureError):
            harness.gateway.parse_notification({}, genuine.body)
        changed = 0
        for name, value in genuine.headers.items():
            if not value or name in ("host", "content-length", "content-type", "user-agent",
                                     "accept-encoding", "connection", "accept"):  # fmt: skip
                continue
            last = value[-1]
            swapped = "0" if last != "0" else "1"
            headers = {**genuine.headers, name: value[:-1] + swapped}
            try:
                harness.gateway.parse_notification(headers, genuine.body)
            except SignatureError:
                changed += 1
        assert changed, "changing the signature header must make the notification fail"

    def test_stale_timestamp_is_refused(self, harness: GatewayHarness) -> None:
        order = new_order(harness)
        now = int(time.time())
        headers, body = self.forged(harness, order, now)
        assert harness.gateway.parse_notification(headers, body).order == order.number
        headers, body = self.forged(harness, order, now - STALE_SECONDS)
        with pytest.raises(SignatureError):
            harness.gateway.parse_notification(headers, body)

    def test_redelivery_carries_the_same_event_id(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        inbox.fail_next = 1  # the first delivery gets a 500: the provider must retry
        _, deliveries, events = self.settle(harness, inbox, "pay", count=2)
        assert deliveries[0].answered == 500
        assert len({e.id for e in events}) == 1, [e.id for e in events]
        assert {(e.type, e.amount, e.currency) for e in events} == {
            (SUCCEEDED, harness.amount, harness.currency)}  # fmt: skip

    def test_amount_or_currency_mismatch_is_caught(self, harness: GatewayHarness) -> None:
        order = new_order(harness)
        now = int(time.time())
        for changes in ({"amount": order.amount + 1}, {"amount": order.amount - 1},
                        {"currency": "USD" if order.currency != "USD" else "EUR"}):  # fmt: skip
            headers, body = self.forged(harness, order, now, **changes)
            event = harness.gateway.parse_notification(headers, body)
            got = {"amount": event.amount, "currency": event.currency}
            assert {k: got[k] for k in changes} == changes, "the event must report what was paid"
            with pytest.raises(SignatureError):
                check_against_order(event, order_row(order))

    # -- status --------------------------------------------------------------------------
    def test_status_of_an_unknown_order_is_not_a_payment(self, harness: GatewayHarness) -> None:
        status = harness.gateway.fetch_status(f"CK-NEVER-{secrets.token_hex(4)}")
        assert status.status not in CAPTURED_STATES

    def test_status_knows_paid_and_declined_orders(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        paid, _, events = self.settle(harness, inbox, "pay")
        status = harness.gateway.fetch_status(paid.number)
        assert (status.order, status.status, status.amount, status.currency) == (
            paid.number, "succeeded", paid.amount, paid.currency)  # fmt: skip
        assert status.payment_id == events[0].payment_id
        declined, _, _ = self.settle(harness, inbox, "decline")
        assert harness.gateway.fetch_status(declined.number).status == "failed"

    # -- refunds -------------------------------------------------------------------------
    def test_partial_then_full_refund(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        if not harness.refunds:
            pytest.skip("the harness says this gateway does not refund through the provider")
        order, _, _ = self.settle(harness, inbox, "pay")
        part = order.amount // 3
        first = harness.gateway.refund(order.number, part)
        assert (first.order, first.amount, first.refunded_total) == (order.number, part, part)
        status = harness.gateway.fetch_status(order.number)
        assert (status.status, status.refunded_amount) == ("partially_refunded", part)
        rest = harness.gateway.refund(order.number, order.amount - part)
        assert rest.refunded_total == order.amount and rest.id != first.id
        assert harness.gateway.fetch_status(order.number).status == "refunded"
        with pytest.raises(GatewayError):
            harness.gateway.refund(order.number, 1)
        deliveries = inbox.wait(
            lambda ds: sum(e.type == REFUNDED for e in _events_for(harness.gateway, ds, order.number)) >= 2,
            harness.wait,
        )  # fmt: skip
        refunds = [
            e for e in _events_for(harness.gateway, deliveries, order.number) if e.type == REFUNDED
        ]
        assert sorted(e.amount for e in refunds) == sorted([part, order.amount - part])
        for event in refunds:
            check_against_order(event, order_row(order))


class OfflineGatewayConformance:
    """The checks for an offline method (cash on delivery, bank transfer...).

    The order is ``accepted`` at checkout and paid later by the admin: the gateway
    never takes a notification and never reports a payment the admin did not record.
    """

    def test_start_payment_is_offline_with_instructions(self, harness: GatewayHarness) -> None:
        order = new_order(harness)
        start = harness.gateway.start_payment(order, notify_url="http://127.0.0.1:9/notify",
                                              return_url="http://127.0.0.1:9/return")  # fmt: skip
        assert harness.gateway.offline and start.offline
        assert start.redirect_url is None and start.form_action is None
        amounts = (str(order.amount), format_money(order.amount, order.currency))
        assert start.instructions and any(text in start.instructions for text in amounts)

    def test_notifications_are_refused_with_a_client_error(self, harness: GatewayHarness) -> None:
        body = json.dumps({"id": "evt_1", "type": SUCCEEDED, "order": "CK-1", "amount": 1,
                           "currency": harness.currency}).encode()  # fmt: skip
        for headers, payload in (
            ({}, body),
            ({"content-type": "application/json"}, body),
            ({}, b""),
        ):
            with pytest.raises(ShopError) as caught:
                harness.gateway.parse_notification(headers, payload)
            assert 400 <= caught.value.status < 500, caught.value

    def test_status_never_reports_a_payment(self, harness: GatewayHarness) -> None:
        status = harness.gateway.fetch_status(new_order(harness).number)
        assert status.status not in CAPTURED_STATES


def sandbox_harness(directory: Path, **switches: Any) -> Iterator[GatewayHarness]:
    """A harness for a gateway speaking the sandbox protocol, against a real sandbox process.

    Use it from a fixture: ``yield from sandbox_harness(tmp_path, gateway_class=MyGateway)``;
    other keywords are the sandbox process's switches. The gateway gets the settings
    ``url`` and ``secret``.
    """
    from ecshop.sandbox.protocol import sign_body
    from ecshop.testing.sandbox import SandboxGatewayProcess

    gateway_class = switches.pop("gateway_class")
    process = SandboxGatewayProcess(directory, switches).start()

    def customer(start: PaymentStart, action: str) -> None:
        assert start.redirect_url, start
        status = process.settle(start.redirect_url, action)
        assert status == 303, f"the sandbox page answered {status}"

    def signed_notification(fields: Mapping[str, Any], timestamp: int) -> tuple[Headers, bytes]:
        body = json.dumps({**fields, "created": timestamp}).encode()
        return {"sandbox-signature": sign_body(body, process.secret, timestamp)}, body

    try:
        yield GatewayHarness(
            gateway=gateway_class({"url": process.url, "secret": process.secret}),
            customer=customer, signed_notification=signed_notification,
            extra={"process": process},
        )  # fmt: skip
    finally:
        process.stop()
