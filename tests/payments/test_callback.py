"""The notification's request, outcome and reply (ecshop.payments.callback)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecshop.errors import GatewayError, NotFound, SignatureError
from ecshop.payments.base import Gateway, PaymentEvent
from ecshop.payments.callback import (
    DUPLICATE,
    FAILED,
    RECEIVED,
    REFUSED,
    NotificationOutcome,
    NotificationReply,
    NotificationRequest,
    json_reply,
    receive,
    reply,
)
from ecshop.store._base import StoreBusy

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def test_a_request_keeps_the_raw_body_lower_cases_headers_and_keeps_the_query():
    request = NotificationRequest(headers={"X-Sig": "abc"}, body=b"a=1",
                                  query_pairs=(("sig", "1"), ("sig", "2"), ("k", "v")))  # fmt: skip
    assert request.header("x-sig") == request.header("X-SIG") == "abc"
    assert request.query == {"sig": "2", "k": "v"}
    changed = request.replace(query={"k": "w"})
    assert (changed.query, changed.query_pairs, changed.body) == ({"k": "w"}, (("k", "w"),), b"a=1")


def test_form_reads_a_urlencoded_body():
    request = NotificationRequest(headers=FORM, body=b"a=1&b=x+y&c=%E3%81%82&d=")
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.form() == {"a": "1", "b": "x y", "c": "\u3042", "d": ""}
    sjis = NotificationRequest(headers=FORM, body=b"name=%82%A0&raw=\x82\xa0")
    assert sjis.form("shift_jis") == {"name": "\u3042", "raw": "\u3042"}
    with pytest.raises(SignatureError, match="malformed form body"):
        sjis.form()  # not UTF-8


@pytest.mark.parametrize(
    ("headers", "body", "why"),
    [
        (
            {"Content-Type": "application/json"},
            b"a=1",
            "expected a application/x-www-form-urlencoded",
        ),
        ({}, b"a=1", "no Content-Type"),
        (FORM, b"a=1&a=2", "given twice"),
        (FORM, b"a=%FF", "malformed form body"),
        (FORM, b"a=1&&b", "malformed form body"),
    ],
)
def test_form_refuses_what_is_not_one_unambiguous_form(headers, body, why):
    with pytest.raises(SignatureError, match=why):
        NotificationRequest(headers=headers, body=body).form()


class Payments:
    def __init__(self, result: Any) -> None:
        self.result = result

    def receive(self, name: str, event: Any) -> str:
        if isinstance(self.result, Exception):
            raise self.result
        return str(self.result)


class Parsed(Gateway):
    name = "parsed"

    def parse_request(self, request: NotificationRequest) -> PaymentEvent:
        if request.body == b"bad":
            raise SignatureError("signature does not match")
        return PaymentEvent("evt_1", "payment.succeeded", "A-1", 100, "JPY", "p", 0)


@pytest.mark.parametrize(
    ("result", "body", "kind", "status", "code"),
    [
        ("paid", b"ok", RECEIVED, 200, "paid"),
        ("duplicate", b"ok", DUPLICATE, 200, "duplicate"),
        ("paid", b"bad", REFUSED, 400, "invalid_notification"),
        (NotFound("no order 'A-1'"), b"ok", REFUSED, 404, "not_found"),
        (StoreBusy("the database is busy", retry_after=2), b"ok", FAILED, 503, "database_busy"),
        (RuntimeError("secret detail"), b"ok", FAILED, 500, "internal_error"),
    ],
)
def test_receive_sorts_every_notification_into_an_outcome(result, body, kind, status, code,
                                                          counted):  # fmt: skip
    outcome = receive(Payments(result), "parsed", Parsed({}),
                      NotificationRequest(body=body, request_id="rid-1"))  # fmt: skip
    assert (outcome.kind, outcome.status, outcome.result) == (kind, status, code)
    counted_as = {RECEIVED: ("applied", ""), DUPLICATE: ("duplicate", ""),
                  REFUSED: ("rejected", code), FAILED: ("failed", code)}[kind]  # fmt: skip
    assert counted("ecshop_payment_notifications_total", gateway="parsed",
                   outcome=counted_as[0], reason=counted_as[1]) == 1  # fmt: skip
    assert outcome.journaled == (kind in (RECEIVED, DUPLICATE))
    answer = json_reply(outcome)
    data = json.loads(answer.data)
    assert answer.status == status and answer.content_type == "application/json"
    if outcome.journaled:
        assert data == {"received": True, "event": "evt_1", "outcome": code}
    else:
        assert data["error"]["code"] == code and "secret detail" not in answer.data.decode()
    if status == 500:
        assert data["error"]["request_id"] == "rid-1"
    if status == 503:
        assert answer.headers == {"Retry-After": "2"}


class Liar(Gateway):
    """Answers OK whatever happened, or breaks while answering."""

    name = "liar"
    mode = "ok"

    def notification_reply(self, outcome: NotificationOutcome) -> Any:
        if self.mode == "raise":
            raise GatewayError("no reply")
        if self.mode == "junk":
            return "OK"
        return NotificationReply.text("OK")


@pytest.mark.parametrize("mode", ["ok", "raise", "junk"])
def test_the_shop_never_sends_a_2xx_for_a_notification_it_did_not_journal(mode):
    gateway = Liar({})
    gateway.mode = mode
    refused = NotificationOutcome.from_error(SignatureError("bad signature"))
    failed = NotificationOutcome.failure()
    assert (reply("liar", gateway, refused).status, reply("liar", gateway, failed).status) == (
        400,
        500,
    )
    journaled = reply("liar", gateway, NotificationOutcome.received("evt", "paid"))
    assert journaled.status == 200
    if mode == "ok":
        assert (journaled.data, journaled.content_type) == (b"OK", "text/plain; charset=utf-8")


def test_a_gateway_with_only_parse_request_still_parses_through_parse_notification():
    event = Parsed({}).parse_notification({}, b"ok")
    assert event.id == "evt_1"
    with pytest.raises(SignatureError):
        Parsed({}).parse_notification({}, b"bad")


def test_a_gateway_with_neither_takes_no_notifications():
    with pytest.raises(Exception, match="takes no notifications") as caught:
        Gateway({}).parse_request(NotificationRequest(body=b"{}"))
    assert caught.value.status == 400
