"""Request middleware: body limit and admin authentication."""

from __future__ import annotations

import hmac
from typing import Any

import falcon

from ecshop.errors import Forbidden, InMaintenance, PayloadTooLarge, Unauthorized

ADMIN_PREFIX = "/api/v1/admin"


class RequestGuard:
    """Refuses oversized bodies and unauthenticated admin calls before any resource runs."""

    def __init__(self, config: Any) -> None:
        self.max_body = config.max_body
        self.admin_token = config.admin_token.encode("utf-8")

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > self.max_body:
            raise PayloadTooLarge(
                f"request body is over the limit of {self.max_body} bytes", limit=self.max_body
            )
        if req.path == ADMIN_PREFIX or req.path.startswith(ADMIN_PREFIX + "/"):
            self._check_admin(req, resp)

    def _check_admin(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.admin_token:
            raise Forbidden("the admin API is disabled: set ECSHOP_ADMIN_TOKEN to enable it")
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        # NOTE: compare_digest on bytes keeps the comparison constant-time whatever
        # the token holds (str compare_digest refuses non-ASCII).
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8"), self.admin_token
        ):
            resp.set_header("WWW-Authenticate", 'Bearer realm="ecshop-admin"')
            raise Unauthorized(
                "missing or wrong admin token (Authorization: Bearer <ECSHOP_ADMIN_TOKEN>)"
            )


# Paths that stay open in maintenance mode: payments in flight must land.
ALWAYS_OPEN = ("/payments/", ADMIN_PREFIX + "/", "/healthz", "/metrics", "/api/openapi.json")


class MaintenanceGate:
    """Answers 503 + ``Retry-After`` to storefront requests while maintenance is on."""

    def __init__(self, switch: Any) -> None:
        self.switch = switch

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path.startswith(ALWAYS_OPEN):
            return
        state = self.switch.current()
        if state.on:
            raise InMaintenance(
                state.message or "the shop is in maintenance, back soon",
                retry_after=state.retry_after,
            )


class ResponseCounter:
    """Counts responses per route template and status, for ``/metrics``."""

    def __init__(self, counters: Any) -> None:
        self.counters = counters

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        route = req.uri_template or "unmatched"
        self.counters[(route, str(resp.status)[:3])] += 1
