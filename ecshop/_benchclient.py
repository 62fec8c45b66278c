"""The client side of ``ecshop bench``: loops run in spawned client processes.

Each loop runs until its deadline and returns what it saw; the orchestration and the
figures are in ``ecshop.benchrun``. Every finished request (or paid flow) adds one to a
counter shared with the parent, which reads it for its heartbeat.

Against a running shop (``ecshop bench --url``) the loops get a ``tag``: each checkout
sends ``Idempotency-Key: <tag>-<n>`` and the loop returns the order numbers it was
given, and the keys of the checkouts whose answer it did not get (a new checkout with
the same key and body answers the same order, so none is left behind), and an admin
``token`` that the shop's per-address checkout limit lets through.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

BODY = {"customer": {"email": "bench@example.invalid"}, "gateway": "sandbox"}
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "ja,en;q=0.8",
    "User-Agent": "ecshop-bench (browser-like)",
}
API = {"Accept": "application/json", "User-Agent": "ecshop-bench"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

#: pauses between two looks at an order waiting for its notification: from 1 ms,
#: growing by half each time, to at most 20 ms (the wait is known to within that)
POLL_FIRST, POLL_GROWTH, POLL_CAP = 0.001, 1.5, 0.020

_progress: Any = None
_gateway = "sandbox"


def init(counter: Any, gateway: str = "sandbox") -> None:
    """Pool initializer: keep the shared counter of finished requests and the gateway
    every checkout names."""
    global _progress, _gateway
    _progress = counter
    _gateway = gateway


def _tick() -> None:
    if _progress is not None:
        with _progress.get_lock():
            _progress.value += 1


def connection(url: str, timeout: float = 30) -> http.client.HTTPConnection:
    """A connection to ``url``'s host: HTTPS (certificate checked) for ``https://``."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "https":
        return http.client.HTTPSConnection(host, parts.port, timeout=timeout)
    return http.client.HTTPConnection(host, parts.port, timeout=timeout)


