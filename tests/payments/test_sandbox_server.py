"""The sandbox gateway driven as a real process, with a real HTTP receiver for its
notifications: signatures, capture once, retries, fault switches, restart, refunds.

Waits poll for a condition with a generous deadline (a liveness guard, never a speed
claim); timing assertions are lower bounds only.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode, urljoin

import pytest

from ecshop.config import child_environ
from ecshop.errors import SignatureError
from ecshop.sandbox.protocol import SIGNATURE_HEADER, verify_body

FAST_RETRY = {"retry_base_ms": 20}


@dataclass
class Arrival:
    event: dict[str, Any]
    raw: bytes
    signature: str | None
    at: float
    answered: int


class Receiver:
    """A shop's notify endpoint: records every POST, answers scripted status codes."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.scripts: dict[str, list[int]] = {}
        self.default_status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = json.loads(raw)
                with receiver.lock:
                    script = receiver.scripts.get(event["order"])
                    status = script.pop(0) if script else receiver.default_status
                    receiver.arrivals.append(
                        Arrival(event, raw, self.headers.get(SIGNATURE_HEADER), time.time(), status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/payments/sandbox/notify"

    def received(self) -> list[Arrival]:
        with self.lock:
            return list(self.arrivals)

    def for_order(self, order: str) -> list[Arrival]:
        return [a for a in self.received() if a.event["order"] == order]

    def applied(self) -> dict[str, dict[str, Any]]:
        """Events a shop would apply: 2xx answers, once per event id."""
        return {a.event["id"]: a.event for a in self.received() if 200 <= a.answered < 300}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def settled(gw: Any, expected_events: int) -> list[dict[str, Any]]:
    """Wait until every event has a final delivery outcome and nothing is queued."""

    def done() -> list[dict[str, Any]] | None:
        if gw.http.get(f"{gw.url}/healthz").json()["pending_deliveries"]:
            return None
        deliveries = gw.all_pages("/v1/deliveries?limit=1000")
        finals = {d["event_id"] for d in deliveries if d["outcome"] in ("delivered", "dropped")}
        return deliveries if len(finals) >= expected_events else None

    return list(wait_for(done, what=f"{expected_events} events to be delivered or dropped"))


def pay_many(gw: Any, receiver: Receiver, n: int, prefix: str) -> list[str]:
    orders = [f"{prefix}-{i:04d}" for i in range(n)]
    for i, order in enumerate(orders):
        resp = gw.press(gw.link(order, 100 + i, receiver.url))
        assert resp.status_code == 303, resp.text
    return orders


def binomial_tolerance(n: int, p: float, sigmas: float = 4.5) -> float:
    return sigmas * math.sqrt(n * p * (1 - p))


# -- the pay link and page ---------------------------------------------------------------
def test_pay_page_shows_the_order_with_pay_and_decline(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    fields = gw.link("P-1", 4800, receiver.url)
    resp = gw.http.get(gw.pay_url(fields), headers={"Accept": "text/html"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    page = resp.text
    assert "P-1" in page and "4,800 JPY" in page
    assert '<form method="post" action="/pay">' in page
    assert 'value="pay">Pay</button>' in page and 'value="decline">Decline</button>' in page
    for name in fields:
        assert f'name="{name}" value="' in page, name
    assert gw.call("GET", "/v1/payments/P-1").json()["status"] == "pending"


class FormReader(HTMLParser):
    """The pay page's form as a browser sees it: action, hidden inputs, buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.hidden: list[tuple[str, str]] = []
        self.buttons: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a["action"]
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden.append((a["name"], a["value"]))
        elif tag == "button":
            self.buttons.append((a["name"], a["value"]))


def test_the_page_form_works_as_a_browser_submits_it(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    fields = gw.link("F-1", 2500, receiver.url, merchant="Tea & Co <shop>")
    form = FormReader()
    form.feed(gw.http.get(gw.pay_url(fields)).text)
    assert dict(form.hidden) == fields  # escaped on the page, intact in the form
    assert form.buttons == [("action", "pay"), ("action", "decline")]
    body = urlencode([*form.hidden, form.buttons[0]])
    resp = gw.http.post(urljoin(gw.url + "/pay", form.action), data=body, allow_redirects=False,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert resp.status_code == 303
    assert resp.headers["Location"] == fields["return_url"]
    assert gw.call("GET", "/v1/payments/F-1").json()["status"] == "succeeded"


TAMPERINGS = [
    {"amount": "1"},
    {"currency": "USD"},
    {"notify_url": "http://evil.invalid/n"},
    {"extra": "1"},
    {"sig": "0" * 64},
    {"sig": ""},
]


def test_tampered_link_is_refused(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    for change in TAMPERINGS:
        fields = {**gw.link("T-1", 5000, receiver.url), **change}
        page = gw.http.get(gw.pay_url(fields))
        assert page.status_code == 400, change
        assert page.json()["error"]["code"] in ("invalid_signature", "validation_error")
        assert "sig" in page.json()["error"]["message"]
        assert gw.press(fields).status_code == 400, change
        assert gw.call("GET", "/v1/payments/T-1").json()["status"] == "unknown"
        browser = gw.http.get(gw.pay_url(fields), headers={"Accept": "text/html,*/*;q=0.8"})
        assert browser.status_code == 400 and "cannot be used" in browser.text
    assert receiver.received() == []


def test_link_signed_with_another_secret_is_refused(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    fields = gw.link("T-2", 5000, receiver.url)
    gw.secret, real = "not-the-secret", gw.secret
    forged = gw.link("T-2", 5000, receiver.url)
    gw.secret = real
    assert fields["sig"] != forged["sig"]
    resp = gw.press(forged)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_signature"


MALFORMED = [{"amount": "-5"}, {"amount": "1.5"}, {"amount": "abc"}, {"currency": "jpy"},
             {"currency": "YENN"}, {"return_url": "javascript:alert(1)"},
             {"notify_url": "ftp://x/y"}]  # fmt: skip


def test_malformed_but_signed_link_is_400(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    for override in MALFORMED:
        fields = gw.link("M-1", 100, receiver.url, **override)
        for resp in (gw.press(fields), gw.http.get(gw.pay_url(fields))):
            assert resp.status_code == 400, override
            assert resp.json()["error"]["code"] == "validation_error"
    assert gw.call("GET", "/v1/payments/M-1").json()["status"] == "unknown"


def test_bad_requests_are_json_4xx(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    fields = gw.link("B-1", 100, receiver.url)
    assert gw.press(fields, action="steal").status_code == 400
    dup = gw.http.post(f"{gw.url}/pay", data="action=pay&order=a&order=b", timeout=10)
    assert dup.status_code == 400
    cases = [
        gw.call("GET", "/v1/payments", headers={"Authorization": "Bearer wrong"}),
        gw.http.get(f"{gw.url}/v1/payments/B-1"),
        gw.call("POST", "/v1/refunds", data=b"{not json"),
        gw.call("POST", "/v1/refunds", json=[1, 2]),
        gw.call("POST", "/v1/refunds", json={"order": "B-1", "amount": "10"}),
        gw.call("POST", "/v1/refunds", json={"order": "B-1", "amount": True}),
        gw.call("GET", "/v1/payments?limit=0"),
        gw.call("GET", "/v1/payments?after=x"),
        gw.call("GET", "/v1/payments?status=bogus"),
        gw.call("GET", "/v1/nothing-here"),
        gw.call("DELETE", "/v1/payments"),
        gw.call("POST", "/v1/refunds", data=b"x" * (70 * 1024)),
    ]
    expected = [401, 401, 400, 400, 400, 400, 400, 400, 400, 404, 405, 413]
    assert [r.status_code for r in cases] == expected
    for resp in cases:
        error = resp.json()["error"]
        assert error["code"] and error["message"]
    assert cases[0].headers["WWW-Authenticate"] == "Bearer"


def test_secret_comes_from_the_environment_when_not_given(sandbox_gateway):
    gw = sandbox_gateway(secret_via_env=True)
    assert "--secret" not in gw.args()
    assert gw.call("GET", "/v1/payments").status_code == 200
    wrong = gw.http.get(f"{gw.url}/v1/payments", headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0", "--drop", "1.5"], "--drop"),
        (["--port", "0", "--retry-budget", "0"], "--retry-budget"),
        (["--drop", "0.1"], "--port"),
        (["--port", "0"], "no secret"),
    ],
)
def test_bad_command_lines_exit_2_with_a_reason(tmp_path, args, message):
    env = child_environ({"ECSHOP_GATEWAY_SANDBOX_SECRET": ""})
    done = subprocess.run(
        [sys.executable, "-m", "ecshop.sandbox.server", *args,
         "--state", str(tmp_path / "gw.db")],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1]


# -- settling and notifications ------------------------------------------------------------
def test_notification_is_signed_and_matches_the_payment(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    before = int(time.time())
    resp = gw.press(gw.link("N-1", 3300, receiver.url))
    assert resp.status_code == 303
    assert resp.headers["Location"] == "http://shop.invalid/payments/sandbox/return?order=N-1"
    [arrival] = wait_for(lambda: receiver.for_order("N-1"), what="the notification")
    assert verify_body(arrival.signature, arrival.raw, gw.secret) >= before
    with pytest.raises(SignatureError):
        verify_body(arrival.signature, arrival.raw.replace(b"3300", b"3301"), gw.secret)
    with pytest.raises(SignatureError):
        verify_body(arrival.signature, arrival.raw, "another-secret")
    status = gw.call("GET", "/v1/payments/N-1").json()
    event = arrival.event
    assert set(event) == {"id", "type", "order", "amount", "currency", "payment_id", "created"}
    assert event["id"].startswith("evt_") and event["type"] == "payment.succeeded"
    assert (event["order"], event["amount"], event["currency"]) == ("N-1", 3300, "JPY")
    assert event["payment_id"] == status["payment_id"] and event["created"] >= before
    assert status == {"order": "N-1", "status": "succeeded", "amount": 3300, "currency": "JPY",
                      "payment_id": event["payment_id"], "refunded_amount": 0}  # fmt: skip


def test_capture_once_per_order(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    fields = gw.link("C-1", 1000, receiver.url)
    first, second, decline = gw.press(fields), gw.press(fields), gw.press(fields, "decline")
    assert [r.status_code for r in (first, second, decline)] == [303, 303, 303]
    assert first.headers["Location"] == second.headers["Location"] == decline.headers["Location"]
    settled(gw, 1)
    ledger = gw.all_pages("/v1/payments?status=succeeded")
    assert [p["order"] for p in ledger] == ["C-1"]
    events = gw.all_pages("/v1/events?order=C-1")
    assert [e["type"] for e in events] == ["payment.succeeded"]
    assert [a.event["id"] for a in receiver.for_order("C-1")] == [events[0]["id"]]
    assert gw.call("GET", "/v1/payments/C-1").json()["status"] == "succeeded"
    page = gw.http.get(gw.pay_url(fields)).text
    assert "already paid" in page and 'value="pay"' not in page


def test_decline_fails_the_payment_and_notifies(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    fields = gw.link("D-1", 700, receiver.url)
    assert gw.press(fields, "decline").status_code == 303
    assert gw.press(fields, "decline").status_code == 303
    [arrival] = wait_for(lambda: receiver.for_order("D-1"), what="the failure notification")
    assert arrival.event["type"] == "payment.failed" and arrival.event["payment_id"] is None
    assert gw.call("GET", "/v1/payments/D-1").json()["status"] == "failed"
    assert gw.all_pages("/v1/payments?status=succeeded") == []
    assert [p["order"] for p in gw.all_pages("/v1/payments?status=failed")] == ["D-1"]


def test_unknown_order_status_is_unknown(sandbox_gateway):
    gw = sandbox_gateway()
    resp = gw.call("GET", "/v1/payments/never-seen")
    assert resp.status_code == 200
    assert resp.json() == {"order": "never-seen", "status": "unknown", "amount": None,
                           "currency": None, "payment_id": None, "refunded_amount": 0}  # fmt: skip


def test_retries_with_backoff_until_2xx(sandbox_gateway, receiver):
    gw = sandbox_gateway(**FAST_RETRY)
    receiver.scripts["R-1"] = [500, 500, 200]
    gw.press(gw.link("R-1", 900, receiver.url))
    deliveries = settled(gw, 1)
    arrivals = receiver.for_order("R-1")
    assert [a.answered for a in arrivals] == [500, 500, 200]
    assert len({a.event["id"] for a in arrivals}) == 1
    assert len(receiver.applied()) == 1
    assert [(d["attempt"], d["outcome"], d["http_status"]) for d in deliveries] == [
        (1, "failed", 500), (2, "failed", 500), (3, "delivered", 200)]  # fmt: skip
    gaps = [b.at - a.at for a, b in itertools.pairwise(arrivals)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04  # the backoff doubles (lower bounds)
    for a in arrivals:  # each attempt is signed afresh and verifies
        verify_body(a.signature, a.raw, gw.secret)


def test_retry_budget_ends_the_attempts(sandbox_gateway, receiver):
    gw = sandbox_gateway(retry_budget=3, **FAST_RETRY)
    receiver.default_status = 503
    gw.press(gw.link("RB-1", 900, receiver.url))
    wait_for(lambda: len(gw.all_pages("/v1/deliveries")) >= 3, what="three attempts")
    wait_for(lambda: gw.http.get(f"{gw.url}/healthz").json()["pending_deliveries"] == 0,
             what="the queue to empty")  # fmt: skip
    deliveries = gw.all_pages("/v1/deliveries")
    assert [(d["attempt"], d["outcome"]) for d in deliveries] == [
        (1, "failed"), (2, "failed"), (3, "failed")]  # fmt: skip
    assert len(receiver.for_order("RB-1")) == 3
    assert gw.call("GET", "/v1/payments/RB-1").json()["status"] == "succeeded"


def test_unreachable_notify_url_is_an_error_outcome(sandbox_gateway, receiver):
    gw = sandbox_gateway(retry_budget=2, **FAST_RETRY)
    gw.press(gw.link("U-1", 900, "http://127.0.0.1:9/notify"))
    wait_for(lambda: len(gw.all_pages("/v1/deliveries")) >= 2, what="two attempts")
    deliveries = gw.all_pages("/v1/deliveries")
    assert {d["outcome"] for d in deliveries} == {"error"}
    assert all(d["http_status"] is None and d["error"] for d in deliveries)


# -- fault switches ----------------------------------------------------------------------
def test_drop_loses_first_deliveries_but_status_api_knows_every_payment(sandbox_gateway, receiver):
    n, rate = 200, 0.3
    gw = sandbox_gateway(drop=rate, seed=7)
    orders = pay_many(gw, receiver, n, "DROP")
    deliveries = settled(gw, n)
    arrived = {a.event["order"] for a in receiver.received()}
    missing = n - len(arrived)
    assert abs(missing - n * rate) <= binomial_tolerance(n, rate), missing
    dropped = {d["order"] for d in deliveries if d["dropped"]}
    assert dropped == set(orders) - arrived  # a dropped delivery never arrives, nor is retried
    assert all(d["attempt"] == 1 for d in deliveries if d["dropped"])
    for order in sorted(dropped)[:20]:
        assert gw.call("GET", f"/v1/payments/{order}").json()["status"] == "succeeded"
    ledger = gw.all_pages("/v1/payments?status=succeeded&limit=37")
    assert sorted(p["order"] for p in ledger) == orders


def test_dup_delivers_the_same_event_twice(sandbox_gateway, receiver):
    n, rate = 80, 0.5
    gw = sandbox_gateway(dup=rate, seed=3)
    pay_many(gw, receiver, n, "DUP")
    deliveries = settled(gw, n)
    wait_for(lambda: all(d["outcome"] == "delivered" for d in gw.all_pages("/v1/deliveries"))
             and len(receiver.received()) == len(gw.all_pages("/v1/deliveries")),
             what="duplicates to arrive")  # fmt: skip
    counts = Counter(a.event["id"] for a in receiver.received())
    assert len(counts) == n and set(counts.values()) <= {1, 2}
    twice = [event_id for event_id, c in counts.items() if c == 2]
    assert abs(len(twice) - n * rate) <= binomial_tolerance(n, rate)
    by_id: dict[str, set[bytes]] = {}
    for a in receiver.received():
        by_id.setdefault(a.event["id"], set()).add(a.raw)
    assert all(len(bodies) == 1 for bodies in by_id.values())  # the very same body
    deliveries = gw.all_pages("/v1/deliveries")
    assert sorted(d["event_id"] for d in deliveries if d["duplicate"]) == sorted(twice)
    assert len(receiver.applied()) == n


def test_delay_holds_every_delivery_back(sandbox_gateway, receiver):
    delay = 0.4
    gw = sandbox_gateway(delay_ms=int(delay * 1000))
    sent_at: dict[str, float] = {}
    for i in range(5):
        order = f"DL-{i}"
        sent_at[order] = time.time()
        assert gw.press(gw.link(order, 100, receiver.url)).status_code == 303
    wait_for(lambda: len(receiver.received()) == 5, what="five delayed notifications")
    for a in receiver.received():
        assert a.at - sent_at[a.event["order"]] >= delay - 0.01  # lower bound only


def test_reorder_shuffles_arrival_order(sandbox_gateway, receiver):
    n = 30
    gw = sandbox_gateway(reorder=True, seed=5)
    orders = pay_many(gw, receiver, n, "RO")
    wait_for(lambda: len(receiver.received()) == n, what="every reordered notification")
    arrival_order = [a.event["order"] for a in receiver.received()]
    assert sorted(arrival_order) == orders
    assert arrival_order != orders
    inversions = sum(
        1 for i, a in enumerate(arrival_order) for b in arrival_order[i + 1 :] if a > b
    )
    assert inversions >= n  # far from the settle order, not one swapped pair


# -- restart, ledger, refunds --------------------------------------------------------------
def test_restart_keeps_the_ledger_and_resumes_pending_deliveries(sandbox_gateway, receiver):
    gw = sandbox_gateway(delay_ms=3000)
    orders = [f"RS-{i}" for i in range(5)]
    for order in orders:
        assert gw.press(gw.link(order, 500, receiver.url)).status_code == 303
    before = gw.all_pages("/v1/payments?status=succeeded&limit=2")
    gw.stop()  # before the delayed deliveries were due
    assert receiver.received() == []
    gw.start()
    assert gw.all_pages("/v1/payments?status=succeeded&limit=2") == before
    assert [p["order"] for p in before] == orders
    wait_for(lambda: len(receiver.received()) == len(orders), what="resumed deliveries")
    assert sorted(a.event["order"] for a in receiver.received()) == orders
    again = gw.press(gw.link("RS-0", 500, receiver.url))
    assert again.status_code == 303
    assert len(gw.all_pages("/v1/payments?status=succeeded")) == len(orders)
    assert len(gw.all_pages("/v1/events")) == len(orders)


def test_ledger_pages_with_next_after(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    orders = pay_many(gw, receiver, 5, "LG")
    gw.press(gw.link("LG-declined", 100, receiver.url), "decline")
    first = gw.call("GET", "/v1/payments?status=succeeded&limit=2").json()
    assert [p["order"] for p in first["items"]] == orders[:2] and first["next_after"]
    assert set(first["items"][0]) == {"order", "amount", "currency", "payment_id", "status"}
    assert [p["order"] for p in gw.all_pages("/v1/payments?status=succeeded&limit=2")] == orders
    everything = gw.all_pages("/v1/payments?status=succeeded,failed")
    assert len(everything) == 6


def test_refunds_partial_full_and_refused(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    gw.press(gw.link("RF-1", 1000, receiver.url))
    gw.press(gw.link("RF-declined", 1000, receiver.url), "decline")
    part = gw.call("POST", "/v1/refunds", json={"order": "RF-1", "amount": 300})
    assert part.status_code == 201, part.text
    assert part.json()["status"] == "partially_refunded" and part.json()["refunded_amount"] == 300
    assert part.json()["id"].startswith("re_")
    too_much = gw.call("POST", "/v1/refunds", json={"order": "RF-1", "amount": 701})
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "refund_exceeds_payment"
    assert too_much.json()["error"]["refundable"] == 700
    rest = gw.call("POST", "/v1/refunds", json={"order": "RF-1", "amount": 700})
    assert rest.status_code == 201 and rest.json()["status"] == "refunded"
    assert gw.call("POST", "/v1/refunds", json={"order": "RF-1", "amount": 1}).status_code == 400
    assert gw.call("POST", "/v1/refunds", json={"order": "nope", "amount": 1}).status_code == 404
    declined = gw.call("POST", "/v1/refunds", json={"order": "RF-declined", "amount": 1})
    assert declined.status_code == 409 and declined.json()["error"]["code"] == "not_captured"
    status = gw.call("GET", "/v1/payments/RF-1").json()
    assert (status["status"], status["refunded_amount"]) == ("refunded", 1000)
    wait_for(lambda: len(receiver.for_order("RF-1")) == 3, what="refund notifications")
    refunds = [a for a in receiver.for_order("RF-1") if a.event["type"] == "refund.succeeded"]
    assert sorted(a.event["amount"] for a in refunds) == [300, 700]
    for a in refunds:
        verify_body(a.signature, a.raw, gw.secret)
        assert a.event["payment_id"] == status["payment_id"]


def test_refund_idempotency_key_refunds_once(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    gw.press(gw.link("RI-1", 1000, receiver.url))
    key = {"Idempotency-Key": "refund-RI-1-a"}
    first = gw.call("POST", "/v1/refunds", json={"order": "RI-1", "amount": 400}, headers=key)
    again = gw.call("POST", "/v1/refunds", json={"order": "RI-1", "amount": 400}, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = gw.call("POST", "/v1/refunds", json={"order": "RI-1", "amount": 500}, headers=key)
    assert other.status_code == 409
    assert gw.call("GET", "/v1/payments/RI-1").json()["refunded_amount"] == 400


def test_deliveries_view_filters_by_order(sandbox_gateway, receiver):
    gw = sandbox_gateway()
    pay_many(gw, receiver, 3, "DV")
    settled(gw, 3)
    only = gw.all_pages("/v1/deliveries?order=DV-0001")
    assert [d["order"] for d in only] == ["DV-0001"]
    assert set(only[0]) >= {"event_id", "order", "attempt", "outcome", "http_status",
                            "dropped", "duplicate"}  # fmt: skip
