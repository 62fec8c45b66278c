"""One place that turns every error into ``{"error": {"code", "message", ...}}``."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import falcon

from ecshop.errors import ShopError
from ecshop.resources.context import request_id

log = logging.getLogger("ecshop.http")


def _code_for(exc: falcon.HTTPError) -> str:
    title = exc.title or "error"
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "error"


def _write(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps({"error": body}, ensure_ascii=False)


def _internal(req: falcon.Request, resp: falcon.Response, exc: Exception) -> None:
    """500 with a generic body and the request id; the details go to the log only (a
    plugin's or a driver's text is no business of the client's)."""
    rid = request_id(req)
    log.error("request %s: %s %s failed", rid, req.method, req.path, exc_info=exc)
    _write(resp, 500, {
        "code": "internal_error", "request_id": rid,
        "message": f"the shop hit an unexpected error; quote request id {rid} when reporting it",
    })  # fmt: skip


def handle_shop_error(
    req: falcon.Request, resp: falcon.Response, exc: ShopError, params: Any
) -> None:
    """A domain error: its code, message and details, with its status (a 500 is generic)."""
    if exc.status == 500:
        _internal(req, resp, exc)
        return
    body = exc.to_dict()
    if exc.status > 500:
        body["request_id"] = request_id(req)
        log.warning("request %s: %s %s: %s: %s", body["request_id"], req.method, req.path,
                    exc.code, exc.message)  # fmt: skip
    if exc.retry_after is not None and exc.status in (429, 503):
        resp.set_header("Retry-After", str(exc.retry_after))
    _write(resp, exc.status, body)


def serialize_http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """Falcon's own errors (404 route, 405, malformed media…) in the same shape."""
    body: dict[str, Any] = {"code": _code_for(exc), "message": exc.description or exc.title}
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps({"error": body}, ensure_ascii=False)


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, exc: Exception, params: Any
) -> None:
    """Anything else: logged with its traceback, answered without one."""
    if isinstance(exc, falcon.HTTPError):
        resp.status = exc.status
        for name, value in dict(exc.headers or {}).items():
            resp.set_header(name, value)
        serialize_http_error(req, resp, exc)
        return
    _internal(req, resp, exc)


def install(app: falcon.App) -> None:
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(ShopError, handle_shop_error)
    app.set_error_serializer(serialize_http_error)
