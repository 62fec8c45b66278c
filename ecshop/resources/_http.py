"""Small HTTP helpers shared by the resources: bounded bodies (chunked ones too), the
JSON media type, strict JSON text, JSON answers, bearer tokens."""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

import falcon

from ecshop.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

DEFAULT_MAX_BODY = 1024 * 1024
MAX_DEPTH = 32
# Past the limit, up to this much more of a chunked body is read and dropped, so the
# client still reads the 413 instead of a connection reset.
DRAIN = 256 * 1024

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_PAIR = re.compile(rb"[\[{][\]}]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def bearer_is(req: falcon.Request, token: bytes) -> bool:
    """True when the request's ``Authorization: Bearer`` is ``token`` (never for none)."""
    scheme, _, given = (req.get_header("Authorization") or "").partition(" ")
    # NOTE: compare_digest on bytes keeps the comparison constant-time whatever
    # the token holds (str compare_digest refuses non-ASCII).
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode("utf-8"), token)
    )


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is over the limit of {limit} bytes", limit=limit)


def read_body(req: falcon.Request, limit: int) -> bytes:
    """The raw request body, at most ``limit`` bytes.

    A body with a Content-Length is read through Falcon's bounded stream; one without
    (``Transfer-Encoding: chunked``) straight from the server's input, which gunicorn
    ends at the last chunk (``wsgi.input_terminated``). A server that cannot say where
    the body ends gives an empty one rather than a read that never returns.

    Raises:
        PayloadTooLarge: the body is longer than ``limit``.
    """
    if req.content_length is not None:
        if req.content_length > limit:
            raise _too_large(limit)
        raw = req.bounded_stream.read(limit + 1)
    elif req.env.get("wsgi.input_terminated"):
        raw = req.stream.read(limit + 1)
        if len(raw) > limit:
            req.stream.read(DRAIN)
    else:
        raw = b""
    if len(raw) > limit:
        raise _too_large(limit)
    return bytes(raw)


def has_body(req: falcon.Request) -> bool:
    """Whether the request says it carries a body (a length above 0, or chunked)."""
    if req.content_length is not None:
        return req.content_length > 0
    return "chunked" in (req.get_header("Transfer-Encoding") or "").lower()


def is_json(content_type: str | None) -> bool:
    """``application/json``, with at most a ``charset=utf-8`` parameter."""
    if not content_type:
        return False
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media != "application/json":
        return False
    return all(p.replace('"', "") in ("charset=utf-8", "") for p in params)


def require_json(req: falcon.Request) -> None:
    """415 unless the request's Content-Type is JSON (a cross-site form cannot send it).

    Raises:
        UnsupportedMediaType: any other or no Content-Type.
    """
    if not is_json(req.content_type):
        raise UnsupportedMediaType(
            f"this endpoint takes application/json, not {req.content_type or 'no Content-Type'}",
            content_type=req.content_type,
        )


def nesting_depth_over(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays and objects deeper than ``limit``.

    PERF: strings are cut out and every other byte but brackets dropped by the regex and
    bytes engines; each pass then removes the innermost pairs, so at most ``limit + 1``
    passes over the brackets decide it without parsing (Python's parser would recurse, and fail with
    a RecursionError, on 100,000 ``[``).
    """
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    for passes in range(limit + 1):
        if not brackets:
            return False
        shorter = _PAIR.sub(b"", brackets)
        if len(shorter) == len(brackets):
            # Unbalanced (not JSON): what is left is closers then openers, each opener
            # around the ``passes`` levels already removed.
            openers = len(brackets) - brackets.count(b"]") - brackets.count(b"}")
            return openers + passes > limit
        brackets = shorter
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """Strict JSON text (UTF-8, no NaN or Infinity, nested at most ``MAX_DEPTH`` deep).

    Raises:
        BadRequest: empty, not UTF-8, not JSON, or nested too deeply.
    """
    if not raw.strip():
        raise BadRequest("request body is empty; expected a JSON object")
    if nesting_depth_over(raw):
        raise BadRequest(f"request body nests lists or objects deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {str(exc)[:200]}") from exc


def send_json(resp: falcon.Response, body: Any, status: str | int = falcon.HTTP_200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def audit_request(store: Any, req: falcon.Request, action: str, target: str = "",
                  before: Any = None, after: Any = None) -> None:  # fmt: skip
    """One audit-log line for an admin change made by this request (the token's, or the
    admin page's account: ``req.context.actor``)."""
    from ecshop import audit

    actor = getattr(req.context, "actor", None)
    audit.record(store, actor if isinstance(actor, audit.Actor) else audit.TOKEN, action,
                 target, before, after)  # fmt: skip
