"""The gateway conformance kit: pytest checks that every payment gateway must pass.

A gateway author subclasses :class:`GatewayConformance` (or
:class:`OfflineGatewayConformance` for a method paid outside the shop) in a test module
and provides a ``harness`` fixture::

    import pytest
    from ecshop.testing.gateway import GatewayConformance, GatewayHarness
    from ecshop.testing.signatures import signature_in_form

    class TestMyPay(GatewayConformance):
        @pytest.fixture
        def harness(self):
            yield GatewayHarness(
                gateway=MyPayGateway({"key": TEST_KEY, ...}),
                customer=press_pay_or_decline,  # (PaymentStart, "pay" | "decline") -> None
                signed_notification=provider_test_notification,  # optional, see below
                **signature_in_form("sig"),  # where the provider puts its signature
            )

The kit checks what the core relies on: a payment starts by sending the customer to
the provider; the provider's notification parses into an event carrying the order, the
amount and the currency faithfully; a tampered body, a tampered or missing signature
(wherever the provider puts it: the harness's ``unsign`` and ``tamper`` hooks) and a
stale timestamp are refused with ``SignatureError``; a redelivered notification
carries the same event id (the core journals one row per id); an amount or currency
that does not fit the order is caught by the core's own check; the gateway's reply
(``notification_reply``) is a 2xx for a journaled or duplicate notification, a 4xx
for a refused one and a 5xx for one the shop failed to record; the status API knows
paid, declined and unknown orders; refunds, partial then full, are tracked and a refund
beyond the payment is refused. Every failure says what was expected and what came.

Notifications really travel: the kit runs a small HTTP receiver on 127.0.0.1, gives
its URL to ``start_payment`` as ``notify_url`` and answers each delivery with the
gateway's own reply, so the provider (or its test double) must be able to reach
127.0.0.1. ``signed_notification(fields, timestamp)`` returns the
:class:`~ecshop.payments.callback.NotificationRequest` (or ``(headers, body)``) the
provider would send for an event with these fields (``id``, ``type``, ``order``,
``amount``, ``currency``, ``payment_id``) signed at ``timestamp`` with the test key;
without it the checks that need a forged-but-genuine notification (stale timestamp,
mismatched amount) are skipped with the reason.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ecshop.errors import GatewayError, NotFound, ShopError, SignatureError, Unavailable
from ecshop.money import format_money
from ecshop.payments.base import PaymentEvent, PaymentOrder, PaymentStart
from ecshop.payments.callback import FAILED as OUTCOME_FAILED
from ecshop.payments.callback import (
    RECEIVED,
    NotificationOutcome,
    NotificationRequest,
)
from ecshop.payments.notifications import (
    CAPTURED_STATES,
    FAILED,
    REFUNDED,
    SUCCEEDED,
    check_against_order,
)
from ecshop.testing.harness import (
    STALE_SECONDS,
    GatewayHarness,
    as_request,
    events_for,
    expect_refused,
    new_order,
    order_row,
    sandbox_harness,
    variants,
)
from ecshop.testing.inbox import Delivery, NotificationInbox
from ecshop.testing.signatures import signature_headers, signature_in_header, unsigned_headers

__all__ = [
    "Delivery",
    "GatewayConformance",
    "GatewayHarness",
    "NotificationInbox",
    "OfflineGatewayConformance",
    "sandbox_harness",
]


def expect_fits(event: PaymentEvent, order: PaymentOrder) -> None:
    """Fail unless the core's own check takes ``event`` for ``order``."""
    try:
        check_against_order(event, order_row(order))
    except SignatureError as exc:
        pytest.fail(f"expected an event that fits order {order.number} ({order.amount} "
                    f"{order.currency}), got {event!r}: {exc.message}")  # fmt: skip


