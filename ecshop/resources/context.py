"""Per-request context: the request id every answer carries, the body limit, and the
access log.

The id is the client's ``X-Request-Id`` when it is a sane token (a front proxy's, so
logs line up), else a new random one; it is echoed in the ``X-Request-Id`` response
header, written into 5xx error bodies, and every line logged while the request is
served carries it (:mod:`ecshop.logconf`), the access log's line too.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import time
from typing import Any

import falcon

from ecshop.logconf import bind_request_id, unbind
from ecshop.redact import mask
from ecshop.resources.ratelimit import client_address

access = logging.getLogger("ecshop.access")

SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
HEADER = "X-Request-Id"


def request_id(req: falcon.Request) -> str:
    """This request's id (taken from the request or made on first use)."""
    rid = getattr(req.context, "request_id", None)
    if rid is None:
        given = req.get_header(HEADER) or ""
        rid = given if SANE_ID.fullmatch(given) else secrets.token_hex(8)
        req.context.request_id = rid
    return str(rid)


class RequestContext:
    """Gives each request its id, its start time (``req.context.started``, for the
    metrics) and the body limit; echoes the id in every answer."""

    def __init__(self, config: Any) -> None:
        self.max_body = int(config.max_body)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        req.context.log_token = bind_request_id(request_id(req))
        req.context.max_body = self.max_body

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        resp.set_header(HEADER, request_id(req))
        token = getattr(req.context, "log_token", None)
        if token is not None:
            unbind(token)
            req.context.log_token = None


class AccessLog:
    """One INFO line per request on ``ecshop.access`` (``ECSHOP_ACCESS_LOG``): the
    client's address (as the trusted proxies tell it), the request line with secrets
    masked, the status, the time the app took and the user agent, logged under the
    request's id. JSON lines also get them as fields (``http``)."""

    def __init__(self, config: Any) -> None:
        self.trusted = tuple(ipaddress.ip_network(n, strict=False)
                             for n in config.trusted_proxies)  # fmt: skip

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        if not access.isEnabledFor(logging.INFO):
            return
        started = getattr(req.context, "started", None)
        took = round((time.perf_counter() - started) * 1000, 1) if started is not None else 0.0
        target = mask(req.relative_uri)
        client = client_address(req, self.trusted)
        agent = (req.user_agent or "-")[:200]
        status = resp.status_code
        access.info('%s "%s %s" %d %.1fms "%s"', client, req.method, target, status, took, agent,
                    extra={"http": {"method": req.method, "path": target,
                                    "route": req.uri_template, "status": status,
                                    "duration_ms": took, "client": client,
                                    "user_agent": agent}})  # fmt: skip
