"""Spike drivers for ``test_spike.py``: visitors flooding the storefront through nginx, and
buyers who check out through it and pay on the sandbox gateway.

Each driver runs in a client process of its own, stops by itself (a bounded number of
arrivals, a deadline) and talks only to 127.0.0.1. Clients connect from addresses of
127.<octet>.0.0/16, one address per connection, as visitors from many addresses do: the
kit's site limits each address to 20 requests a second, and a spike of many visitors
must meet the shop's shedding, not that limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import random
import resource
import ssl
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

#: requests a second on one connection (one address), under the site's 20r/s
PACE = 15.0
#: new connections a second per process: a spike that opens thousands at once would
#: overflow nginx's listen backlog (511), and the test would measure the kernel
RAMP = 1500.0
#: how long a visitor waits for an answer: a bound that turns a hang into a failure
PATIENCE = 30.0
#: what a shed page must say (ecshop/templates/error.html), and what no page may
SHED_MARK = b'data-code="overloaded"'
TRACEBACK = b"Traceback (most recent call last)"


@dataclass(frozen=True)
class Front:
    """nginx's HTTPS port on 127.0.0.1, its certificate, and the second octet of the
    addresses this process connects from."""

    port: int
    cafile: str
    octet: int

    def address(self, n: int) -> str:
        """The ``n``-th client address of this process (n < 62,500)."""
        return f"127.{self.octet}.{n // 250}.{n % 250 + 1}"

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 2)


# -- visitors ---------------------------------------------------------------------------
class _Connection(asyncio.Protocol):
    """One kept-alive HTTPS connection: one request at a time, answers read whole."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if self.answer is None or self.answer.done() or end < 0:
            return
        status_line, *lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        # NOTE: nginx answers with a Content-Length (gunicorn sends one, nginx buffers).
        size = end + 4 + int(headers.get("content-length", "0"))
        if len(self.buffer) < size:
            return
        body = bytes(self.buffer[end + 4 : size])
        del self.buffer[:size]
        self.answer.set_result((int(status_line.split(" ", 2)[1]), headers, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError(str(exc or "closed by the server")))

    async def get(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.answer


class _Visitors:
    """Arrivals at ``rate`` a second; each takes a connection that is free (and has
    rested 1/PACE s since its last request) or opens one, while fewer than ``most`` are
    open; an arrival that finds all of them waiting is counted as not sent."""

    def __init__(self, front: Front, paths: list[str], most: int, seed: int) -> None:
        self.front, self.most = front, most
        self.requests = [
            f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\n"
            "User-Agent: ecshop-spike\r\n\r\n".encode()
            for p in paths
        ]
        self.rng = random.Random(seed)
        self.ssl = front.context()
        self.free: deque[tuple[float, _Connection]] = deque()
        self.open = self.made = 0
        self.freed = asyncio.Event()  # a connection came back, or one closed
        self.seen: Counter[str] = Counter()
        self.window = (0.0, 0.0)  # answers that came in it are counted in ``timed``
        self.timed: Counter[str] = Counter()
        self.unreadable: list[str] = []

    async def run(self, rate: float, seconds: float, warmup: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.window = (start + warmup, start + seconds)
        arrived = sent = 0
        tasks: set[asyncio.Task[None]] = set()
        while (now := loop.time()) < start + seconds:
            due = min(int((now - start) * rate) + 1, int(rate * seconds))
            while arrived < due:
                conn = self._free_connection(now)
                if conn is None:
                    if not self._may_open(now - start):
                        break
                    self.open += 1  # counted now: the task starts on a later turn
                    self.made += 1
                arrived += 1
                sent += 1
                task = asyncio.ensure_future(self._visit(conn, self.made))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if arrived < due:
                # Every visitor is waiting for an answer: these arrivals are not sent.
                # Sleep until a connection comes back (or the ramp allows another),
                # not until the next arrival: spinning would starve this process's I/O.
                arrived = due
                self.freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.freed.wait(), 0.05)
            else:
                await asyncio.sleep(max(0.0, start + arrived / rate - loop.time()))
        if tasks:
            await asyncio.wait(tasks, timeout=PATIENCE + 5)
        for _, conn in self.free:
            if conn.transport is not None:
                conn.transport.close()
        return {"arrived": arrived, "sent": sent, "connections": self.made,
                "statuses": dict(self.seen), "timed": dict(self.timed),
                "unreadable": self.unreadable[:3]}  # fmt: skip

    def _free_connection(self, now: float) -> _Connection | None:
        while self.free and self.free[0][0] <= now:
            conn = self.free.popleft()[1]
            if not conn.closed:
                return conn
            self.open -= 1
        return None

    def _may_open(self, elapsed: float) -> bool:
        return self.open < self.most and self.made < RAMP * (elapsed + 0.1)

    async def _visit(self, conn: _Connection | None, number: int) -> None:
        """One request, on ``conn`` or on a new connection from address ``number``."""
        try:
            kept = await self._ask(conn, number)
        except (TimeoutError, OSError) as exc:
            kept = None
            self.seen[f"{type(exc).__name__}: {exc}"[:90]] += 1
        if kept is None:
            self.open -= 1
        self.freed.set()

    async def _ask(self, conn: _Connection | None, number: int) -> _Connection | None:
        """Ask for a page and check the answer; the connection, if it stays open."""
        loop = asyncio.get_running_loop()
        if conn is None:
            _, conn = await asyncio.wait_for(loop.create_connection(
                _Connection, "127.0.0.1", self.front.port, ssl=self.ssl,
                local_addr=(self.front.address(number), 0)), PATIENCE)  # fmt: skip
        asked = loop.time()
        request = self.requests[self.rng.randrange(len(self.requests))]
        try:
            status, headers, body = await asyncio.wait_for(conn.get(request), PATIENCE)
        except (TimeoutError, OSError):
            if conn.transport is not None:
                conn.transport.abort()
            raise
        self.seen[str(status)] += 1
        if self.window[0] <= loop.time() <= self.window[1]:
            self.timed[str(status)] += 1
        if status == 503:
            self._check_shed(headers, body)
        if conn.closed or headers.get("connection", "").lower() == "close":
            if conn.transport is not None:
                conn.transport.close()
            return None
        self.free.append((asked + 1.0 / PACE, conn))
        return conn

    def _check_shed(self, headers: dict[str, str], body: bytes) -> None:
        """A shed page: Retry-After, an HTML page that says why, and no traceback."""
        if not headers.get("retry-after", "").isdigit():
            self.unreadable.append(f"no Retry-After: {headers}")
        elif not headers.get("content-type", "").startswith("text/html"):
            self.unreadable.append(f"not a page: {headers.get('content-type')}")
        elif SHED_MARK not in body or TRACEBACK in body:
            self.unreadable.append(body[:500].decode("utf-8", "replace"))


def visit(front: Front, paths: list[str], rate: float, seconds: float, most: int,
          seed: int = 1, warmup: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """Visitors asking for ``paths`` at ``rate`` a second for ``seconds``, at most ``most``
    connections open: what they sent and what came back (``timed``: the answers that
    came after the first ``warmup`` seconds), with this process's CPU time."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = most + 100  # a file per connection, and a few of the process's own
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    found = asyncio.run(_Visitors(front, paths, most, seed).run(rate, seconds, warmup))
    found["cpu_seconds"] = _cpu_seconds()
    return found


# -- buyers -----------------------------------------------------------------------------
def _request(front: Front, address: str, method: str, path: str, body: str,
             headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    conn = http.client.HTTPSConnection("127.0.0.1", front.port, context=front.context(),
                                       source_address=(address, 0), timeout=PATIENCE)  # fmt: skip
    try:
        conn.request(method, path, body, headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _pay(gateway_url: str, redirect_url: str) -> int:
    """Press Pay on the gateway's page (the buyer is not sent back to the shop: the
    return page would ask the gateway, and the notification alone must settle it)."""
    fields = dict(parse_qsl(urlsplit(redirect_url).query), action="pay")
    parts = urlsplit(gateway_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=PATIENCE)
    try:
        conn.request("POST", "/pay", urlencode(fields),
                     {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _checkout(front: Front, address: str, sku: str, gateway_url: str,
              deadline: float) -> dict[str, Any]:  # fmt: skip
    """One buyer's checkout of one unit: sent again with the same Idempotency-Key after
    each 503, once Retry-After (at most 2 s) has passed, then paid on the gateway."""
    body = json.dumps({"lines": [{"sku": sku, "qty": 1}], "gateway": "sandbox",
                       "customer": {"email": "spike@example.com"}})  # fmt: skip
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "Idempotency-Key": uuid.uuid4().hex}  # fmt: skip
    entry: dict[str, Any] = {"sku": sku, "statuses": [], "unreadable": []}
    while time.monotonic() < deadline:
        try:
            status, answer, data = _request(front, address, "POST", "/api/v1/checkout", body,
                                            headers)  # fmt: skip
        except (OSError, http.client.HTTPException) as exc:
            entry["statuses"].append(f"no answer: {type(exc).__name__}")
            return entry
        entry["statuses"].append(status)
        if status != 503:
            break
        code = json.loads(data).get("error", {}).get("code")
        wait = answer.get("retry-after", "")
        if code != "overloaded" or not wait.isdigit():
            entry["unreadable"].append(data[:300].decode("utf-8", "replace"))
            break
        time.sleep(min(int(wait), 2))
    if entry["statuses"][-1] in (200, 201):
        order = json.loads(data)
        entry["number"] = order["number"]
        entry["paid"] = _pay(gateway_url, order["payment"]["redirect_url"])
    return entry


def buy(front: Front, gateway_url: str, skus: list[str], seconds: float, buyers: int,
        seed: int = 1) -> list[dict[str, Any]]:  # fmt: skip
    """``buyers`` buyers checking out one after another for ``seconds``, each checkout from
    an address of its own; the last ones finish their retries within a bound after that."""
    rng = random.Random(seed)
    stop = time.monotonic() + seconds
    deadline = stop + 30
    numbers = iter(range(1, 62_500))

    def one_buyer(_: int) -> list[dict[str, Any]]:
        done = []
        while time.monotonic() < stop:
            done.append(_checkout(front, front.address(next(numbers)), rng.choice(skus),
                                  gateway_url, deadline))  # fmt: skip
        return done

    with ThreadPoolExecutor(max_workers=buyers) as pool:
        return [entry for chunk in pool.map(one_buyer, range(buyers)) for entry in chunk]
