"""One place that turns every error into ``{"error": {"code", "message", ...}}``."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import falcon

from ecshop.errors import ShopError

log = logging.getLogger("ecshop.http")


def _code_for(exc: falcon.HTTPError) -> str:
    title = exc.title or "error"
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "error"


def _write(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps({"error": body}, ensure_ascii=False)


def handle_shop_error(
    req: falcon.Request, resp: falcon.Response, exc: ShopError, params: Any
) -> None:
    """A domain error: its code, message and details, with its status."""
    if exc.status >= 500:
        log.warning("%s %s: %s: %s", req.method, req.path, exc.code, exc.message)
    if exc.retry_after is not None and exc.status in (429, 503):
        resp.set_header("Retry-After", str(exc.retry_after))
    _write(resp, exc.status, exc.to_dict())


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
    log.exception("unhandled error on %s %s", req.method, req.path)
    _write(resp, 500, {"code": "internal_error", "message": "the shop hit an unexpected error"})


def install(app: falcon.App) -> None:
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(ShopError, handle_shop_error)
    app.set_error_serializer(serialize_http_error)
