"""A fake FormPay: a tiny HTTP server that behaves like the provider, run as its own process.

It is written apart from the gateway (it shares no code with ``formpay_ecshop``), so a
gateway that misreads the protocol fails against it.

- ``POST /pay``: the hosted page. The shop's signed form shows Pay and Decline; the
  same fields plus ``action=pay|decline`` settle the payment (once) and answer 303 to
  ``return_url``.
- Callbacks: a form POSTed to ``notify_url``, signed in ``sig`` (and ``ts``) afresh on
  every attempt, delivered until the shop answers 200 with the literal body ``OK``
  (then never again), with a doubling back-off up to ``--retry-budget`` attempts.
- ``POST /api/status`` · ``POST /api/refund``: signed forms, JSON answers.
- For tests only: ``POST /_test/drop`` (form ``order_no``) loses that order's next
  callback for good; ``GET /_test/deliveries`` lists every attempt and what the shop
  answered. ``GET /healthz``.

Run: ``python fake_formpay.py --port N --secret S --shop-id M``. :class:`FakeFormPay`
starts it as a subprocess for tests.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

TOLERANCE = 300
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def signature(fields: dict[str, str], secret: str) -> str:
    text = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(fields.items()) if k != "sig")
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Provider:
    """FormPay's books and its callback deliveries."""

    def __init__(self, secret: str, shop_id: str, budget: int, base_delay: float) -> None:
        self.secret, self.shop_id = secret, shop_id
        self.budget, self.base_delay = budget, base_delay
        self.lock = threading.Lock()
        self.payments: dict[str, dict[str, Any]] = {}
        self.drop: set[str] = set()
        self.attempts: list[dict[str, Any]] = []
        self.callbacks = 0

    def verify(self, fields: dict[str, str]) -> None:
        if not hmac.compare_digest(fields.get("sig", ""), signature(fields, self.secret)):
            raise Refused(403, "bad signature")
        if fields.get("shop_id") != self.shop_id:
            raise Refused(403, "unknown shop")
        if abs(time.time() - int(fields.get("ts") or 0)) > TOLERANCE:
            raise Refused(403, "stale request")

    def settle(self, fields: dict[str, str], action: str) -> dict[str, Any]:
        with self.lock:
            payment = self.payments.setdefault(fields["order_no"], {
                "order_no": fields["order_no"], "amount": int(fields["amount"]),
                "currency": fields["currency"], "notify_url": fields["notify_url"],
                "tx_id": "", "result": "pending", "refunded": 0, "refunds": 0,
            })  # fmt: skip
            if payment["result"] != "pending":
                return payment  # paying twice captures once
            payment["tx_id"] = f"FP{secrets.token_hex(6).upper()}"
            payment["result"] = "paid" if action == "pay" else "declined"
        self.callback(payment, payment["result"], payment["amount"])
        return payment

    def refund(self, order_no: str, amount: int) -> dict[str, Any]:
        with self.lock:
            payment = self.payments.get(order_no)
            if payment is None or payment["result"] not in ("paid", "partially_refunded"):
                raise Refused(409, "nothing captured to refund")
            if not 0 < amount <= payment["amount"] - payment["refunded"]:
                raise Refused(400, "refund exceeds what is left")
            payment["refunded"] += amount
            payment["refunds"] += 1
            full = payment["refunded"] == payment["amount"]
            payment["result"] = "refunded" if full else "partially_refunded"
            refund_no = f"{payment['tx_id']}-R{payment['refunds']}"
        self.callback(payment, "refunded", amount, refund_no=refund_no)
        return {"refund_no": refund_no, "refunded": payment["refunded"]}

    def callback(self, payment: dict[str, Any], result: str, amount: int, **extra: str) -> None:
        fields = {"shop_id": self.shop_id, "order_no": payment["order_no"],
                  "tx_id": payment["tx_id"], "result": result, "amount": str(amount),
                  "currency": payment["currency"], **extra}  # fmt: skip
        with self.lock:
            self.callbacks += 1
            number = self.callbacks
            dropped = payment["order_no"] in self.drop
            self.drop.discard(payment["order_no"])
        if dropped:
            self.record(number, fields, "dropped", None, "")
            return
        threading.Thread(
            target=self.deliver, args=(number, payment["notify_url"], fields), daemon=True
        ).start()

    def deliver(self, number: int, url: str, fields: dict[str, str]) -> None:
        for attempt in range(1, self.budget + 1):
            signed = {**fields, "ts": str(int(time.time()))}
            signed["sig"] = signature(signed, self.secret)
            request = urllib.request.Request(url, data=urlencode(signed).encode(), method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
            status, body = None, b""
            try:
                with _OPENER.open(request, timeout=10) as resp:
                    status, body = resp.status, resp.read(1000)
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read(1000)
            except OSError:
                pass
            ok = status == 200 and body == b"OK"
            self.record(
                number, fields, "ok" if ok else "retry", status, body.decode("utf-8", "replace")
            )
            if ok:
                return
            time.sleep(min(self.base_delay * 2 ** (attempt - 1), 5.0))

    def record(self, number: int, fields: dict[str, str], outcome: str, status: int | None,
               reply: str) -> None:  # fmt: skip
        with self.lock:
            self.attempts.append({"callback": number, "order_no": fields["order_no"],
                                  "result": fields["result"], "outcome": outcome,
                                  "answered": status, "reply": reply})  # fmt: skip

    def status(self, order_no: str) -> dict[str, Any]:
        with self.lock:
            payment = self.payments.get(order_no)
            if payment is None:
                return {"order_no": order_no, "result": "none"}
            return {
                k: payment[k]
                for k in ("order_no", "result", "amount", "currency", "tx_id", "refunded")
            }


PAGE = """<!doctype html><html><body><h1>FormPay</h1><p>Pay {amount} {currency}</p>
<form method="post" action="/pay">{hidden}<button name="action" value="pay">Pay</button>
<button name="action" value="decline">Decline</button></form></body></html>"""


def make_handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def send(
            self, status: int, body: bytes, kind: str = "application/json", **headers: str
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            return dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self.send(200, b'{"ok": true}')
            elif self.path == "/_test/deliveries":
                with provider.lock:
                    self.send(200, json.dumps(provider.attempts).encode())
            else:
                self.send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            fields = self.form()
            try:
                self.route(fields)
            except Refused as exc:
                self.send(exc.status, json.dumps({"error": str(exc)}).encode())
            except (KeyError, ValueError) as exc:
                self.send(400, json.dumps({"error": f"bad request: {exc}"}).encode())

        def route(self, fields: dict[str, str]) -> None:
            if self.path == "/_test/drop":
                with provider.lock:
                    provider.drop.add(fields["order_no"])
                self.send(200, b"{}")
                return
            action = fields.pop("action", "")
            provider.verify(fields)
            if self.path == "/pay" and not action:
                hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                                 for k, v in fields.items())  # fmt: skip
                page = PAGE.format(
                    amount=fields["amount"], currency=fields["currency"], hidden=hidden
                )
                self.send(200, page.encode(), "text/html; charset=utf-8")
            elif self.path == "/pay" and action in ("pay", "decline"):
                provider.settle(fields, action)
                self.send(303, b"", "text/plain", Location=fields["return_url"])
            elif self.path == "/api/status":
                self.send(200, json.dumps(provider.status(fields["order_no"])).encode())
            elif self.path == "/api/refund":
                self.send(
                    200,
                    json.dumps(provider.refund(fields["order_no"], int(fields["amount"]))).encode(),
                )
            else:
                self.send(404, b'{"error": "not found"}')

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake FormPay provider")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--shop-id", required=True)
    parser.add_argument("--retry-budget", type=int, default=12)
    parser.add_argument("--retry-base", type=float, default=0.2, help="first back-off, seconds")
    args = parser.parse_args(argv)
    provider = Provider(args.secret, args.shop_id, args.retry_budget, args.retry_base)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(provider))
    server.daemon_threads = True
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeFormPay:
    """The fake provider as a subprocess: ``start()``, ``stop()``, and test helpers."""

    shop_id: str = "test-shop"
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def settings(self) -> dict[str, str]:
        """The gateway settings that point at this provider."""
        return {"url": self.url, "secret": self.secret, "shop_id": self.shop_id}

    def start(self) -> FakeFormPay:
        self.port = self.port or free_port()
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--port", str(self.port),
                                      "--secret", self.secret, "--shop-id", self.shop_id])  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the fake FormPay exited with {self.proc.returncode}")
            try:
                self.get("/healthz")
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the fake FormPay did not answer within 20s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def get(self, path: str) -> Any:
        with _OPENER.open(self.url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def post(self, path: str, fields: dict[str, str]) -> int:
        """POST a form; the HTTP status (a redirect is not followed)."""
        request = urllib.request.Request(self.url + path, data=urlencode(fields).encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect).open(
                request, timeout=10
            ) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def press(self, form_fields: dict[str, str], action: str) -> int:
        """The customer presses Pay or Decline on the hosted page."""
        return self.post("/pay", {**form_fields, "action": action})

    def drop_next(self, order_no: str) -> None:
        """Lose the next callback for this order, for good."""
        assert self.post("/_test/drop", {"order_no": order_no}) == 200

    def deliveries(self, order_no: str | None = None) -> list[dict[str, Any]]:
        """Every callback attempt so far (``outcome``: ok, retry or dropped)."""
        return [d for d in self.get("/_test/deliveries") if order_no in (None, d["order_no"])]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def harness(gateway_class: type) -> Any:
    """A conformance-kit harness for ``gateway_class`` against a fresh fake FormPay
    (use it from a fixture with ``yield from``)."""
    from ecshop.testing.gateway import GatewayHarness
    from ecshop.testing.signatures import signature_in_form

    provider = FakeFormPay().start()

    def customer(start: Any, action: str) -> None:
        status = provider.press(dict(start.form_fields), action)
        assert status == 303, f"expected the FormPay page to answer 303, got {status}"

    def signed_notification(event: dict[str, Any], timestamp: int) -> Any:
        from ecshop.payments.base import NotificationRequest

        result = {"payment.succeeded": "paid", "payment.failed": "declined"}[event["type"]]
        fields = {"shop_id": provider.shop_id, "order_no": event["order"], "tx_id": event["payment_id"],
                  "result": result, "amount": str(event["amount"]), "currency": event["currency"],
                  "ts": str(timestamp)}  # fmt: skip
        fields["sig"] = signature(fields, provider.secret)
        return NotificationRequest(headers={"Content-Type": "application/x-www-form-urlencoded"},
                                   body=urlencode(fields).encode())  # fmt: skip

    try:
        yield GatewayHarness(gateway=gateway_class(provider.settings), customer=customer,
                             signed_notification=signed_notification, extra={"provider": provider},
                             **signature_in_form("sig"))  # fmt: skip
    finally:
        provider.stop()


if __name__ == "__main__":
    raise SystemExit(main())
