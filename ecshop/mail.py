"""Mail to buyers and the shop, before it is sent: the ``mail_before_send`` filter.

There is no mailer yet; whatever sends mail later builds a message and passes it
through :func:`prepare` first, so plugins can change the recipients, the subject, the
body or the headers, or stop the message (return ``None``), as WordPress's ``wp_mail``
filter lets them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecshop.errors import InternalError, ValidationError
from ecshop.schema import EMAIL, TOKEN, Schema, obj, validate

HOOK = "mail_before_send"
#: A message: ``to`` (addresses), ``subject``, ``body`` (plain text), optional
#: ``headers`` (name -> value) and ``kind`` (what the mail is about, e.g. ``order_paid``).
#: Keys a plugin adds pass on to the mailer.
MESSAGE: Schema = obj(
    {
        "to": {"type": "array", "minItems": 1, "maxItems": 50, "items": EMAIL,
               "description": "a list of 1 to 50 email addresses"},
        "subject": {"type": "string", "minLength": 1, "maxLength": 998,
                    "description": "a non-empty subject"},
        "body": {"type": "string", "maxLength": 1_000_000, "description": "the text"},
    },
    {
        "headers": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "header names and their values"},
        "kind": TOKEN,
    },
    closed=False,
)  # fmt: skip


def prepare(hooks: Any, message: Mapping[str, Any]) -> dict[str, Any] | None:
    """``message`` after the ``mail_before_send`` filter; None when a plugin stopped it.

    Raises:
        ValidationError: ``message`` itself is not a message (the caller's mistake).
        InternalError: a filter returned something that is not a message.
    """
    start = {"headers": {}, **message}
    validate(start, MESSAGE, "message")
    value = hooks.apply_filters(HOOK, start)
    if value is None:
        return None
    try:
        validate(value, MESSAGE, "message")
    except ValidationError as exc:
        raise InternalError(f"{HOOK} returned a bad message: {exc.message}", hook=HOOK) from exc
    return dict(value)
