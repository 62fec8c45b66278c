"""Hostile input against a real gunicorn: cross-site form posts, chunked bodies (raw
sockets), and plugins whose errors must not reach the client."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from ecshop.sandbox.protocol import SIGNATURE_HEADER, sign_body
from tests.e2e.conftest import SETUPS

CART = {"lines": [{"sku": "TEA", "qty": 2}], "customer": {"email": "a@example.com"},
        "gateway": "sandbox"}  # fmt: skip
LIMIT = 4096


def chunked_post(base_url: str, path: str, body: bytes, headers: dict[str, str],
                 chunk: int = 700) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """POST ``body`` with ``Transfer-Encoding: chunked`` (no Content-Length) on a raw
    socket; the status, headers and body of the answer."""
    url = urlsplit(base_url)
    head = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", "Transfer-Encoding: chunked",
            "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for i in range(0, len(body), chunk):
                part = body[i : i + chunk]
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413) before the whole body is sent
        answer = b""
        while data := sock.recv(65536):
            answer += data
    head_raw, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *lines = head_raw.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
    return int(status_line.split()[1]), fields, payload


@pytest.mark.parametrize(
    ("content_type", "data"),
    [("application/x-www-form-urlencoded", "lines=TEA"), ("text/plain", json.dumps(CART)),
     ("multipart/form-data; boundary=b", '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n')],
)  # fmt: skip
def test_a_cross_site_form_cannot_place_an_order(make_stack, content_type, data):
    stack = make_stack("embedded")
    stack.add_product("TEA", 1000, 10)
    resp = stack.http.post(f"{stack.shop.url}/api/v1/checkout", data=data,
                           headers={"Content-Type": content_type})  # fmt: skip
    assert resp.status_code == 415, resp.text
    assert resp.json()["error"]["code"] == "unsupported_media_type"
    assert stack.orders() == [] and stack.levels()["TEA"]["held"] == 0


def test_chunked_bodies_are_read_and_bounded(make_stack):
    stack = make_stack("embedded", ECSHOP_MAX_BODY=str(LIMIT))
    stack.add_product("TEA", 1000, 10)
    body = json.dumps({**CART, "customer": {"email": "a@example.com", "name": "n" * 200}}).encode()
    status, _, payload = chunked_post(stack.shop.url, "/api/v1/checkout", body,
                                      {"Content-Type": "application/json"})  # fmt: skip
    assert status == 201, payload
    order = json.loads(payload)
    assert stack.levels()["TEA"]["held"] == 2

    event = json.dumps({"id": "evt-chunked", "type": "payment.succeeded", "order": order["number"],
                        "amount": order["total"], "currency": "JPY", "payment_id": "pay-chunked",
                        "created": int(time.time())}).encode()  # fmt: skip
    signed = {SIGNATURE_HEADER: sign_body(event, stack.gateway.secret),
              "Content-Type": "application/json"}  # fmt: skip
    status, _, payload = chunked_post(stack.shop.url, "/payments/sandbox/notify", event, signed,
                                      chunk=50)  # fmt: skip
    assert status == 200, payload
    assert stack.order(order["number"])["status"] == "paid"

    too_big = b'{"pad": "' + b"x" * (2 * LIMIT) + b'"}'
    for path, extra in (("/api/v1/checkout", {}), ("/payments/sandbox/notify", signed)):
        status, _, payload = chunked_post(stack.shop.url, path, too_big,
                                          {"Content-Type": "application/json", **extra})  # fmt: skip
        assert status == 413, (path, payload)
        assert json.loads(payload)["error"]["code"] == "payload_too_large"
    assert len(stack.orders()) == 1


LEAKY_PLUGIN = """
NAME = "leaky"
VERSION = "1.0"


def validate(errors, cart):
    if cart["customer"].get("name") == "validate":
        raise RuntimeError("validate-secret-text")
    return errors


def totals(totals, cart):
    name = cart["customer"].get("name")
    if name == "totals":
        raise KeyError("totals-secret-text")
    if name == "garbage":
        return {"total": "totals-secret-text"}
    return totals


def register(host):
    host.add_filter("checkout_validate", validate)
    host.add_filter("cart_totals", totals)
"""


@pytest.mark.parametrize("setup", SETUPS)
def test_a_failing_checkout_plugin_leaks_nothing_and_holds_nothing(make_stack, setup, tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "leaky.py").write_text(LEAKY_PLUGIN)
    stack = make_stack(setup, ECSHOP_PLUGINS_DIR=str(folder))
    stack.add_product("TEA", 1000, 10)
    for name in ("validate", "totals", "garbage"):
        body = {**CART, "customer": {"email": "a@example.com", "name": name}}
        resp = stack.http.post(f"{stack.shop.url}/api/v1/checkout", json=body,
                               headers={"X-Request-Id": f"e2e-{name}"})  # fmt: skip
        assert resp.status_code == 500, resp.text
        assert "secret" not in resp.text and "leaky" not in resp.text
        assert resp.json()["error"]["code"] == "internal_error"
        assert resp.json()["error"]["request_id"] == resp.headers["X-Request-Id"] == f"e2e-{name}"
        assert stack.orders() == []
        levels = stack.levels()["TEA"]
        assert (levels["available"], levels["held"]) == (10, 0)
    log = stack.shop.log_path.read_text(errors="replace")
    for name in ("validate", "totals", "garbage"):
        assert f"request e2e-{name}: POST /api/v1/checkout failed" in log
    assert "validate-secret-text" in log and "Traceback" in log
    fine = stack.http.post(f"{stack.shop.url}/api/v1/checkout", json=CART)
    assert fine.status_code == 201, fine.text
