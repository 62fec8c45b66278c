"""What ``ecshop/gunicorn.conf.py`` plugs into gunicorn: masked logs and a deadline on
request bodies.

A client that trickles its body (a byte a second, never finishing) would hold a worker
thread for as long as it likes: the socket's own timeout counts from one byte to the
next. Here every read of a request's body gets the time that is left until one deadline,
``ECSHOP_BODY_TIMEOUT`` seconds after its headers arrived; past it the app answers
408 ``request_timeout`` and gunicorn closes the connection.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from gunicorn.glogging import Logger

from ecshop.config import load_config
from ecshop.errors import RequestTimeout
from ecshop.logconf import configure_logging
from ecshop.redact import install_filter

log = logging.getLogger("ecshop.http")


class MaskedLogger(Logger):
    """gunicorn's logger, on the shop's logging configuration (:mod:`ecshop.logconf`:
    its format, level and request ids), with passwords masked in the error and access
    logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        config = load_config()
        # NOTE: gunicorn has just put its own handler on its error log; this replaces it.
        configure_logging(config.log_level, config.log_format)
        for logger in (self.error_log, self.access_log):
            install_filter(logger)


class DeadlineSocket:
    """A socket whose reads fail with :class:`RequestTimeout` once ``deadline``
    (``time.monotonic()``) has passed, however slowly the bytes come."""

    def __init__(self, sock: socket.socket, deadline: float, limit: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.limit = limit
        self.expired = False

    def recv(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return self._expire()
        before = self.sock.gettimeout()
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(size)
        except TimeoutError:
            return self._expire()
        finally:
            self.sock.settimeout(before)

    def _expire(self) -> bytes:
        self.expired = True
        raise RequestTimeout(
            f"the request body did not arrive within {self.limit:g} seconds", limit=self.limit
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def bound_body(req: Any, timeout: float) -> None:
    """Put the body of ``req`` (a gunicorn request) under a deadline ``timeout`` seconds
    from now. Call :func:`unbind_body` once the response is sent."""
    unreader: Any = getattr(req, "unreader", None)
    sock = getattr(unreader, "sock", None)
    if isinstance(sock, socket.socket):
        unreader.sock = DeadlineSocket(sock, time.monotonic() + timeout, timeout)


def unbind_body(req: Any) -> None:
    """Give the connection its own socket back (gunicorn drains or reuses it next)."""
    unreader: Any = getattr(req, "unreader", None)
    bounded = getattr(unreader, "sock", None)
    if isinstance(bounded, DeadlineSocket):
        unreader.sock = bounded.sock
        if bounded.expired:
            # NOTE: part of the body is still unread, so where a next request would
            # start is unknown: gunicorn closes a connection whose body failed.
            req.body.failed = True
            log.warning("cut off a request body that did not arrive within %gs", bounded.limit)
