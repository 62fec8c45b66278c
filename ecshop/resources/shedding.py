"""Load shedding before the app: a storefront request that queued too long is answered
from a stored copy of its 503, in a few microseconds, so that a worker flooded past
what it can serve spends its time on the requests it can still answer in time.

:class:`ecshop.resources.middleware.LoadShedder` decides the same thing inside Falcon,
after the request object, the middleware and the error page are built; a shed answer
cost there about as much as a product page, so under a spike the workers spent nearly
all their time refusing. Here the WSGI call looks at ``X-Request-Start`` first and, only
past ``ECSHOP_SHED_QUEUE_MS``, matches the path with the app's own router: a request
whose route is certainly in the storefront lane gets the stored answer. Anything else
(another lane, a path the router does not match as it is spelled) goes through the app
as before, where the middleware decides on the matched route; a payment notification
is never shed, however its path is spelled.

The stored answer is the app's own: the first shed request of each kind (an HTML page in
one language, or JSON) goes through the app, and its status, headers and body are kept,
less its cookies and request id. Each answer carries a request id of its own, and every
shed request counts in ``ecshop_shed_total``; shed requests are logged as one line per
``ECSHOP_LOG_REPEAT_EVERY`` seconds with their count, not one line each.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ecshop import metrics
from ecshop.logconf import Repeats
from ecshop.render import negotiate
from ecshop.resources.context import SANE_ID
from ecshop.resources.middleware import STOREFRONT, lane_of, queued_since

log = logging.getLogger("ecshop.http")
#: headers of the stored answer that belong to the request that made it
_PER_REQUEST = frozenset({"set-cookie", "x-request-id"})
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Answer = tuple[str, list[tuple[str, str]], bytes]


class EarlyShed:
    """The WSGI-level shedder of ``app`` (a :class:`falcon.App`); ``through`` is the
    app's own WSGI call, which the stored answers are made with."""

    def __init__(self, app: Any, through: WSGIApp, limit_ms: int) -> None:
        self.app = app
        self.through = through
        self.limit = limit_ms / 1000.0
        self.answers: dict[tuple[bool, str], Answer] = {}
        self.lock = threading.Lock()
        self.repeats = Repeats(log)

    def __call__(
        self, env: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes] | None:
        """The stored 503 for a storefront request that queued too long, else None."""
        since = queued_since(env.get("HTTP_X_REQUEST_START"))
        if since is None or not self.limit:
            return None
        waited = time.time() - since
        if waited <= self.limit or not self._storefront(env.get("PATH_INFO") or "/"):
            return None
        kind = self._kind(env)
        answer = self.answers.get(kind)
        if answer is None:
            return self._store(kind, env, start_response)
        status, headers, body = answer
        given = env.get("HTTP_X_REQUEST_ID") or ""
        rid = given if SANE_ID.fullmatch(given) else secrets.token_hex(8)
        start_response(status, [*headers, ("X-Request-Id", rid)])
        metrics.SHED.inc()
        self.repeats.failed("shed", "shed a storefront request that queued %d ms (past %d ms)",
                            int(waited * 1000), int(self.limit * 1000))  # fmt: skip
        return [body]

    def _storefront(self, path: str) -> bool:
        """Does ``path``, as it is spelled, match a route of the storefront lane?"""
        if len(path) > 1:
            path = path.rstrip("/") or "/"  # as the app strips a trailing slash
        found = self.app._router.find(path)
        return found is not None and lane_of(found[3]) == STOREFRONT

    @staticmethod
    def _kind(env: dict[str, Any]) -> tuple[bool, str]:
        """HTML (a browser on a page) or JSON, and the page's language."""
        path = env.get("PATH_INFO") or "/"
        html = not path.startswith("/api/") and "text/html" in (env.get("HTTP_ACCEPT") or "")
        cookie = env.get("HTTP_COOKIE") or ""
        chosen = None
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "lang":
                chosen = value
        return html, negotiate(env.get("HTTP_ACCEPT_LANGUAGE"), chosen) if html else ""

    def _store(self, kind: tuple[bool, str], env: dict[str, Any],
               start_response: Callable[..., Any]) -> Iterable[bytes] | None:  # fmt: skip
        """Answer this request through the app; keep its answer if it is the shed 503."""
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = b"".join(self.through(env, capture))
        if str(seen.get("status", "")).startswith("503"):
            kept = [(k, v) for k, v in seen["headers"] if k.lower() not in _PER_REQUEST]
            with self.lock:
                self.answers.setdefault(kind, (seen["status"], kept, body))
        return [body]
