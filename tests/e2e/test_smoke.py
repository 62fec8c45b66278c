"""``ecshop smoke-test`` against a running shop: it passes on a healthy one, leaves the
stock as it found it, and fails with a clear reason when the gateway is gone."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ecshop.config import child_environ
from tests.e2e.conftest import SETUPS


def smoke(stack, *args, **env):
    return subprocess.run(
        [sys.executable, "-m", "ecshop.cli", "smoke-test", "--base-url", stack.shop.url, *args],
        env=child_environ({"ECSHOP_ADMIN_TOKEN": stack.admin_token, **env}),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("setup", SETUPS)
def test_smoke_test_places_pays_and_cancels_a_test_order(make_stack, setup):
    stack = make_stack(setup)
    stack.add_product("TEA", 1200, 5)
    stack.add_product("MUG", 800, 2)
    before = stack.levels()
    done = smoke(stack, "--sku", "MUG")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke test passed" in done.stdout and "order" in done.stdout
    number = done.stdout.rsplit("test order ", 1)[1].strip(" )\n")
    order = stack.order(number)
    # NOTE: the gateway's notice of the refund may land before the cancellation: the
    # order then ends refunded, with the same money and stock back.
    assert order["status"] in ("cancelled", "refunded")
    assert order["paid_amount"] == order["total"]
    assert order["refunded_amount"] == order["total"]
    at_gateway = stack.gateway.api("GET", f"/v1/payments/{number}")
    assert (at_gateway["status"], at_gateway["refunded_amount"]) == ("refunded", order["total"])
    after = stack.levels()
    assert {s: (v["on_hand"], v["available"], v["held"]) for s, v in after.items()} == {
        s: (v["on_hand"], v["available"], v["held"]) for s, v in before.items()
    }
    assert stack.cli("stock", "audit").returncode == 0


def test_smoke_test_fails_clearly_when_the_gateway_is_gone(make_stack):
    token = "m" * 32  # and /metrics is closed to an address without it
    stack = make_stack("embedded", ECSHOP_METRICS_TOKEN=token, ECSHOP_METRICS_ALLOW="")
    stack.add_product("TEA", 1200, 5)
    stack.gateway.stop()
    done = smoke(stack)
    assert done.returncode == 1
    assert "metrics closed to this address (401" in done.stdout, done.stdout
    assert done.stdout.splitlines()[-1].startswith("FAIL  ")
    assert "metrics answer" in smoke(stack, ECSHOP_METRICS_TOKEN=token).stdout
    assert "sandbox payment page" in done.stderr or "sandbox" in done.stderr, done.stderr
    # The unpaid test order was cancelled on the way out: nothing stays held.
    assert stack.levels()["TEA"]["available"] == 5
    assert all(o["status"] == "cancelled" for o in stack.orders())


def test_smoke_test_without_admin_token_says_so(make_stack):
    stack = make_stack("embedded")
    done = subprocess.run(
        [sys.executable, "-m", "ecshop.cli", "smoke-test", "--base-url", stack.shop.url],
        env=child_environ({"ECSHOP_ADMIN_TOKEN": ""}), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "admin token" in done.stderr
