"""Signing rules of the sandbox gateway protocol, shared by the gateway and its client.

Pay links carry ``sig``: HMAC-SHA256 (hex) of the canonical query, which is every field
but ``sig``, sorted by name and URL-encoded. Notifications carry
``Sandbox-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from urllib.parse import quote_plus

from ecshop.errors import SignatureError

PAY_FIELDS = ("merchant", "order", "amount", "currency", "notify_url", "return_url")
SIGNATURE_HEADER = "Sandbox-Signature"
DEFAULT_TOLERANCE = 300
_PLAIN = re.compile(r"[A-Za-z0-9_.\-~]*")
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
# Every ASCII character to its quote_plus form: itself, "+" for a space, or %XX.
_ASCII_QUOTED = str.maketrans(
    {chr(c): chr(c) if chr(c) in _SAFE else "+" if c == 32 else f"%{c:02X}" for c in range(128)}
)


def quote_value(value: str) -> str:
    """``urllib.parse.quote_plus(value)``, faster for the plain ASCII values links carry."""
    # PERF: most values (order numbers, amounts, currencies) need no escaping at all,
    # and URLs are ASCII: one str.translate instead of quote_plus's per-byte mapping.
    if _PLAIN.fullmatch(value):
        return value
    if value.isascii():
        return value.translate(_ASCII_QUOTED)
    return quote_plus(value)


def canonical_query(fields: Mapping[str, str]) -> str:
    """The signed form of a pay link's fields: sorted, URL-encoded, ``sig`` left out.

    The same text as ``urlencode(sorted(...))``, which is also a valid query string:
    a pay link is this followed by ``&sig=``.
    """
    return "&".join(
        f"{quote_value(k)}={quote_value(str(v))}" for k, v in sorted(fields.items()) if k != "sig"
    )


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_canonical(query: str, secret: str) -> str:
    """The ``sig`` value for a canonical query built by :func:`canonical_query`."""
    return _hmac(secret, query.encode("utf-8"))


def sign_query(fields: Mapping[str, str], secret: str) -> str:
    """The ``sig`` value for a pay link with these fields."""
    return sign_canonical(canonical_query(fields), secret)


def verify_query(fields: Mapping[str, str], secret: str) -> bool:
    """True when ``fields['sig']`` signs exactly the other fields (constant-time)."""
    sig = str(fields.get("sig", ""))
    return bool(sig) and hmac.compare_digest(sig, sign_query(fields, secret))


def sign_body(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Sandbox-Signature`` header value for a notification body."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_hmac(secret, str(t).encode('ascii') + b'.' + body)}"


def verify_body(
    header: str | None,
    body: bytes,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a notification's signature and age; return its timestamp.

    Raises:
        SignatureError: the header is missing or malformed, the HMAC does not match,
            or the timestamp is further than ``tolerance`` seconds from now.
    """
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header") from exc
    expected = _hmac(secret, str(timestamp).encode("ascii") + b"." + body)
    if not any(hmac.compare_digest(expected, v) for v in parts.get("v1", [])):
        raise SignatureError("notification signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("notification timestamp is outside the tolerance", tolerance=tolerance)
    return timestamp