def _call(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request on a connection of its own; status 0 when it could not be made."""
    conn = connection(url)
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


def checkout_body(sku: str) -> bytes:
    """The one-unit checkout every loop sends."""
    return json.dumps({**BODY, "gateway": _gateway, "lines": [{"sku": sku, "qty": 1}]}).encode()


def _headers(token: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **(extra or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def may_have_placed(status: int) -> bool:
    """An answer after which the order may exist all the same: none, or a server error."""
    return status == 0 or (status >= 500 and status != 503)


def _what_came(status: int, data: bytes, key: str) -> str:
    """The order number of a placed checkout, the key of one that may have been, or ""."""
    if status in (200, 201) and key:
        try:
            return str(json.loads(data)["number"])
        except (ValueError, KeyError, TypeError):
            return key  # an answer that is not the shop's: ask again with the key
    return key if key and may_have_placed(status) else ""


def checkout_loop(
    url: str, sku: str, deadline: float, stop_on_409: bool, tag: str = "", token: str = ""
) -> list[tuple[int, float, str]]:
    """One client: checkouts of one unit until the deadline (or the first 409).

    Each result is the status, the seconds it took and, with a ``tag``, the order's
    number or the key of a checkout whose answer did not come (else "").
    """
    body = checkout_body(sku)
    headers = _headers(token)
    results: list[tuple[int, float, str]] = []
    n = 0
    while time.monotonic() < deadline:
        key = f"{tag}-{n}" if tag else ""
        if key:
            headers["Idempotency-Key"] = key
        started = time.perf_counter()
        status, data = _call(url, "POST", "/api/v1/checkout", body, headers)
        results.append((status, time.perf_counter() - started, _what_came(status, data, key)))
        _tick()
        n += 1
        if stop_on_409 and status == 409:
            break
    return results


def sweep_loop(
    url: str, sku: str, deadline: float, threads: int, tag: str = "", token: str = ""
) -> list[tuple[int, float, str]]:
    """``threads`` clients in this process, each placing checkouts until the deadline.

    A step of the concurrency sweep that has more clients than the bench has processes
    runs several in each process: they wait on the network, not on each other, for
    all but the few microseconds of Python between two requests.
    """
    if threads == 1:
        return checkout_loop(url, sku, deadline, False, tag and f"{tag}.0", token)
    parts: list[list[tuple[int, float, str]]] = [[] for _ in range(threads)]

    def one(i: int) -> None:
        parts[i] = checkout_loop(url, sku, deadline, False, tag and f"{tag}.{i}", token)

    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [r for part in parts for r in part]


def notify_loop(
    url: str, orders: list[tuple[str, int, str]], secret: str, deadline: float
) -> list[tuple[int, float, str]]:
    """One client: the sandbox gateway's signed ``payment.succeeded`` for each order
    (number, total, currency) in turn, until the list or the deadline ends.

    Each result is the status, the seconds it took and the shop's outcome (``paid``
    when the notification was applied, else what the reply said)."""
    from ecshop.sandbox.protocol import SIGNATURE_HEADER, sign_body

    results: list[tuple[int, float, str]] = []
    for number, total, currency in orders:
        if time.monotonic() >= deadline:
            break
        now = int(time.time())
        body = json.dumps({"id": f"evt_bench_{number}", "type": "payment.succeeded",
                           "order": number, "amount": total, "currency": currency,
                           "payment_id": f"pay_bench_{number}", "created": now}).encode()  # fmt: skip
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: sign_body(body, secret, now)}  # fmt: skip
        path = "/payments/sandbox/notify"
        started = time.perf_counter()
        status, data = _call(url, "POST", path, body, headers)
        took = time.perf_counter() - started
        try:
            outcome = str(json.loads(data).get("outcome", "")) if status == 200 else ""
        except (ValueError, AttributeError):
            outcome = ""
        results.append((status, took, outcome))
        _tick()
    return results


@dataclass(frozen=True)
class Flow:
    """One paid checkout as a client saw it.

    ``outcome`` is ``paid``, ``checkout`` (the checkout was not accepted), ``pay`` (the
    gateway's form did not answer 303) or ``not_paid`` (no notification within the wait
    limit). Times are seconds: ``flow`` from the checkout's start to the order seen
    paid, ``wait`` from the gateway's answer to the order seen paid.
    """

    outcome: str
    status: int = 0
    flow: float = 0.0
    wait: float = 0.0
    polls: int = 0
    #: with a tag: the order's number, or the key of a checkout whose answer did not come
    order: str = ""


def _pay(redirect_url: str) -> int:
    """Press Pay on the gateway's hosted page, as the page's form would post it."""
    fields = dict(parse_qsl(urlsplit(redirect_url).query))
    fields["action"] = "pay"
    parts = urlsplit(redirect_url)
    status, _ = _call(f"{parts.scheme}://{parts.netloc}", "POST", "/pay",
                      urlencode(fields).encode(), FORM)  # fmt: skip
    return status


def _seen_paid(url: str, path: str, limit: float) -> tuple[bool, int]:
    """Look at the order until it is paid or ``limit`` seconds went by."""
    give_up = time.monotonic() + limit
    pause, polls = POLL_FIRST, 0
    while True:
        status, data = _call(url, "GET", path, None, API)
        polls += 1
        if status == 200 and json.loads(data).get("status") == "paid":
            return True, polls
        if time.monotonic() >= give_up:
            return False, polls
        time.sleep(pause)
        pause = min(pause * POLL_GROWTH, POLL_CAP)


def paid_flow(url: str, body: bytes, wait_limit: float, key: str = "", token: str = "") -> Flow:
    """Checkout, pay on the gateway, and wait until the shop shows the order paid."""
    started = time.perf_counter()
    headers = _headers(token, {"Idempotency-Key": key} if key else None)
    status, data = _call(url, "POST", "/api/v1/checkout", body, headers)
    if status != 201:
        return Flow("checkout", status, order=_what_came(status, data, key))
    order = json.loads(data)
    number = str(order["number"]) if key else ""
    status = _pay(order["payment"]["redirect_url"])
    if status != 303:
        return Flow("pay", status, order=number)
    paid_answer = time.perf_counter()
    path = f"/api/v1/orders/{quote(order['number'], safe='')}?token={quote(order['access_token'])}"
    seen, polls = _seen_paid(url, path, wait_limit)
    done = time.perf_counter()
    outcome = "paid" if seen else "not_paid"
    return Flow(outcome, 201, done - started, done - paid_answer, polls, number)


def paid_loop(
    url: str, sku: str, deadline: float, wait_limit: float, tag: str = "", token: str = ""
) -> list[Flow]:
    """One client: paid checkouts of one unit, one after another, until the deadline."""
    body = checkout_body(sku)
    flows: list[Flow] = []
    while time.monotonic() < deadline:
        key = f"{tag}-{len(flows)}" if tag else ""
        flows.append(paid_flow(url, body, wait_limit, key, token))
        _tick()
    return flows


def recover_loop(url: str, sku: str, keys: list[str], token: str) -> list[tuple[str, str]]:
    """The order numbers behind checkouts whose answer did not come: the same key and
    body again answers the order the first one placed (or places it now). Each result
    is the key and the number, "" when the shop still gives none."""
    body = checkout_body(sku)
    found = []
    for key in keys:
        number = ""
        for _ in range(3):
            status, data = _call(url, "POST", "/api/v1/checkout", body,
                                 _headers(token, {"Idempotency-Key": key}))  # fmt: skip
            if status in (200, 201):
                number = str(json.loads(data)["number"])
                break
            if not may_have_placed(status) and status != 503:
                break
            time.sleep(0.5)
        found.append((key, number))
        _tick()
    return found


def cancel_loop(url: str, numbers: list[str], token: str) -> list[tuple[str, int]]:
    """Cancel each order through the admin API (a paid one is refunded first); each
    result is the number and the answer's status (0: no answer)."""
    done = []
    for number in numbers:
        status = 0
        for _ in range(3):
            status, _ = _call(url, "POST", f"/api/v1/admin/orders/{quote(number, safe='')}/cancel",
                              b"{}", _headers(token))  # fmt: skip
            if 0 < status < 500:
                break
            time.sleep(0.5)
        done.append((number, status))
        _tick()
    return done


class _KeepAlive:
    """One persistent connection, reopened when the server closes it, with a cookie."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: http.client.HTTPConnection | None = None
        self.cookie = ""

    def get(self, path: str, headers: dict[str, str]) -> int:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = connection(self.url)
            try:
                sent = {**headers, "Cookie": self.cookie} if self.cookie else headers
                self.conn.request("GET", path, headers=sent)
                resp = self.conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    return 0
                continue
            cookie = resp.getheader("Set-Cookie")
            if cookie:
                self.cookie = cookie.split(";", 1)[0]
            if resp.will_close:
                self.close()
            return resp.status
        return 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def page_loop(
    url: str, paths: list[str], browser: bool, deadline: float, offset: int
) -> list[tuple[int, float]]:
    """One client: GETs of ``paths`` in turn on a kept-alive connection until the deadline."""
    client = _KeepAlive(url)
    headers = BROWSER if browser else API
    results: list[tuple[int, float]] = []
    i = offset
    try:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status = client.get(paths[i % len(paths)], headers)
            results.append((status, time.perf_counter() - started))
            _tick()
            i += 1
    finally:
        client.close()
    return results
