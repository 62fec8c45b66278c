"""A form-post provider end to end: gunicorn serving the shop with the example FormPay
gateway dropped into its plugins folder, and the fake FormPay as its own process.

FormPay posts form-encoded callbacks signed in a body field, retries each until the
shop answers the literal ``OK``, and sends no event id; the fake delivers a callback
once when answered ``OK`` and records every attempt and what the shop answered.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.test_checkout_flow import wait_for

FORMPAY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "formpay"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _load_fake() -> Any:
    spec = importlib.util.spec_from_file_location(
        "fake_formpay", FORMPAY / "tests" / "fake_formpay.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_formpay"] = module
    spec.loader.exec_module(module)
    return module


fake = _load_fake()


@pytest.fixture
def formpay(make_stack: Any, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A shop (embedded default) with FormPay in its plugins folder, and the fake FormPay."""
    provider = fake.FakeFormPay().start()
    plugins = tmp_path / "plugins"
    shutil.copytree(FORMPAY / "formpay_ecshop", plugins / "formpay",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    try:
        stack = make_stack(
            "embedded", ECSHOP_PLUGINS_DIR=str(plugins), ECSHOP_GATEWAY_FORMPAY_URL=provider.url,
            ECSHOP_GATEWAY_FORMPAY_SECRET=provider.secret,
            ECSHOP_GATEWAY_FORMPAY_SHOP_ID=provider.shop_id, ECSHOP_RECONCILE_GRACE="0",
            ECSHOP_DB_LOCK_TIMEOUT="1",
        )  # fmt: skip
        stack.add_product("TEA", 1200, 5)
        yield stack, provider
    finally:
        provider.stop()


def placed(stack: Any, provider: Any, qty: int = 1) -> dict[str, Any]:
    resp = stack.checkout([("TEA", qty)], gateway="formpay")
    assert resp.status_code == 201, resp.text
    order = dict(resp.json())
    assert order["payment"]["form"]["action"] == f"{provider.url}/pay"
    return order


def pay(provider: Any, order: dict[str, Any], action: str = "pay") -> None:
    assert provider.press(order["payment"]["form"]["fields"], action) == 303


def callbacks(provider: Any, number: str) -> dict[int, list[dict[str, Any]]]:
    """Every callback the provider made for the order: its attempts, by callback."""
    by_callback: dict[int, list[dict[str, Any]]] = {}
    for attempt in provider.deliveries(number):
        by_callback.setdefault(attempt["callback"], []).append(attempt)
    return by_callback


def delivered_once(attempts: list[dict[str, Any]]) -> bool:
    return [(a["outcome"], a["answered"], a["reply"]) for a in attempts] == [("ok", 200, "OK")]


def test_checkout_pay_callback_paid_then_a_partial_refund(formpay):
    stack, provider = formpay
    order = placed(stack, provider, qty=2)
    number = order["number"]
    pay(provider, order)
    assert wait_for(lambda: stack.order(number)["status"] == "paid")
    detail = stack.order(number)
    tx_id = detail["payment_id"]
    assert tx_id.startswith("FP")
    assert [(p["type"], p["event_id"]) for p in detail["payments"]] == [
        ("payment.succeeded", f"{tx_id}:paid")]  # fmt: skip
    assert stack.levels()["TEA"]["sold_unshipped"] == 2

    refund = stack.http.post(f"{stack.shop.url}/api/v1/admin/orders/{number}/refund",
                             headers=stack.admin, json={"amount": 300})  # fmt: skip
    assert refund.status_code == 200, refund.text
    assert (refund.json()["status"], refund.json()["refunded_amount"]) == ("paid", 300)
    # FormPay's refund callback reaches the shop and counts once with the shop's own record
    assert wait_for(lambda: len(callbacks(provider, number)) == 2
                    and all(a["outcome"] == "ok" for a in provider.deliveries(number)))  # fmt: skip
    after = stack.order(number)
    assert (after["status"], after["refunded_amount"]) == ("paid", 300)
    assert [p["type"] for p in after["payments"]] == ["payment.succeeded", "refund.succeeded"]
    # the provider saw the literal OK, and delivered no callback twice
    made = callbacks(provider, number)
    assert [a[0]["result"] for a in made.values()] == ["paid", "refunded"]
    assert all(delivered_once(attempts) for attempts in made.values()), made
    page = stack.http.get(f"{stack.shop.url}/api/v1/orders/{number}",
                          headers={"X-Order-Token": order["access_token"]})  # fmt: skip
    assert page.json()["status"] == "paid"


def test_a_declined_payment_cancels_the_order(formpay):
    stack, provider = formpay
    order = placed(stack, provider, qty=3)
    pay(provider, order, "decline")
    assert wait_for(lambda: stack.order(order["number"])["status"] == "cancelled")
    assert stack.levels()["TEA"]["available"] == 5
    assert all(delivered_once(a) for a in callbacks(provider, order["number"]).values())


def test_a_dropped_callback_is_settled_by_the_reconciler(formpay):
    stack, provider = formpay
    order = placed(stack, provider)
    number = order["number"]
    provider.drop_next(number)
    pay(provider, order)
    assert wait_for(lambda: [a["outcome"] for a in provider.deliveries(number)] == ["dropped"])
    assert stack.order(number)["status"] == "pending_payment"
    done = stack.cli("reconcile", "--once")
    assert done.returncode == 0, done.stderr
    assert "paid=1" in done.stdout, done.stdout
    detail = stack.order(number)
    assert detail["status"] == "paid"
    assert [p["event_id"] for p in detail["payments"]] == [f"status:{number}:succeeded"]
    # asked through the status API: the provider never delivered that callback at all
    assert [a["outcome"] for a in provider.deliveries(number)] == ["dropped"]


def signed_callback(provider: Any, order: dict[str, Any], *, age: int = 0,
                    after: dict[str, str] | None = None, **fields: str) -> bytes:  # fmt: skip
    """A callback for ``order`` signed with FormPay's key ``age`` seconds ago (``fields``
    before signing, ``after`` changed once signed)."""
    form = {"shop_id": provider.shop_id, "order_no": order["number"], "tx_id": "FPTEST1",
            "result": "paid", "amount": str(order["total"]), "currency": "JPY",
            "ts": str(int(time.time()) - age), **fields}  # fmt: skip
    form["sig"] = fake.signature(form, provider.secret)
    form.update(after or {})
    return urlencode(form).encode()


def notify(stack: Any, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return stack.http.post(f"{stack.shop.url}/payments/formpay/notify", data=body,
                           headers=FORM if headers is None else headers, timeout=30)  # fmt: skip


def test_the_shop_answers_each_callback_as_formpay_expects(formpay):
    stack, provider = formpay
    order = placed(stack, provider)
    number = order["number"]
    genuine = signed_callback(provider, order)
    first = notify(stack, genuine)
    assert (first.status_code, first.text) == (200, "OK")
    assert first.headers["Content-Type"].startswith("text/plain")
    assert stack.order(number)["status"] == "paid"
    # the provider retries the same callback, signed afresh: the same derived event
    retried = notify(stack, signed_callback(provider, order))
    assert (retried.status_code, retried.text) == (200, "OK")
    assert len(stack.order(number)["payments"]) == 1
    # not genuine, not a form, not whole: a 4xx that is not OK, nothing recorded
    refused = [
        notify(stack, genuine.replace(b"result=paid", b"result=refunded")),
        notify(stack, signed_callback(provider, order, after={"sig": "0" * 64})),
        notify(stack, signed_callback(provider, order, age=3600, tx_id="FPTEST2")),
        notify(
            stack, json.dumps({"order_no": number}).encode(), {"Content-Type": "application/json"}
        ),
        notify(stack, b"%%%&&&=", FORM),
        notify(stack, b"", FORM),
        notify(stack, genuine + b"&sig=" + b"0" * 64),
    ]
    for resp in refused:
        assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
        assert resp.text.startswith("NG") and resp.text != "OK", resp.text
    assert len(stack.order(number)["payments"]) == 1


def test_a_callback_the_shop_cannot_record_gets_a_5xx_and_lands_on_the_retry(formpay):
    stack, provider = formpay
    order = placed(stack, provider)
    number = order["number"]
    writer = stack.store_url[len("sqlite:///") :] + "-writer"
    with open(writer, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # every write of the shop now times out
        try:
            pay(provider, order)
            assert wait_for(
                lambda: any(a["outcome"] == "retry" for a in provider.deliveries(number))
            )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    assert wait_for(lambda: stack.order(number)["status"] == "paid")
    assert wait_for(lambda: provider.deliveries(number)[-1]["outcome"] == "ok")
    attempts = provider.deliveries(number)
    failed, last = attempts[:-1], attempts[-1]
    assert failed and all(a["answered"] == 503 and a["reply"].startswith("NG") for a in failed), (
        failed
    )
    assert (last["answered"], last["reply"]) == (200, "OK")
    assert len({a["callback"] for a in attempts}) == 1  # one callback, retried until OK
    assert len(stack.order(number)["payments"]) == 1
