"""Keep passwords and tokens out of what the shop prints and logs.

One masking function serves ``ecshop info``, every error message that quotes a URL and
the logging filter on the shop's log handlers: the password of a URL's user info
(``mysql://u:***@host/db``, also when the password itself holds ``@``) and the value of
secret query parameters (``?password=***``, ``&token=***``).
"""

from __future__ import annotations

import logging
import re

MASK = "***"
SECRET_PARAMS = ("password", "passwd", "pwd", "secret", "token", "access_token",
                 "sentinel_password")  # fmt: skip

# scheme:// and the rest of the word: the user info is found in it by _user_info.
_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s]*)")
_PARAM = re.compile(
    r"(?P<key>[?&;](?:" + "|".join(SECRET_PARAMS) + r")=)(?P<value>[^&;#\s'\"<>]*)",
    re.IGNORECASE,
)


def _user_info(rest: str) -> str:
    """The ``user:password`` part of what follows ``scheme://``, or ``""``."""
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        # NOTE: the user info ends at the *last* @ of the authority, so a password
        # that holds an @ (mysql://u:p@ss@host) is masked whole, as URL parsers read it.
        return authority.rpartition("@")[0]
    # A password with an unescaped / (mysql://u:pa/ss@host/db) still counts, so that
    # a URL the shop cannot even parse is not printed with its password.
    candidate = rest.split("@", 1)[0] if "@" in rest else ""
    return candidate if ":" in candidate and "?" not in candidate else ""


def _mask_url(match: re.Match[str]) -> str:
    rest = match["rest"]
    user_info = _user_info(rest)
    user, colon, password = user_info.partition(":")
    if not colon or not password:
        return match.group(0)
    return f"{match['scheme']}{user}:{MASK}{rest[len(user_info) :]}"


def _mask_param(match: re.Match[str]) -> str:
    return match["key"] + (MASK if match["value"] else "")


def mask(text: str) -> str:
    """``text`` with every URL password and secret query parameter replaced by ``***``.

    Works on a bare URL as on a message that quotes one or more URLs.

    Example::

        >>> mask("cannot reach redis://:s3cr@t@cache:6379/0")
        'cannot reach redis://:***@cache:6379/0'
    """
    if "://" in text:
        text = _URL.sub(_mask_url, text)
    if "=" in text:
        text = _PARAM.sub(_mask_param, text)
    return text


class MaskingFilter(logging.Filter):
    """A handler filter that masks passwords in the message, its arguments and its
    traceback before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


def install_filter(logger: logging.Logger) -> None:
    """Put a :class:`MaskingFilter` on every handler of ``logger`` (once)."""
    for handler in logger.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
