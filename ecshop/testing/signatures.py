"""Where a provider puts its signature, for the conformance kit's ``unsign`` and
``tamper`` hooks.

Each helper returns the two hooks for one place, to splat into a harness::

    GatewayHarness(gateway=..., **signature_in_form("sig"))      # a body field
    GatewayHarness(gateway=..., **signature_in_header("X-Sig"))  # a header
    GatewayHarness(gateway=..., **signature_in_query("sig"))     # the notify URL's query

``unsign(request)`` is the request without the signature; ``tamper(request)`` the
request with its last character changed. Every other byte stays as the provider sent
it, so a refusal can only be about the signature.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecshop.payments.callback import NotificationRequest

Rewrite = Callable[[NotificationRequest], NotificationRequest]

#: Headers every HTTP client sends: never a signature.
STANDARD_HEADERS = frozenset({
    "host", "content-length", "content-type", "user-agent", "accept-encoding", "connection",
    "accept", "transfer-encoding",
})  # fmt: skip


def unsigned_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Only the standard headers: what is left once any signature header is gone."""
    return {k: v for k, v in headers.items() if k.lower() in STANDARD_HEADERS}


def signature_headers(headers: Mapping[str, str]) -> list[str]:
    """The names of the non-standard headers (one of them may carry a signature)."""
    return [k for k, v in headers.items() if v and k.lower() not in STANDARD_HEADERS]


def altered(value: str) -> str:
    """``value`` with its last character changed (a signature that no longer matches)."""
    if not value:
        return "0"
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def _missing(where: str, name: str, request: NotificationRequest) -> AssertionError:
    return AssertionError(
        f"expected a signature in {where} {name!r} of the provider's notification, got "
        f"none (headers {sorted(request.headers)}, query {[k for k, _ in request.query_pairs]}, "
        f"body {request.body[:200]!r})"
    )


def signature_in_header(name: str) -> dict[str, Any]:
    """The hooks for a signature in the header ``name``."""
    key = name.lower()

    def unsign(request: NotificationRequest) -> NotificationRequest:
        if key not in request.headers:
            raise _missing("header", name, request)
        return request.replace(headers={k: v for k, v in request.headers.items() if k != key})

    def tamper(request: NotificationRequest) -> NotificationRequest:
        if key not in request.headers:
            raise _missing("header", name, request)
        return request.replace(headers={**request.headers, key: altered(request.headers[key])})

    return {"unsign": unsign, "tamper": tamper}


def signature_in_query(name: str) -> dict[str, Any]:
    """The hooks for a signature in the query parameter ``name`` of the notify URL."""

    def unsign(request: NotificationRequest) -> NotificationRequest:
        if name not in request.query:
            raise _missing("query parameter", name, request)
        return request.replace(query_pairs=tuple(p for p in request.query_pairs if p[0] != name))

    def tamper(request: NotificationRequest) -> NotificationRequest:
        if name not in request.query:
            raise _missing("query parameter", name, request)
        pairs = tuple((k, altered(v) if k == name else v) for k, v in request.query_pairs)
        return request.replace(query_pairs=pairs)

    return {"unsign": unsign, "tamper": tamper}


def signature_in_form(name: str) -> dict[str, Any]:
    """The hooks for a signature in the field ``name`` of a form-encoded body."""
    prefix = name.encode() + b"="

    def parts(request: NotificationRequest) -> list[bytes]:
        pieces = request.body.split(b"&")
        if not any(p.startswith(prefix) for p in pieces):
            raise _missing("form field", name, request)
        return pieces

    def unsign(request: NotificationRequest) -> NotificationRequest:
        kept = [p for p in parts(request) if not p.startswith(prefix)]
        return request.replace(body=b"&".join(kept))

    def tamper(request: NotificationRequest) -> NotificationRequest:
        pieces = [
            prefix + altered(p[len(prefix) :].decode("latin-1")).encode("latin-1")
            if p.startswith(prefix) else p
            for p in parts(request)
        ]  # fmt: skip
        return request.replace(body=b"&".join(pieces))

    return {"unsign": unsign, "tamper": tamper}
