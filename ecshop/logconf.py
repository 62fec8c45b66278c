"""The shop's logging: one ``logging.config.dictConfig`` for the ``ecshop`` loggers
(plugins log under ``ecshop.plugins.<name>``, the access log is ``ecshop.access``) and
gunicorn's error and access logs.

Every line carries the time (UTC), the level, the logger, the process id and the id
of the request it was logged for (``-`` outside a request): the request middleware
binds it to a context variable and a logging filter puts it on each record. Lines are
plain text, or one JSON object each (``ECSHOP_LOG_FORMAT=json``); the level is
``ECSHOP_LOG_LEVEL`` (INFO by default). Every handler masks passwords
(:class:`ecshop.redact.MaskingFilter`).

A failure that repeats while a part is down (Redis, the database) goes through
:class:`Repeats`: the first is logged whole, then one line per
``ECSHOP_LOG_REPEAT_EVERY`` seconds counts the rest, instead of a line per request.
"""

from __future__ import annotations

import json
import logging
import logging.config
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s [%(request_id)s] %(message)s"
NO_REQUEST = "-"
#: seconds between two summary lines of a repeating failure (ECSHOP_LOG_REPEAT_EVERY)
REPEAT_EVERY = 60.0

_request_id: ContextVar[str] = ContextVar("ecshop_request_id", default=NO_REQUEST)


def bind_request_id(rid: str) -> Token[str]:
    """Log what follows in this context under request ``rid``; undo with :func:`unbind`."""
    return _request_id.set(rid)


def unbind(token: Token[str]) -> None:
    _request_id.reset(token)


def current_request_id() -> str:
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` with ISO 8601 UTC times."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class JsonFormatter(TextFormatter):
    """One JSON object per line: time, level, logger, pid, request_id, message[, exc];
    an access log line adds ``http`` (method, path, route, status, duration_ms,
    client, user_agent)."""

    def format(self, record: logging.LogRecord) -> str:
        item: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "request_id": getattr(record, "request_id", NO_REQUEST),
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            item["exc"] = record.exc_text
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            item["http"] = http
        return json.dumps(item, ensure_ascii=False)


def logging_config(level: str = "INFO", fmt: str = "text") -> dict[str, Any]:
    """The shop's ``dictConfig``: one stderr handler for ``ecshop`` and gunicorn's error
    log, a request id and password masking on it; other libraries log from WARNING."""
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": fmt,
        "filters": ["request_id", "mask"],
    }
    return {
        "version": 1,
        # NOTE: gunicorn's and the libraries' loggers exist already: keep them working.
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": RequestIdFilter},
            "mask": {"()": "ecshop.redact.MaskingFilter"},
        },
        "formatters": {"text": {"()": TextFormatter}, "json": {"()": JsonFormatter}},
        "handlers": {"stderr": handler},
        "loggers": {
            "ecshop": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            # NOTE: the shop writes its own access log (ecshop.access); gunicorn's, off
            # unless --access-logfile, would use this same handler and format.
            "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


def configure_logging(
    level: str = "INFO", fmt: str = "text", *, repeat_every: float = 60.0
) -> logging.Logger:
    """Apply :func:`logging_config` and the period of :class:`Repeats`' summary lines;
    return the ``ecshop`` logger."""
    global REPEAT_EVERY
    REPEAT_EVERY = repeat_every
    logging.config.dictConfig(logging_config(level, fmt))
    return logging.getLogger("ecshop")


def _later(delay: float, call: Callable[[], None]) -> None:
    timer = threading.Timer(delay, call)
    timer.daemon = True
    timer.start()


class Repeats:
    """One log line per outage, not one per failure.

    The first failure of a kind (``key``) is logged whole, with its traceback when
    one is given. While more follow, they are only counted, and one summary line per
    period (``every`` seconds, :data:`REPEAT_EVERY` by default) says how many came and
    quotes the last one. A period with none ends the outage: the next failure is
    logged whole again. Counting takes a lock only on the failure path; nothing of
    this runs while things work.

    Args:
        logger: where the lines go.
        every: seconds between summary lines (None: :data:`REPEAT_EVERY` when the
            first failure comes).
        later: ``later(delay, call)`` runs ``call`` after ``delay`` seconds (a daemon
            timer; tests pass their own).
    """

    def __init__(self, logger: logging.Logger, every: float | None = None,
                 later: Callable[[float, Callable[[], None]], None] = _later) -> None:  # fmt: skip
        self.logger = logger
        self.every = every
        self.later = later
        self._lock = threading.Lock()
        #: key -> [count since the last line, the last failure's (level, msg, args)]
        self._open: dict[str, list[Any]] = {}

    def failed(self, key: str, msg: str, *args: Any, level: int = logging.WARNING,
               exc_info: Any = None) -> None:  # fmt: skip
        """A failure of kind ``key``: logged whole if it starts an outage, else counted."""
        with self._lock:
            state = self._open.get(key)
            if state is not None:
                state[0] += 1
                state[1] = (level, msg, args)
                return
            self._open[key] = [0, None]
        self.logger.log(level, msg, *args, exc_info=exc_info)
        self._schedule(key)

    def _schedule(self, key: str) -> None:
        every = REPEAT_EVERY if self.every is None else self.every
        self.later(every, lambda: self._summarize(key, every))

    def _summarize(self, key: str, every: float) -> None:
        with self._lock:
            state = self._open.get(key)
            if state is None:
                return
            count, last = state
            if not count:
                del self._open[key]  # a quiet period: this outage is over
                return
            state[0], state[1] = 0, None
        level, msg, args = last
        self.logger.log(level, "%d more like this in the last %gs; the last: " + msg,
                        count, every, *args)  # fmt: skip
        self._schedule(key)
