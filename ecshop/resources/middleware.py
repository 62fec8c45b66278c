"""Request middleware: body limit, admin authentication, load shedding, maintenance.

Every decision about who may reach what is taken on the route the router matched
(``req.uri_template``), never on how the client spelled the path: ``//api/v1/admin``,
an absolute-form target or an encoded slash reach the same route, so they meet the same
check (docs/architecture.md, "Lanes").
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

import falcon

from ecshop import metrics, outbox
from ecshop.audit import TOKEN as TOKEN_ACTOR
from ecshop.errors import Forbidden, InMaintenance, Overloaded, PayloadTooLarge, Unauthorized
from ecshop.resources._http import bearer_is
from ecshop.resources.ratelimit import client_address, in_networks

log = logging.getLogger("ecshop.http")

ADMIN_PREFIX = "/api/v1/admin"
ADMIN_PAGES_PREFIX = "/admin"

ADMIN, PAYMENTS, SERVICE, STOREFRONT = "admin", "payments", "service", "storefront"
ADMIN_PAGES = "admin_pages"
METRICS = "/metrics"
_SERVICE_ROUTES = frozenset({"/healthz", METRICS, "/api/openapi.json"})


def lane_of(template: str | None) -> str:
    """The lane of a matched route template: admin (the API), admin_pages, payments,
    service or storefront.

    Unmatched requests (no template) are storefront: they are shed and closed for
    maintenance like any page, and answer 404 otherwise.
    """
    if not template:
        return STOREFRONT
    if template == ADMIN_PREFIX or template.startswith(ADMIN_PREFIX + "/"):
        return ADMIN
    if template == ADMIN_PAGES_PREFIX or template.startswith(ADMIN_PAGES_PREFIX + "/"):
        return ADMIN_PAGES
    if template.startswith("/payments/"):
        return PAYMENTS
    if template in _SERVICE_ROUTES:
        return SERVICE
    return STOREFRONT


class RequestGuard:
    """Refuses oversized bodies, unauthenticated admin calls and scrapes of ``/metrics``
    that bring neither its token nor an allowed address, before any resource runs."""

    def __init__(self, config: Any) -> None:
        self.max_body = config.max_body
        self.admin_token = config.admin_token.encode("utf-8")
        self.metrics_token = config.metrics_token.encode("utf-8")
        self.metrics_allow = tuple(ipaddress.ip_network(n, strict=False)
                                   for n in config.metrics_allow)  # fmt: skip
        self.trusted = tuple(ipaddress.ip_network(n, strict=False)
                             for n in config.trusted_proxies)  # fmt: skip

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > self.max_body:
            raise PayloadTooLarge(
                f"request body is over the limit of {self.max_body} bytes", limit=self.max_body
            )

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        if lane_of(req.uri_template) == ADMIN:
            self._check_admin(req, resp)
        elif req.uri_template == METRICS:
            self._check_metrics(req, resp)

    def _check_admin(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The admin token, or 401 (403 while the admin API is closed); a refusal is
        logged at WARNING with the client's address, never with what it sent."""
        if not self.admin_token:
            self._refused_admin(req, "the admin API is closed (no ECSHOP_ADMIN_TOKEN)")
            raise Forbidden("the admin API is disabled: set ECSHOP_ADMIN_TOKEN to enable it")
        if not bearer_is(req, self.admin_token):
            given = "a wrong token" if req.get_header("Authorization") else "no token"
            self._refused_admin(req, given)
            resp.set_header("WWW-Authenticate", 'Bearer realm="ecshop-admin"')
            raise Unauthorized(
                "missing or wrong admin token (Authorization: Bearer <ECSHOP_ADMIN_TOKEN>)"
            )
        req.context.actor = TOKEN_ACTOR

    def _refused_admin(self, req: falcon.Request, why: str) -> None:
        log.warning("refused %s %s to %s: %s", req.method, req.path,
                    client_address(req, self.trusted), why)  # fmt: skip

    def _check_metrics(self, req: falcon.Request, resp: falcon.Response) -> None:
        """``/metrics``: its token (``ECSHOP_METRICS_TOKEN``) or an address of
        ``ECSHOP_METRICS_ALLOW``; 401 (with a token to ask for) or 403 otherwise, and
        nothing of the metrics."""
        if bearer_is(req, self.metrics_token):
            return
        address = client_address(req, self.trusted)
        if in_networks(address, self.metrics_allow):
            return
        given = "a wrong token" if req.get_header("Authorization") else "no token"
        log.warning("refused /metrics to %s (%s, an address not allowed)", address, given)
        if self.metrics_token:
            resp.set_header("WWW-Authenticate", 'Bearer realm="ecshop-metrics"')
            raise Unauthorized("/metrics needs Authorization: Bearer <ECSHOP_METRICS_TOKEN>")
        raise Forbidden("/metrics answers only the addresses of ECSHOP_METRICS_ALLOW")


