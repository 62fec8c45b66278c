"""Per-request context: the request id every answer carries, and the body limit.

The id is the client's ``X-Request-Id`` when it is a sane token (a front proxy's, so
logs line up), else a new random one; it is echoed in the ``X-Request-Id`` response
header, written into 5xx error bodies, and every line logged while the request is
served carries it (:mod:`ecshop.logconf`).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import falcon

from ecshop.logconf import bind_request_id, unbind

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
