"""``ecshop smoke-test``: a test-mode order placed end to end against a running shop.

Run it after a server move, an upgrade or a restore. It checks health, places a real
checkout for one unit of a SKU, pays it on the sandbox gateway's hosted page as a
customer's browser would, waits until the shop has recorded the payment, then cancels
the order through the admin API (refunded through the gateway, restocked) and checks
that the SKU's stock is back where it was. With another gateway it stops before paying
and cancels the unpaid order. Every step prints one line; the first failure stops the
run and says why.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from ecshop.errors import ShopError


class SmokeFailure(ShopError):
    """A step of the smoke test failed; the message says which and why."""

    code = "smoke_test_failed"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise SmokeFailure(f"expected JSON, got {self.body[:200]!r}") from exc


@dataclass
class SmokeTest:
    base_url: str
    admin_token: str
    gateway: str = "sandbox"
    sku: str | None = None
    timeout: float = 30.0
    say: Callable[[str], None] = print
    metrics_token: str = ""

    def request(self, method: str, path: str, body: Any = None, *, admin: bool = False,
                headers: dict[str, str] | None = None, url: str | None = None) -> Reply:  # fmt: skip
        data = None
        hdrs = dict(headers or {})
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if admin:
            hdrs["Authorization"] = f"Bearer {self.admin_token}"
        req = urllib.request.Request(url or self.base_url.rstrip("/") + path, data=data,
                                     method=method, headers=hdrs)  # fmt: skip
        try:
            with _OPENER.open(req, timeout=15) as resp:
                return Reply(int(resp.status), resp.read(), dict(resp.headers.items()))
        except urllib.error.HTTPError as exc:
            return Reply(int(exc.code), exc.read(), dict(exc.headers.items()))
        except OSError as exc:
            raise SmokeFailure(f"{method} {req.full_url}: {exc}") from exc

    def expect(self, reply: Reply, status: int, what: str) -> Reply:
        if reply.status != status:
            raise SmokeFailure(
                f"{what}: expected HTTP {status}, got {reply.status}: {reply.body[:300]!r}"
            )
        return reply

    def ok(self, text: str) -> None:
        self.say(f"ok    {text}")

    def check_metrics(self) -> str:
        """``/metrics`` answers, or, without the metrics token, is closed to this address
        (``ECSHOP_METRICS_ALLOW``)."""
        token = {"Authorization": f"Bearer {self.metrics_token}"} if self.metrics_token else {}
        reply = self.request("GET", "/metrics", headers=token)
        if reply.status in (401, 403) and not self.metrics_token:
            return f"metrics closed to this address ({reply.status}; ECSHOP_METRICS_TOKEN opens it)"
        self.expect(reply, 200, "metrics")
        return "metrics answer"

    def levels(self, sku: str) -> dict[str, Any]:
        reply = self.request("GET", f"/api/v1/admin/stock/{quote(sku, safe='')}", admin=True)
        return dict(self.expect(reply, 200, f"stock of {sku}").json())

    def pick_sku(self) -> str:
        if self.sku:
            return self.sku
        after = ""
        while True:
            page = self.expect(
                self.request("GET", "/api/v1/admin/stock?limit=500" + (f"&after={quote(after)}" if after else ""),
                             admin=True), 200, "stock list").json()  # fmt: skip
            for item in page["items"]:
                if int(item["available"]) >= 1:
                    return str(item["sku"])
            after = page.get("next_after") or ""
            if not after:
                raise SmokeFailure("no SKU has stock available: pass --sku or add stock")

    def run(self) -> str:
        """Run every step; return the test order's number. Raises SmokeFailure."""
        health = self.expect(self.request("GET", "/healthz"), 200, "health").json()
        self.ok(f"health: {json.dumps(health, separators=(',', ':'))[:120]}")
        self.expect(self.request("GET", "/api/openapi.json"), 200, "OpenAPI document")
        self.ok(f"OpenAPI document answers; {self.check_metrics()}")
        if not self.admin_token:
            raise SmokeFailure("the admin token is needed (ECSHOP_ADMIN_TOKEN or --admin-token)")
        sku = self.pick_sku()
        before = self.levels(sku)
        self.ok(f"admin API answers; {sku}: available {before['available']}")

        body = {"lines": [{"sku": sku, "qty": 1}], "gateway": self.gateway,
                "customer": {"email": "smoke-test@example.invalid", "name": "ecshop smoke test"}}  # fmt: skip
        order = self.expect(
            self.request("POST", "/api/v1/checkout", body,
                         headers={"Idempotency-Key": f"smoke-{secrets.token_hex(8)}"}),
            201, "checkout").json()  # fmt: skip
        number, token = order["number"], order["access_token"]
        self.ok(
            f"checkout: order {number} {order['status']}, total {order['total']} {order['currency']}"
        )
        try:
            if self.gateway == "sandbox" and order["status"] == "pending_payment":
                self.pay_on_sandbox(order["payment"]["redirect_url"])
                self.wait_paid(number, token)
            else:
                self.ok(
                    f"gateway {self.gateway}: payment page not driven; the order is cancelled unpaid"
                )
        except SmokeFailure:
            try:
                self.cancel(number)
            except SmokeFailure as exc:
                self.say(f"note  the test order {number} could not be cancelled: {exc.message}")
            raise
        self.cancel(number)
        after = self.levels(sku)
        if int(after["available"]) != int(before["available"]):
            raise SmokeFailure(
                f"{sku}: available was {before['available']} before the test order and is "
                f"{after['available']} after its cancellation"
            )
        self.ok(f"stock of {sku} is back to {after['available']} available")
        return str(number)

    def pay_on_sandbox(self, redirect_url: str) -> None:
        page = self.request("GET", "", url=redirect_url)
        self.expect(page, 200, "sandbox payment page")
        fields = dict(parse_qsl(urlsplit(redirect_url).query))
        parts = urlsplit(redirect_url)
        paid = self.request("POST", "", urlencode({**fields, "action": "pay"}),
                            headers={"Content-Type": "application/x-www-form-urlencoded"},
                            url=f"{parts.scheme}://{parts.netloc}{parts.path}")  # fmt: skip
        if paid.status not in (302, 303):
            raise SmokeFailure(
                f"paying on the sandbox page: HTTP {paid.status}: {paid.body[:200]!r}"
            )
        self.ok("paid on the sandbox gateway's page")

    def wait_paid(self, number: str, token: str) -> None:
        deadline = time.monotonic() + self.timeout
        query = urlencode({"order": number})
        status = ""
        while time.monotonic() < deadline:
            # The return page asks the gateway itself when no notification has landed yet.
            # The access token goes in a header: URLs end up in access logs.
            reply = self.request("GET", f"/payments/{self.gateway}/return?{query}",
                                 headers={"Accept": "application/json", "X-Order-Token": token})  # fmt: skip
            status = str(self.expect(reply, 200, "return page").json().get("status"))
            if status == "paid":
                self.ok(f"order {number} is paid")
                return
            time.sleep(0.5)
        raise SmokeFailure(f"order {number} is still {status!r} after {self.timeout:.0f}s")

    def cancel(self, number: str) -> None:
        reply = self.request("POST", f"/api/v1/admin/orders/{quote(number, safe='')}/cancel", {},
                             admin=True)  # fmt: skip
        state = self.expect(reply, 200, f"cancelling test order {number}").json()
        self.ok(f"test order {number} cancelled (refunded {state.get('refunded_amount', 0)})")
