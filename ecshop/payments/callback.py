"""A provider's notification as its gateway sees it, and the reply the provider gets.

The shop hands a gateway the whole notification (:class:`NotificationRequest`: raw
body, headers, query string, content type) and, once it has decided what the
notification is worth (:class:`NotificationOutcome`), asks the gateway for the reply
its provider expects (:class:`NotificationReply`): JSON by default, or whatever the
provider's documentation says (a literal ``OK`` as ``text/plain``, say).

What the outcomes mean to a provider:

- ``received`` and ``duplicate``: the event is journaled (now, or by an earlier
  delivery). A success (2xx): the provider must stop retrying.
- ``refused``: the notification is not genuine or does not fit its order (signature,
  timestamp, amount, an unknown order). A client error (4xx): the provider's retry or
  alert fires, and nothing was recorded.
- ``failed``: the shop could not record it (database busy, a bug). A server error
  (5xx): the provider must retry; the retry carries the same event id and is taken
  once. (When the event was journaled but applying it failed, the retry is a
  ``duplicate`` and the reconciler applies the journaled event.)

The shop never sends a 2xx for a notification it did not journal: a gateway reply
that says success to a ``refused`` or ``failed`` outcome is replaced by the default one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ecshop import metrics
from ecshop.errors import ShopError, SignatureError

log = logging.getLogger("ecshop.payments")

RECEIVED, DUPLICATE, REFUSED, FAILED = "received", "duplicate", "refused", "failed"
FORM = "application/x-www-form-urlencoded"
GENERIC_FAILURE = "the shop could not record this notification; retry later"


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


@dataclass(frozen=True)
class NotificationRequest:
    """One notification as it reached the shop.

    Attributes:
        headers: the HTTP headers, names in lower case.
        body: the raw body, exactly as sent (verify signatures over these bytes).
        query: the query string's parameters (a name given twice keeps the last value;
            ``query_pairs`` has them all).
        query_pairs: every query parameter in order, repeats included.
        method: the HTTP method.
        request_id: the shop's id of this request (``X-Request-Id``), for logs.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    query_pairs: tuple[tuple[str, str], ...] = ()
    method: str = "POST"
    request_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _lower(self.headers))
        if self.query_pairs and not self.query:
            object.__setattr__(self, "query", dict(self.query_pairs))
        elif self.query and not self.query_pairs:
            object.__setattr__(self, "query_pairs", tuple(self.query.items()))

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header by name, in any case."""
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        """The media type of the body, lower case, without parameters (``""`` if none)."""
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def form(self, encoding: str = "utf-8") -> dict[str, str]:
        """The body as ``application/x-www-form-urlencoded`` fields.

        Args:
            encoding: how the provider encodes text (``"shift_jis"`` for some).

        Raises:
            SignatureError: the body is not such a form: another content type, not
                in ``encoding``, a malformed pair, or a field given twice (ambiguous: which one
                was signed?).
        """
        if self.content_type != FORM:
            raise SignatureError(
                f"expected a {FORM} body, got {self.content_type or 'no Content-Type'}"
            )
        try:
            pairs = parse_qsl(self.body.decode(encoding), keep_blank_values=True,
                              strict_parsing=bool(self.body), encoding=encoding, errors="strict")  # fmt: skip
        except (UnicodeDecodeError, ValueError, LookupError) as exc:
            raise SignatureError(f"malformed form body: {str(exc)[:200]}") from exc
        fields: dict[str, str] = {}
        for name, value in pairs:
            if name in fields:
                raise SignatureError(f"form field {name!r} is given twice")
            fields[name] = value
        return fields

    def replace(self, **changes: Any) -> NotificationRequest:
        """A copy with some attributes changed (``query`` and ``query_pairs`` stay in step)."""
        if "query" in changes and "query_pairs" not in changes:
            changes["query_pairs"] = tuple(dict(changes.pop("query")).items())
        pairs = changes.pop("query_pairs", self.query_pairs)
        return dataclasses.replace(self, query={}, query_pairs=(), **changes).with_query(pairs)

    def with_query(self, pairs: tuple[tuple[str, str], ...]) -> NotificationRequest:
        """A copy whose query string is ``pairs``."""
        copy = dataclasses.replace(self, query={}, query_pairs=())
        object.__setattr__(copy, "query_pairs", tuple(pairs))
        object.__setattr__(copy, "query", dict(pairs))
        return copy


@dataclass(frozen=True)
class NotificationOutcome:
    """What the shop made of one notification (see the module's docstring).

    Attributes:
        kind: ``received``, ``duplicate``, ``refused`` or ``failed``.
        status: the HTTP status the shop's default reply uses.
        event_id: the event's id, once the notification was verified.
        result: what applying the event did (``paid``, ``declined``, ``duplicate``…),
            or the error code of a refused or failed notification.
        message: why it was refused (safe to show the provider); a generic text for
            a failure, whose details go to the shop's log only.
        details: the error's data (``field``, ``gateway``…) for the default reply.
        retry_after: seconds the provider should wait before retrying, if known.
    """

    kind: str
    status: int = 200
    event_id: str | None = None
    result: str | None = None
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    retry_after: int | None = None

    @property
    def journaled(self) -> bool:
        """The event is in the journal: the provider must stop retrying."""
        return self.kind in (RECEIVED, DUPLICATE)

    @classmethod
    def received(cls, event_id: str, result: str) -> NotificationOutcome:
        kind = DUPLICATE if result == "duplicate" else RECEIVED
        return cls(kind, 200, event_id, result)

    @classmethod
    def from_error(cls, exc: ShopError, *, event_id: str | None = None,
                   request_id: str = "") -> NotificationOutcome:  # fmt: skip
        """``refused`` for a client error, ``failed`` for anything else."""
        if 400 <= exc.status < 500:
            return cls(REFUSED, exc.status, event_id, exc.code, exc.message, dict(exc.details))
        status = exc.status if exc.status > 500 else 500
        details = {"request_id": request_id} if request_id else {}
        message = exc.message if status > 500 else GENERIC_FAILURE
        return cls(FAILED, status, event_id, exc.code if status > 500 else "internal_error",
                   message, details, exc.retry_after)  # fmt: skip

    @classmethod
    def failure(cls, *, event_id: str | None = None, request_id: str = "") -> NotificationOutcome:
        """An unexpected error: 500 with a generic message."""
        details = {"request_id": request_id} if request_id else {}
        return cls(FAILED, 500, event_id, "internal_error", GENERIC_FAILURE, details)


@dataclass(frozen=True)
class NotificationReply:
    """The HTTP answer a provider gets for one notification."""

    status: int
    content_type: str
    body: bytes | str = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def data(self) -> bytes:
        """The body as bytes (a ``str`` body is UTF-8)."""
        return self.body.encode("utf-8") if isinstance(self.body, str) else bytes(self.body)

    @classmethod
    def text(cls, body: str, status: int = 200, **headers: str) -> NotificationReply:
        """A ``text/plain; charset=utf-8`` reply, such as the literal ``OK``."""
        return cls(status, "text/plain; charset=utf-8", body, headers)

    @classmethod
    def json(cls, data: Any, status: int = 200, **headers: str) -> NotificationReply:
        """An ``application/json`` reply."""
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return cls(status, "application/json", text, headers)


def json_reply(outcome: NotificationOutcome) -> NotificationReply:
    """The shop's default reply: ``{"received": true, "event", "outcome"}`` once
    journaled, otherwise the shop's usual ``{"error": {"code", "message", ...}}``."""
    if outcome.journaled:
        return NotificationReply.json(
            {"received": True, "event": str(outcome.event_id), "outcome": outcome.result}
        )
    error = {"code": outcome.result or "error", "message": outcome.message, **outcome.details}
    headers = {}
    if outcome.retry_after is not None and outcome.status in (429, 503):
        headers["Retry-After"] = str(outcome.retry_after)
    return NotificationReply.json({"error": error}, outcome.status, **headers)


#: the metric's outcome for each kind of notification outcome
_COUNTED_AS = {RECEIVED: "applied", DUPLICATE: "duplicate", REFUSED: "rejected", FAILED: "failed"}


def count(name: str, outcome: NotificationOutcome) -> None:
    """Count one notification to gateway ``name`` (``ecshop_payment_notifications_total``):
    a rejected or failed one by its error code."""
    counted = _COUNTED_AS[outcome.kind]
    reason = "" if outcome.journaled else str(outcome.result or "error")
    metrics.NOTIFICATIONS.labels(gateway=name, outcome=counted, reason=reason).inc()


def receive(payments: Any, name: str, gateway: Any,
            request: NotificationRequest) -> NotificationOutcome:  # fmt: skip
    """Verify, journal and apply one notification, and count it; never raises.

    ``payments`` is the shop's :class:`ecshop.payments.notifications.PaymentService`;
    the journal row is committed before this returns ``received``.
    """
    outcome = _receive(payments, name, gateway, request)
    count(name, outcome)
    return outcome


def _receive(payments: Any, name: str, gateway: Any,
             request: NotificationRequest) -> NotificationOutcome:  # fmt: skip
    event_id = None
    try:
        event = gateway.parse_request(request)
        event_id = str(event.id)
        return NotificationOutcome.received(event_id, payments.receive(name, event))
    except ShopError as exc:
        outcome = NotificationOutcome.from_error(exc, event_id=event_id,
                                                 request_id=request.request_id)  # fmt: skip
        if outcome.kind == REFUSED:
            log.info("notification to %s refused (%s): %s", name, exc.code, exc.message)
        else:
            log.warning("request %s: notification to %s failed: %s: %s", request.request_id,
                        name, exc.code, exc.message)  # fmt: skip
        return outcome
    except Exception:
        log.exception("request %s: notification to %s failed", request.request_id, name)
        return NotificationOutcome.failure(event_id=event_id, request_id=request.request_id)


def reply(name: str, gateway: Any, outcome: NotificationOutcome) -> NotificationReply:
    """The gateway's reply to ``outcome``, or the default one where the gateway's
    cannot be sent: it raised, is not a :class:`NotificationReply`, or says success
    for a notification that was not journaled."""
    try:
        answer = gateway.notification_reply(outcome)
    except Exception:
        log.exception("gateway %s: notification_reply failed; the default reply is sent", name)
        return json_reply(outcome)
    if not isinstance(answer, NotificationReply) or not 100 <= int(answer.status) <= 599:
        log.error("gateway %s: notification_reply gave %r, not a NotificationReply; "
                  "the default reply is sent", name, answer)  # fmt: skip
        return json_reply(outcome)
    if 200 <= answer.status < 300 and not outcome.journaled:
        log.error("gateway %s: notification_reply answers %s to a %s notification, which "
                  "would stop the provider's retries; the default reply (%s) is sent",
                  name, answer.status, outcome.kind, outcome.status)  # fmt: skip
        return json_reply(outcome)
    return answer