class GatewayConformance:
    """The checks for a gateway that takes payments through a provider.

    Subclass it as ``Test…`` and provide a ``harness`` fixture yielding a
    :class:`GatewayHarness`.
    """

    @pytest.fixture
    def inbox(self, harness: GatewayHarness) -> Iterator[NotificationInbox]:
        inbox = NotificationInbox(harness.gateway)
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
        assert harness.customer is not None, (
            "expected the harness to have a customer callable, got None"
        )
        order = order or new_order(harness)
        harness.customer(self.start(harness, inbox, order), action)
        gateway = harness.gateway
        deliveries = inbox.wait(
            lambda ds: len(events_for(gateway, ds, order.number)) >= count, harness.wait
        )
        mine = [d for d in deliveries if events_for(gateway, [d], order.number)]
        return order, mine, events_for(gateway, mine, order.number)

    def forged(self, harness: GatewayHarness, order: PaymentOrder, timestamp: int,
               **changes: Any) -> NotificationRequest:  # fmt: skip
        if harness.signed_notification is None:
            pytest.skip("the harness has no signed_notification to forge a genuine notification")
        fields = {"id": f"evt_kit_{secrets.token_hex(6)}", "type": SUCCEEDED, "order": order.number,
                  "amount": order.amount, "currency": order.currency, "payment_id": "pay_kit"}  # fmt: skip
        fields.update(changes)
        return as_request(harness.signed_notification(fields, timestamp))

    def unsigned(
        self, harness: GatewayHarness, genuine: NotificationRequest
    ) -> NotificationRequest:
        if harness.unsign is not None:
            return harness.unsign(genuine)
        return genuine.replace(headers=unsigned_headers(genuine.headers))

    def tampered(
        self, harness: GatewayHarness, genuine: NotificationRequest
    ) -> list[NotificationRequest]:
        if harness.tamper is not None:
            return variants(harness.tamper(genuine))
        return [signature_in_header(name)["tamper"](genuine)
                for name in signature_headers(genuine.headers)]  # fmt: skip

    # -- starting a payment ----------------------------------------------------------------
    def test_start_payment_sends_the_customer_to_the_provider(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        start = self.start(harness, inbox, new_order(harness))
        assert not start.offline and not harness.gateway.offline, (
            f"expected an online payment, got offline={start.offline} "
            f"(gateway.offline={harness.gateway.offline})"
        )
        target = start.redirect_url or start.form_action
        assert target and target.startswith(("https://", "http://")), (
            f"expected a redirect_url or form_action of http(s), got {start!r}"
        )

    # -- notifications -------------------------------------------------------------------
    def test_paid_notification_carries_order_amount_and_currency(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        order, deliveries, events = self.settle(harness, inbox, "pay")
        event = events[0]
        got = (event.type, event.order, event.amount, event.currency)
        want = (SUCCEEDED, order.number, order.amount, order.currency)
        assert got == want, f"expected (type, order, amount, currency) {want}, got {got}"
        assert event.id and event.payment_id, (
            f"expected an event id and a payment id, got id={event.id!r} "
            f"payment_id={event.payment_id!r}"
        )
        expect_fits(event, order)
        assert 200 <= deliveries[0].answered < 300, (
            f"expected the gateway's reply to a received notification to be a 2xx, got "
            f"{deliveries[0].answered} {deliveries[0].reply[:200]!r}"
        )

    def test_declined_payment_notifies_payment_failed(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        order, _, events = self.settle(harness, inbox, "decline")
        got = [(e.type, e.order) for e in events]
        assert got == [(FAILED, order.number)], (
            f"expected [({FAILED!r}, {order.number!r})], got {got}"
        )

    def test_tampered_body_is_refused(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        _, deliveries, _ = self.settle(harness, inbox, "pay")
        genuine = deliveries[0].request
        body = genuine.body
        middle = len(body) // 2
        flipped = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
        digits = body.replace(str(harness.amount).encode(), str(harness.amount + 1).encode())
        for tampered in sorted({flipped, body + b" ", b" " + body, digits, b"{}", b""} - {body}):
            expect_refused(harness.gateway, genuine.replace(body=tampered),
                           f"the genuine notification with the body changed to {tampered[:80]!r}")  # fmt: skip

    def test_tampered_or_missing_signature_is_refused(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        _, deliveries, _ = self.settle(harness, inbox, "pay")
        genuine = deliveries[0].request
        unsigned = self.unsigned(harness, genuine)
        assert unsigned != genuine, "expected unsign() to change the notification, got it unchanged"
        expect_refused(harness.gateway, unsigned, "the genuine notification without its signature")
        variants = [v for v in self.tampered(harness, genuine) if v != genuine]
        assert variants, (
            "expected tamper() to give at least one notification with an altered signature, "
            "got none (give the harness unsign/tamper hooks, see ecshop.testing.signatures)"
        )
        for variant in variants:
            expect_refused(
                harness.gateway, variant, "the genuine notification with its signature altered"
            )

    def test_stale_timestamp_is_refused(self, harness: GatewayHarness) -> None:
        order = new_order(harness)
        now = int(time.time())
        fresh = self.forged(harness, order, now)
        got = harness.gateway.parse_request(fresh).order
        assert got == order.number, f"expected a fresh notification for {order.number}, got {got}"
        expect_refused(harness.gateway, self.forged(harness, order, now - STALE_SECONDS),
                       f"a genuine notification signed {STALE_SECONDS} s ago")  # fmt: skip

    def test_redelivery_carries_the_same_event_id(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        inbox.fail_next = 1  # the first delivery gets the gateway's failure reply
        _, deliveries, events = self.settle(harness, inbox, "pay", count=2)
        first = deliveries[0]
        assert first.kind == OUTCOME_FAILED and first.answered >= 500, (
            f"expected the gateway to answer a failed notification with a 5xx, got "
            f"{first.answered} {first.reply[:200]!r}"
        )
        ids = [e.id for e in events]
        assert len(set(ids)) == 1, f"expected the retry to carry the first event id, got ids {ids}"
        got = {(e.type, e.amount, e.currency) for e in events}
        want = {(SUCCEEDED, harness.amount, harness.currency)}
        assert got == want, f"expected every delivery to say {want}, got {got}"
        assert [d.kind for d in deliveries[:2]] == [OUTCOME_FAILED, RECEIVED], (
            f"expected a failed then a received delivery, got {[d.kind for d in deliveries]}"
        )

    def test_amount_or_currency_mismatch_is_caught(self, harness: GatewayHarness) -> None:
        order = new_order(harness)
        now = int(time.time())
        for changes in ({"amount": order.amount + 1}, {"amount": order.amount - 1},
                        {"currency": "USD" if order.currency != "USD" else "EUR"}):  # fmt: skip
            event = harness.gateway.parse_request(self.forged(harness, order, now, **changes))
            got = {"amount": event.amount, "currency": event.currency}
            assert {k: got[k] for k in changes} == changes, (
                f"expected the event to report what was paid, {changes}, got {got}"
            )
            try:
                check_against_order(event, order_row(order))
            except SignatureError:
                continue
            pytest.fail(f"expected the core to refuse an event with {changes}, got it accepted")

    # -- the reply to the provider ---------------------------------------------------------
    def _reply(self, harness: GatewayHarness, outcome: NotificationOutcome) -> Any:
        reply = harness.gateway.notification_reply(outcome)
        assert hasattr(reply, "status") and hasattr(reply, "content_type"), (
            f"expected a NotificationReply for a {outcome.kind} notification, got {reply!r}"
        )
        assert reply.content_type, (
            f"expected a content type in the reply to a {outcome.kind} notification, got {reply!r}"
        )
        return reply

    def test_reply_to_a_journaled_notification_is_a_success(self, harness: GatewayHarness) -> None:
        for outcome in (NotificationOutcome.received("evt_kit_1", "paid"),
                        NotificationOutcome.received("evt_kit_1", "duplicate")):  # fmt: skip
            reply = self._reply(harness, outcome)
            assert 200 <= reply.status < 300, (
                f"expected a 2xx for a {outcome.kind} notification (the provider must stop "
                f"retrying), got {reply.status} {reply.body!r}"
            )

    def test_reply_to_a_refused_notification_is_a_client_error(
        self, harness: GatewayHarness
    ) -> None:
        for error in (SignatureError("notification signature does not match"),
                      NotFound("no order 'CK-NEVER'")):  # fmt: skip
            outcome = NotificationOutcome.from_error(error)
            reply = self._reply(harness, outcome)
            assert 400 <= reply.status < 500, (
                f"expected a 4xx for a refused notification ({error.code}), got {reply.status} "
                f"{reply.body!r}"
            )

    def test_reply_to_a_failure_is_a_server_error(self, harness: GatewayHarness) -> None:
        for outcome in (NotificationOutcome.failure(request_id="kit"),
                        NotificationOutcome.from_error(Unavailable("the database is busy"))):  # fmt: skip
            reply = self._reply(harness, outcome)
            assert reply.status >= 500, (
                f"expected a 5xx for a notification the shop could not record (the provider "
                f"must retry), got {reply.status} {reply.body!r}"
            )

    # -- status --------------------------------------------------------------------------
    def test_status_of_an_unknown_order_is_not_a_payment(self, harness: GatewayHarness) -> None:
        status = harness.gateway.fetch_status(f"CK-NEVER-{secrets.token_hex(4)}")
        assert status.status not in CAPTURED_STATES, (
            f"expected an order the provider never saw not to be paid, got {status!r}"
        )

    def test_status_knows_paid_and_declined_orders(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        paid, _, events = self.settle(harness, inbox, "pay")
        status = harness.gateway.fetch_status(paid.number)
        got = (status.order, status.status, status.amount, status.currency)
        want = (paid.number, "succeeded", paid.amount, paid.currency)
        assert got == want, f"expected (order, status, amount, currency) {want}, got {got}"
        assert status.payment_id == events[0].payment_id, (
            f"expected the status's payment id to be the notification's "
            f"{events[0].payment_id!r}, got {status.payment_id!r}"
        )
        declined, _, _ = self.settle(harness, inbox, "decline")
        got_status = harness.gateway.fetch_status(declined.number).status
        assert got_status == "failed", (
            f"expected a declined order to be 'failed', got {got_status!r}"
        )

    # -- refunds -------------------------------------------------------------------------
    def test_partial_then_full_refund(
        self, harness: GatewayHarness, inbox: NotificationInbox
    ) -> None:
        if not harness.refunds:
            pytest.skip("the harness says this gateway does not refund through the provider")
        order, _, _ = self.settle(harness, inbox, "pay")
        part = order.amount // 3
        first = harness.gateway.refund(order.number, part)
        got = (first.order, first.amount, first.refunded_total)
        assert got == (order.number, part, part), (
            f"expected (order, amount, refunded_total) {(order.number, part, part)}, got {got}"
        )
        status = harness.gateway.fetch_status(order.number)
        got_status = (status.status, status.refunded_amount)
        assert got_status == ("partially_refunded", part), (
            f"expected ('partially_refunded', {part}) after a partial refund, got {got_status}"
        )
        rest = harness.gateway.refund(order.number, order.amount - part)
        assert rest.refunded_total == order.amount and rest.id != first.id, (
            f"expected a second refund id and a total of {order.amount}, got {rest!r} after {first!r}"
        )
        final = harness.gateway.fetch_status(order.number).status
        assert final == "refunded", f"expected 'refunded' after a full refund, got {final!r}"
        try:
            beyond = harness.gateway.refund(order.number, 1)
        except GatewayError:
            pass
        else:
            pytest.fail(f"expected GatewayError for a refund beyond the payment, got {beyond!r}")
        deliveries = inbox.wait(
            lambda ds: sum(e.type == REFUNDED for e in events_for(harness.gateway, ds, order.number)) >= 2,
            harness.wait,
        )  # fmt: skip
        refunds = [
            e for e in events_for(harness.gateway, deliveries, order.number) if e.type == REFUNDED
        ]
        amounts = sorted(e.amount for e in refunds)
        want = sorted([part, order.amount - part])
        assert amounts == want, f"expected refund notifications of {want}, got {amounts}"
        for event in refunds:
            expect_fits(event, order)


class OfflineGatewayConformance:
    """The checks for an offline method (cash on delivery, bank transfer...).

    The order is ``accepted`` at checkout and paid later by the admin: the gateway
    never takes a notification and never reports a payment the admin did not record.
    """

    def test_start_payment_is_offline_with_instructions(self, harness: GatewayHarness) -> None:
        order = new_order(harness)
        start = harness.gateway.start_payment(order, notify_url="http://127.0.0.1:9/notify",
                                              return_url="http://127.0.0.1:9/return")  # fmt: skip
        assert harness.gateway.offline and start.offline, (
            f"expected an offline method and start, got gateway.offline="
            f"{harness.gateway.offline} and {start!r}"
        )
        assert start.redirect_url is None and start.form_action is None, (
            f"expected no redirect and no form for an offline method, got {start!r}"
        )
        amounts = (str(order.amount), format_money(order.amount, order.currency))
        assert start.instructions and any(text in start.instructions for text in amounts), (
            f"expected instructions naming the amount {amounts[0]} or {amounts[1]}, "
            f"got {start.instructions!r}"
        )

    def test_notifications_are_refused_with_a_client_error(self, harness: GatewayHarness) -> None:
        body = json.dumps({"id": "evt_1", "type": SUCCEEDED, "order": "CK-1", "amount": 1,
                           "currency": harness.currency}).encode()  # fmt: skip
        for headers, payload in (
            ({}, body),
            ({"content-type": "application/json"}, body),
            ({}, b""),
        ):
            request = NotificationRequest(headers, payload)
            for parse, arg in ((lambda r: harness.gateway.parse_notification(r.headers, r.body), request),
                               (harness.gateway.parse_request, request)):  # fmt: skip
                try:
                    event = parse(arg)
                except ShopError as exc:
                    assert 400 <= exc.status < 500, (
                        f"expected a 4xx ShopError, got {exc.status} {type(exc).__name__}: {exc}"
                    )
                else:
                    pytest.fail(f"expected a 4xx ShopError, got an accepted event {event!r}")

    def test_status_never_reports_a_payment(self, harness: GatewayHarness) -> None:
        status = harness.gateway.fetch_status(new_order(harness).number)
        assert status.status not in CAPTURED_STATES, (
            f"expected no captured payment from an offline method, got {status!r}"
        )
