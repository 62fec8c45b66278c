"""``mail_before_send``: every message passes through the plugins' filter chain."""

from __future__ import annotations

import pytest

from ecshop.errors import InternalError, ValidationError
from ecshop.hooks import HookRegistry
from ecshop.mail import prepare

MESSAGE = {"to": ["buyer@example.com"], "subject": "Order 1 paid", "body": "Thanks.",
           "kind": "order_paid"}  # fmt: skip


def test_the_filters_chain_the_message_in_priority_order():
    hooks = HookRegistry()
    hooks.add_filter("mail_before_send", lambda m: {**m, "subject": m["subject"] + " [B]"}, 20)
    hooks.add_filter("mail_before_send", lambda m: {**m, "subject": "[A] " + m["subject"]}, 5)
    hooks.add_filter(
        "mail_before_send", lambda m: {**m, "to": [*m["to"], "shop@example.com"],
                                        "headers": {**m["headers"], "Bcc": "log@example.com"}})  # fmt: skip
    sent = prepare(hooks, MESSAGE)
    assert sent is not None
    assert sent["subject"] == "[A] Order 1 paid [B]"
    assert sent["to"] == ["buyer@example.com", "shop@example.com"]
    assert sent["headers"] == {"Bcc": "log@example.com"} and sent["kind"] == "order_paid"


def test_a_filter_may_stop_a_message():
    hooks = HookRegistry()
    hooks.add_filter("mail_before_send", lambda m: None if m["kind"] == "order_paid" else m)
    assert prepare(hooks, MESSAGE) is None
    assert prepare(hooks, {**MESSAGE, "kind": "order_shipped"}) is not None


@pytest.mark.parametrize("returned", [{"to": []}, {"to": ["not-an-address"]}, {"subject": ""},
                                      {"headers": {"X": 1}}, "text"])  # fmt: skip
def test_a_filter_returning_a_bad_message_is_an_internal_error(returned):
    hooks = HookRegistry()
    hooks.add_filter(
        "mail_before_send", lambda m: returned if isinstance(returned, str) else {**m, **returned}
    )
    with pytest.raises(InternalError, match="mail_before_send"):
        prepare(hooks, MESSAGE)


def test_a_bad_message_from_the_caller_is_a_validation_error():
    with pytest.raises(ValidationError, match="subject"):
        prepare(HookRegistry(), {"to": ["a@example.com"], "body": ""})
