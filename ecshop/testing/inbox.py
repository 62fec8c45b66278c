"""A real HTTP endpoint that stands in for the shop's notify URL in the conformance kit.

It answers every notification as the shop would, with the gateway's own reply
(``Gateway.notification_reply``): ``received`` the first time an event id is seen,
``duplicate`` after, ``refused`` when the gateway refuses it, and ``failed`` for the
next ``fail_next`` deliveries (so the provider retries).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ecshop.errors import ShopError
from ecshop.payments.callback import (
    NotificationOutcome,
    NotificationReply,
    NotificationRequest,
    json_reply,
)


@dataclass
class Delivery:
    """One notification as it reached the receiver, and what the receiver answered."""

    request: NotificationRequest
    answered: int
    reply: bytes = b""
    kind: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.request.headers)

    @property
    def body(self) -> bytes:
        return self.request.body


class NotificationInbox:
    """Records every notification delivered to it and answers with the gateway's reply."""

    def __init__(self, gateway: Any = None) -> None:
        self.gateway = gateway
        self.deliveries: list[Delivery] = []
        self.fail_next = 0
        self.seen: set[str] = set()
        self._changed = threading.Condition()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = NotificationRequest(
                    headers=dict(self.headers.items()), body=self.rfile.read(length),
                    query_pairs=tuple(parse_qsl(urlsplit(self.path).query, keep_blank_values=True)),
                )  # fmt: skip
                answer, kind = inbox.answer(request)
                with inbox._changed:
                    inbox.deliveries.append(Delivery(request, answer.status, answer.data, kind))
                    inbox._changed.notify_all()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.data)))
                self.end_headers()
                self.wfile.write(answer.data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def outcome(self, request: NotificationRequest) -> NotificationOutcome:
        """What the shop would make of this notification (without a database)."""
        with self._changed:
            if self.fail_next > 0:
                self.fail_next -= 1
                return NotificationOutcome.failure()
        if self.gateway is None:
            return NotificationOutcome.received("unchecked", "received")
        try:
            event_id = str(self.gateway.parse_request(request).id)
        except ShopError as exc:
            return NotificationOutcome.from_error(exc)
        except Exception:
            return NotificationOutcome.failure()
        with self._changed:
            result = "duplicate" if event_id in self.seen else "received"
            self.seen.add(event_id)
        return NotificationOutcome.received(event_id, result)

    def answer(self, request: NotificationRequest) -> tuple[NotificationReply, str]:
        """The gateway's reply to ``request`` (the shop's default without a gateway)."""
        outcome = self.outcome(request)
        if self.gateway is None:
            return json_reply(outcome), outcome.kind
        try:
            reply = self.gateway.notification_reply(outcome)
        except Exception as exc:
            reply = f"{type(exc).__name__}: {exc}"
        if not isinstance(reply, NotificationReply):
            text = f"expected a NotificationReply from notification_reply, got {reply!r}"
            return NotificationReply.text(text[:300], 500), outcome.kind
        return reply, outcome.kind

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/notify"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, predicate: Callable[[list[Delivery]], bool], timeout: float) -> list[Delivery]:
        """The deliveries so far, once ``predicate`` holds for them (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.deliveries):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected the provider's notification within {timeout:.0f}s, got "
                        f"{len(self.deliveries)} deliveries that do not match: "
                        + "; ".join(f"{d.kind} answered {d.answered}" for d in self.deliveries[-5:])
                    )
                self._changed.wait(left)
            return list(self.deliveries)
