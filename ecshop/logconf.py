"""The shop's logging: one ``logging.config.dictConfig`` for the ``ecshop`` loggers
(plugins log under ``ecshop.plugins.<name>``, the access log is ``ecshop.access``) and
gunicorn's error and access logs.

Every line carries the time (UTC), the level, the logger, the process id and the id
of the request it was logged for (``-`` outside a request): the request middleware
binds it to a context variable and a logging filter puts it on each record. Lines are
plain text, or one JSON object each (``ECSHOP_LOG_FORMAT=json``); the level is
``ECSHOP_LOG_LEVEL`` (INFO by default). Every handler masks passwords
(:class:`ecshop.redact.MaskingFilter`).
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from contextvars import ContextVar, Token
from typing import Any

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s [%(request_id)s] %(message)s"
NO_REQUEST = "-"

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


def configure_logging(level: str = "INFO", fmt: str = "text") -> logging.Logger:
    """Apply :func:`logging_config`; return the ``ecshop`` logger."""
    logging.config.dictConfig(logging_config(level, fmt))
    return logging.getLogger("ecshop")