# Lanes that stay open in maintenance mode and are never shed: payments in flight must land.
ALWAYS_OPEN = frozenset({ADMIN, ADMIN_PAGES, PAYMENTS, SERVICE})


def queued_since(header: str | None) -> float | None:
    """The Unix time in ``X-Request-Start`` (``t=`` seconds, ms or µs), or None."""
    if not header:
        return None
    raw = header.strip().removeprefix("t=")
    try:
        value = float(raw)
    except ValueError:
        return None
    while value > 1e11:  # milliseconds or microseconds since the epoch
        value /= 1000.0
    return value if value > 0 else None


class LoadShedder:
    """Sheds storefront requests that waited too long in the front proxy's queue.

    A reverse proxy that stamps ``X-Request-Start`` (nginx: ``proxy_set_header
    X-Request-Start "t=${msec}";``) tells the shop how long a request queued while the
    workers were busy. Past ``ECSHOP_SHED_QUEUE_MS`` the customer has likely given up
    waiting, so the request gets an immediate 503 with ``Retry-After`` instead of
    taking a worker, and the queue drains. Payment notifications and returns, the
    admin, health and metrics are never shed.
    """

    def __init__(self, limit_ms: int, retry_after: int = 2) -> None:
        self.limit = limit_ms / 1000.0
        self.retry_after = retry_after

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        if not self.limit or lane_of(req.uri_template) in ALWAYS_OPEN:
            return
        since = queued_since(req.get_header("X-Request-Start"))
        if since is None:
            return
        waited = time.time() - since
        if waited > self.limit:
            metrics.SHED.inc()
            raise Overloaded(
                "the shop is very busy right now, please try again in a moment",
                retry_after=self.retry_after, queued_ms=int(waited * 1000),
            )  # fmt: skip


class MaintenanceGate:
    """Answers 503 + ``Retry-After`` to storefront requests while maintenance is on."""

    def __init__(self, switch: Any) -> None:
        self.switch = switch

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        if lane_of(req.uri_template) in ALWAYS_OPEN:
            return
        state = self.switch.current()
        if state.on:
            raise InMaintenance(
                state.message or "the shop is in maintenance, back soon",
                retry_after=state.retry_after,
            )


class ResponseMetrics:
    """Counts each response by route template and status and times it by route
    (``ecshop_http_responses_total``, ``ecshop_http_request_duration_seconds``).

    The route is the matched template, never the raw path, so the number of series is
    the number of routes. The labelled children are kept here by key: after the first
    request of a kind, a response costs two dict lookups and the values' own writes.
    """

    def __init__(self) -> None:
        self._counted: dict[tuple[str, int], Any] = {}
        self._timed: dict[str, Any] = {}

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        route = req.uri_template or "unmatched"
        status = resp.status_code
        counter = self._counted.get((route, status))
        if counter is None:
            counter = self._counted[(route, status)] = metrics.HTTP_RESPONSES.labels(
                route=route, status=str(status)
            )
        counter.inc()
        started = getattr(req.context, "started", None)
        if started is not None:
            timer = self._timed.get(route)
            if timer is None:
                timer = self._timed[route] = metrics.HTTP_DURATION.labels(route=route)
            timer.observe(time.perf_counter() - started)


class MailNudge:
    """After a request whose commit wrote mail to the outbox, wakes this process's
    prompt sender (:meth:`ecshop.outbox.MailSender.nudge`): an order mail or a reset
    link goes out within moments, not at the next reconciler pass."""

    def __init__(self, sender: Any) -> None:
        self.sender = sender

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        if outbox.take_written():
            self.sender.nudge()
