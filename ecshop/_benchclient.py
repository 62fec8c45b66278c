"""The client side of ``ecshop bench``: loops run in spawned client processes.

Each loop runs until its deadline and returns what it saw; the orchestration and the
figures are in ``ecshop.benchrun``. Every finished request (or paid flow) adds one to a
counter shared with the parent, which reads it for its heartbeat.
"""

from __future__ import annotations

import http.client
import json
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


def init(counter: Any) -> None:
    """Pool initializer: keep the shared counter of finished requests."""
    global _progress
    _progress = counter


def _tick() -> None:
    if _progress is not None:
        with _progress.get_lock():
            _progress.value += 1


def _call(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request on a connection of its own; status 0 when it could not be made."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


def checkout_loop(
    url: str, sku: str, deadline: float, stop_on_409: bool
) -> list[tuple[int, float]]:
    """One client: checkouts of one unit until the deadline (or the first 409)."""
    body = json.dumps({**BODY, "lines": [{"sku": sku, "qty": 1}]}).encode()
    headers = {"Content-Type": "application/json"}
    results: list[tuple[int, float]] = []
    while time.monotonic() < deadline:
        started = time.perf_counter()
        status, _ = _call(url, "POST", "/api/v1/checkout", body, headers)
        results.append((status, time.perf_counter() - started))
        _tick()
        if stop_on_409 and status == 409:
            break
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


def paid_flow(url: str, body: bytes, wait_limit: float) -> Flow:
    """Checkout, pay on the gateway, and wait until the shop shows the order paid."""
    started = time.perf_counter()
    status, data = _call(
        url, "POST", "/api/v1/checkout", body, {"Content-Type": "application/json"}
    )
    if status != 201:
        return Flow("checkout", status)
    order = json.loads(data)
    status = _pay(order["payment"]["redirect_url"])
    if status != 303:
        return Flow("pay", status)
    paid_answer = time.perf_counter()
    path = f"/api/v1/orders/{quote(order['number'], safe='')}?token={quote(order['access_token'])}"
    seen, polls = _seen_paid(url, path, wait_limit)
    done = time.perf_counter()
    outcome = "paid" if seen else "not_paid"
    return Flow(outcome, 201, done - started, done - paid_answer, polls)


def paid_loop(url: str, sku: str, deadline: float, wait_limit: float) -> list[Flow]:
    """One client: paid checkouts of one unit, one after another, until the deadline."""
    body = json.dumps({**BODY, "lines": [{"sku": sku, "qty": 1}]}).encode()
    flows: list[Flow] = []
    while time.monotonic() < deadline:
        flows.append(paid_flow(url, body, wait_limit))
        _tick()
    return flows


class _KeepAlive:
    """One persistent connection, reopened when the server closes it, with a cookie."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port
        self.conn: http.client.HTTPConnection | None = None
        self.cookie = ""

    def get(self, path: str, headers: dict[str, str]) -> int:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
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
