"""One place that turns every error into ``{"error": {"code", "message", ...}}``, or,
for a browser on a page route, into an HTML error page with the same message."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import falcon

from ecshop.errors import ShopError
from ecshop.logconf import Repeats
from ecshop.resources.context import request_id
from ecshop.resources.middleware import ADMIN_PAGES, STOREFRONT, lane_of

log = logging.getLogger("ecshop.http")
#: page routes outside the storefront lane whose errors a browser sees
_PAGE_ROUTES = frozenset({"/payments/{gateway}/return"})
#: renders an error page: ``(req, resp, status, body)``
PageWriter = Callable[[falcon.Request, falcon.Response, int, dict[str, Any]], None]


def wants_html(req: falcon.Request) -> bool:
    """A browser on a page route: it gets an HTML error page, API clients keep JSON.

    Decided on the matched route (a storefront page or the return page, never
    ``/api/``) and on ``Accept`` (HTML preferred to JSON, as browsers send it)."""
    template = req.uri_template or ""
    lane = lane_of(req.uri_template)
    page = (
        template in _PAGE_ROUTES
        or lane == ADMIN_PAGES
        or (lane == STOREFRONT and not template.startswith("/api/"))
    )
    return page and req.client_prefers(["application/json", "text/html"]) == "text/html"


def _code_for(exc: falcon.HTTPError) -> str:
    title = exc.title or "error"
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "error"


class ErrorAnswers:
    """The app's error handlers; ``pages`` writes the HTML error page (none: JSON only).

    Every 5xx is logged with its traceback and the request's id. A 500 (the shop did
    not expect it) always is; a 502/503/504 of one kind (a part down, shedding,
    maintenance) is logged whole when it starts, then counted in one line per
    ``ECSHOP_LOG_REPEAT_EVERY`` seconds while it lasts (:class:`ecshop.logconf.Repeats`).
    """

    def __init__(self, pages: PageWriter | None = None) -> None:
        self.pages = pages
        self.repeats = Repeats(log)

    def write(self, req: falcon.Request, resp: falcon.Response, status: int,
              body: dict[str, Any]) -> None:  # fmt: skip
        resp.status = status
        if self.pages is not None and wants_html(req):
            self.pages(req, resp, status, body)
            return
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json.dumps({"error": body}, ensure_ascii=False)

    def internal(self, req: falcon.Request, resp: falcon.Response, exc: Exception) -> None:
        """500 with a generic body and the request id; the details go to the log only (a
        plugin's or a driver's text is no business of the client's)."""
        rid = request_id(req)
        log.error("request %s: %s %s failed", rid, req.method, req.path, exc_info=exc)
        self.write(req, resp, 500, {
            "code": "internal_error", "request_id": rid,
            "message": f"the shop hit an unexpected error; quote request id {rid} when reporting it",
        })  # fmt: skip

    def shop_error(self, req: falcon.Request, resp: falcon.Response, exc: ShopError,
                   params: Any) -> None:  # fmt: skip
        """A domain error: its code, message and details, with its status (a 500 is generic)."""
        if exc.status == 500:
            self.internal(req, resp, exc)
            return
        body = exc.to_dict()
        if exc.status > 500:
            body["request_id"] = request_id(req)
            self.repeats.failed(exc.code, "request %s: %s %s: %s: %s", body["request_id"],
                                req.method, req.path, exc.code, exc.message, exc_info=exc)  # fmt: skip
        if exc.retry_after is not None and exc.status in (429, 503):
            resp.set_header("Retry-After", str(exc.retry_after))
        self.write(req, resp, exc.status, body)

    def serialize(self, req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
        """Falcon's own errors (404 route, 405, malformed media…) in the same shape."""
        body: dict[str, Any] = {"code": _code_for(exc), "message": exc.description or exc.title}
        self.write(req, resp, int(str(resp.status)[:3]) if resp.status else exc.status_code, body)

    def unexpected(self, req: falcon.Request, resp: falcon.Response, exc: Exception,
                   params: Any) -> None:  # fmt: skip
        """Anything else: logged with its traceback, answered without one."""
        if isinstance(exc, falcon.HTTPError):
            if exc.status_code >= 500:
                log.error("request %s: %s %s: %s", request_id(req), req.method, req.path,
                          exc.title, exc_info=exc)  # fmt: skip
            resp.status = exc.status
            for name, value in dict(exc.headers or {}).items():
                resp.set_header(name, value)
            self.serialize(req, resp, exc)
            return
        self.internal(req, resp, exc)


def install(app: falcon.App, pages: PageWriter | None = None) -> None:
    answers = ErrorAnswers(pages)
    app.add_error_handler(Exception, answers.unexpected)
    app.add_error_handler(ShopError, answers.shop_error)
    app.set_error_serializer(answers.serialize)


_JSON_ONLY = ErrorAnswers()
#: JSON-only handlers, for an app of a few resources (tests, tools)
handle_shop_error = _JSON_ONLY.shop_error
serialize_http_error = _JSON_ONLY.serialize
