"""The conformance kit's harness: what it needs to drive one gateway, and helpers.

See :mod:`ecshop.testing.gateway` for the checks themselves.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ecshop.errors import ShopError, SignatureError
from ecshop.payments.base import Gateway, PaymentEvent, PaymentOrder, PaymentStart
from ecshop.payments.callback import NotificationRequest
from ecshop.testing.inbox import Delivery
from ecshop.testing.signatures import Rewrite, signature_in_header

Headers = Mapping[str, str]
SignedNotification = Callable[
    [Mapping[str, Any], int], "NotificationRequest | tuple[Headers, bytes]"
]

STALE_SECONDS = 3600


@dataclass
class GatewayHarness:
    """What the kit needs to drive one gateway.

    Attributes:
        gateway: the configured gateway under test (test credentials).
        customer: act as the customer on the provider's side for a started payment:
            ``"pay"`` or ``"decline"``; return once the provider has recorded it.
        signed_notification: the provider's genuine notification for given event fields
            at a given time, signed with the test key (optional): a
            :class:`NotificationRequest`, or ``(headers, body)``.
        unsign: the same notification without its signature, wherever the provider
            puts it (see :mod:`ecshop.testing.signatures`). Without it the kit drops
            every header but the standard ones.
        tamper: variants of the notification whose signature was altered (one request
            or several). Without it the kit changes each non-standard header in turn.
        currency, amount: what test orders cost.
        refunds: whether the gateway refunds through the provider.
        wait: seconds to wait for a notification to arrive.
    """

    gateway: Gateway
    customer: Callable[[PaymentStart, str], None] | None = None
    signed_notification: SignedNotification | None = None
    unsign: Rewrite | None = None
    tamper: (
        Callable[[NotificationRequest], NotificationRequest | Iterable[NotificationRequest]] | None
    ) = None
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


def as_request(made: NotificationRequest | tuple[Headers, bytes]) -> NotificationRequest:
    """A harness's notification as a :class:`NotificationRequest`."""
    if isinstance(made, NotificationRequest):
        return made
    headers, body = made
    return NotificationRequest(headers=headers, body=body)


def events_for(gateway: Gateway, deliveries: list[Delivery], number: str) -> list[PaymentEvent]:
    events = []
    for delivery in deliveries:
        try:
            event = gateway.parse_request(delivery.request)
        except ShopError:
            continue
        if event.order == number:
            events.append(event)
    return events


def _show(request: NotificationRequest) -> str:
    query = "&".join(f"{k}={v}" for k, v in request.query_pairs)
    return f"headers={dict(request.headers)!r} query={query!r} body={request.body[:300]!r}"


def expect_refused(gateway: Gateway, request: NotificationRequest, what: str) -> None:
    """Fail unless ``gateway`` refuses ``request`` with ``SignatureError``."""
    try:
        event = gateway.parse_request(request)
    except SignatureError:
        return
    except Exception as exc:
        pytest.fail(f"{what}: expected SignatureError, got {type(exc).__name__}: {exc} "
                    f"({_show(request)})")  # fmt: skip
    pytest.fail(f"{what}: expected SignatureError, got an accepted event {event!r} "
                f"({_show(request)})")  # fmt: skip


def variants(
    made: NotificationRequest | Iterable[NotificationRequest],
) -> list[NotificationRequest]:
    return [made] if isinstance(made, NotificationRequest) else list(made)


def sandbox_harness(directory: Path, **switches: Any) -> Iterator[GatewayHarness]:
    """A harness for a gateway speaking the sandbox protocol, against a real sandbox process.

    Use it from a fixture: ``yield from sandbox_harness(tmp_path, gateway_class=MyGateway)``;
    other keywords are the sandbox process's switches. The gateway gets the settings
    ``url`` and ``secret``.
    """
    from ecshop.sandbox.protocol import SIGNATURE_HEADER, sign_body
    from ecshop.testing.sandbox import SandboxGatewayProcess

    gateway_class = switches.pop("gateway_class")
    process = SandboxGatewayProcess(directory, switches).start()

    def customer(start: PaymentStart, action: str) -> None:
        assert start.redirect_url, f"expected a redirect_url to the sandbox page, got {start!r}"
        status = process.settle(start.redirect_url, action)
        assert status == 303, f"expected the sandbox page to answer 303, got {status}"

    def signed_notification(fields: Mapping[str, Any], timestamp: int) -> tuple[Headers, bytes]:
        body = json.dumps({**fields, "created": timestamp}).encode()
        return {"sandbox-signature": sign_body(body, process.secret, timestamp)}, body

    try:
        yield GatewayHarness(
            gateway=gateway_class({"url": process.url, "secret": process.secret}),
            customer=customer, signed_notification=signed_notification,
            extra={"process": process}, **signature_in_header(SIGNATURE_HEADER),
        )  # fmt: skip
    finally:
        process.stop()
