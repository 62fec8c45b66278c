"""Per-client rate limit on creating orders: a token bucket per client address.

A resource opts in with a class attribute ``rate_limited = True`` (checkout creation);
payment notifications, returns, the admin and health never do. A request that carries
the admin token (``Authorization: Bearer``) is not limited: the owner's own load test
(``ecshop bench --url``) places its orders from one address. The client address is
the peer's, or, when the peer is a configured trusted proxy
(``ECSHOP_TRUSTED_PROXIES``), the last address in ``X-Forwarded-For`` that is not itself
a trusted proxy: a client cannot pick its own address by sending the header.

Buckets live in each worker process (a client spread over N workers gets at most N
times the rate); the table is bounded: refilled buckets are forgotten first (they
lose nothing), then the oldest.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from typing import Any

import falcon

from ecshop import metrics
from ecshop.errors import RateLimited
from ecshop.resources._http import bearer_is

MAX_CLIENTS = 10_000


def client_address(req: falcon.Request, trusted: tuple[Any, ...]) -> str:
    """The client's address: the peer, or what trusted proxies say it is."""
    peer = req.remote_addr or ""
    if not trusted or not in_networks(peer, trusted):
        return peer
    forwarded = [h.strip() for h in (req.get_header("X-Forwarded-For") or "").split(",")]
    for hop in reversed([h for h in forwarded if h]):
        if not in_networks(hop, trusted):
            return hop
    return peer


def in_networks(address: str, networks: tuple[Any, ...]) -> bool:
    """True when ``address`` is an IP address in one of ``networks``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class RateLimiter:
    """``burst`` requests at once per client, refilled at ``burst / period`` per second."""

    def __init__(self, burst: int, period: float, trusted_proxies: tuple[str, ...] = (),
                 exempt_token: str = "") -> None:  # fmt: skip
        self.burst = burst
        self.exempt_token = exempt_token.encode("utf-8")
        self.rate = burst / period if period else 0.0
        self.trusted = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)
        self.buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        if not self.burst or not getattr(resource, "rate_limited", False) or req.method != "POST":
            return
        if bearer_is(req, self.exempt_token):
            return
        wait = self.take(client_address(req, self.trusted))
        if wait > 0:
            metrics.RATE_LIMITED.inc()
            raise RateLimited(
                "too many orders from this address; please wait a moment and try again",
                retry_after=max(1, math.ceil(wait)),
            )

    def take(self, client: str, now: float | None = None) -> float:
        """Take one token for ``client``: 0 when granted, else seconds until one is due."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, stamp = self.buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
            if tokens < 1.0:
                self.buckets[client] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self.buckets[client] = (tokens - 1.0, now)
            if len(self.buckets) > MAX_CLIENTS:
                self._trim(now)
            return 0.0

    def _trim(self, now: float) -> None:
        """Forget the clients whose buckets have refilled (they lose nothing)."""
        full = [c for c, (t, s) in self.buckets.items() if t + (now - s) * self.rate >= self.burst]
        for client in full or list(self.buckets)[: len(self.buckets) // 2]:
            del self.buckets[client]
