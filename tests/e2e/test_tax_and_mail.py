"""Through gunicorn: tax per rate, the zone's shipping fee and the delivery choice in the
checkout answer, the order status and the admin order; a bad address or delivery is a
readable 400; the bank-transfer order's mail is sent once, right after the checkout by the
worker that took it, or by `ecshop mail send` where that is turned off."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import SETUPS
from tests.e2e.test_checkout_flow import wait_for

ADDRESS = {"postal_code": "900-0001", "prefecture": "沖縄県", "city": "那覇市",
           "line1": "港町1-1", "phone": "098-123-4567"}  # fmt: skip
ACCOUNT = "Example Bank 123-4567"


def shop(make_stack, tmp_path, setup="embedded", **env):
    stack = make_stack(setup, ECSHOP_MAIL_DIR=str(tmp_path / "mail"), **env,
                       ECSHOP_PLUGIN_SHIPPING_FEE_ZONES="hokkaido:1200,okinawa:1500",
                       ECSHOP_DELIVERY_SLOTS="morning,14-16,18-20",
                       ECSHOP_DELIVERY_RANGE_DAYS="7")  # fmt: skip
    for sku, price, tax_class in (("RICE", 2160, "reduced"), ("MUG", 1650, "standard")):
        resp = stack.http.post(f"{stack.shop.url}/api/v1/admin/products", headers=stack.admin,
                               json={"sku": sku, "name": sku, "price": price, "on_hand": 9,
                                     "tax_class": tax_class})  # fmt: skip
        assert resp.status_code == 201 and resp.json()["tax_class"] == tax_class, resp.text
    return stack


def first_day(lead=2):
    return (dt.datetime.now(ZoneInfo("Asia/Tokyo")).date() + dt.timedelta(days=lead)).isoformat()


def checkout(stack, gateway="sandbox", **extra):
    body = {"lines": [{"sku": "RICE", "qty": 1}, {"sku": "MUG", "qty": 1}], "gateway": gateway,
            "customer": {"email": "buyer@example.com", "address": ADDRESS}, **extra}  # fmt: skip
    return stack.http.post(f"{stack.shop.url}/api/v1/checkout", json=body, timeout=30)


@pytest.mark.parametrize("setup", SETUPS)
def test_tax_per_rate_zone_shipping_and_delivery_are_shown_everywhere(make_stack, tmp_path, setup):
    stack = shop(make_stack, tmp_path, setup)
    delivery = {"date": first_day(), "slot": "14-16"}
    resp = checkout(stack, delivery=delivery)
    assert resp.status_code == 201, resp.text
    placed = resp.json()
    # Okinawa's zone: 1,500 shipping, in the 10% base with the mug
    taxes = [{"tax_class": "standard", "rate": 10, "amount": 1650 + 1500, "tax": 286},
             {"tax_class": "reduced", "rate": 8, "amount": 2160, "tax": 160}]  # fmt: skip
    assert (placed["shipping"], placed["total"]) == (1500, 2160 + 1650 + 1500)
    assert placed["taxes"] == taxes and placed["delivery"] == delivery
    assert [ln["tax_class"] for ln in placed["lines"]] == ["standard", "reduced"]
    status = stack.http.get(f"{stack.shop.url}/api/v1/orders/{placed['number']}",
                            headers={"X-Order-Token": placed["access_token"]}).json()  # fmt: skip
    assert status["taxes"] == taxes and status["delivery"] == delivery
    admin = stack.order(placed["number"])
    assert admin["taxes"] == taxes and admin["customer"]["address"] == ADDRESS
    assert stack.orders()[0]["taxes"] == taxes


BAD = [
    ({}, {"prefecture": "Atlantis"}, "customer.address.prefecture must be one of the 47"),
    ({}, {"postal_code": "9000001"}, "postal_code must be a postal code as NNN-NNNN"),
    ({"delivery": {"slot": "midnight"}}, {}, "delivery.slot must be one of the shop's slots"),
    ({"delivery": {"date": "1999-01-01"}}, {}, "delivery.date must be from"),
    ({"delivery": {"date": "tomorrow"}}, {}, "delivery.date must be a date as YYYY-MM-DD"),
]  # fmt: skip


def test_a_bad_address_or_delivery_is_a_readable_400(make_stack, tmp_path):
    stack = shop(make_stack, tmp_path)
    for extra, address, message in BAD:
        body = {"lines": [{"sku": "MUG", "qty": 1}], "gateway": "sandbox", **extra,
                "customer": {"email": "a@example.com", "address": {**ADDRESS, **address}}}  # fmt: skip
        resp = stack.http.post(f"{stack.shop.url}/api/v1/checkout", json=body)
        assert resp.status_code == 400, resp.text
        assert message in resp.json()["error"]["message"], resp.text
    assert stack.orders() == []


@pytest.mark.parametrize("setup", SETUPS)
def test_the_order_mail_goes_out_right_after_the_checkout(make_stack, tmp_path, setup):
    """No reconciler loop, no command: the worker that took the order sends its mail."""
    stack = shop(make_stack, tmp_path, setup)
    resp = checkout(stack, gateway="bank_transfer")
    assert resp.status_code == 201, resp.text
    number = resp.json()["number"]
    assert wait_for(lambda: stack.order(number)["mail"][0]["status"] == "sent")
    [mail] = stack.order(number)["mail"]
    assert (mail["kind"], mail["attempts"]) == ("order_received", 1)
    [path] = (tmp_path / "mail").glob("*.eml")
    assert number in path.read_text(errors="replace")
    assert "sent=0" in stack.cli("mail", "send").stdout  # nothing left to send


def test_the_bank_transfer_order_mail_is_sent_once_by_the_cli(make_stack, tmp_path):
    stack = shop(make_stack, tmp_path, ECSHOP_MAIL_PROMPT="0")
    resp = checkout(stack, gateway="bank_transfer")
    assert resp.status_code == 201, resp.text
    placed = resp.json()
    folder = tmp_path / "mail"
    # the server's loop and its prompt sending are off: nothing sent yet
    assert not list(folder.glob("*.eml"))
    done = stack.cli("mail", "send")
    assert done.returncode == 0 and "sent=1" in done.stdout, done.stdout + done.stderr
    assert "sent=0" in stack.cli("mail", "send").stdout
    assert "mailed=0" in stack.cli("reconcile", "--once").stdout
    [mail] = stack.order(placed["number"])["mail"]
    assert (mail["kind"], mail["status"], mail["attempts"]) == ("order_received", "sent", 1)
    [path] = folder.glob("*.eml")
    body = email.message_from_bytes(path.read_bytes(), policy=email.policy.default).get_content()
    assert ACCOUNT in body and placed["number"] in body and "5,310円" in body
    pay_by = dt.datetime.fromisoformat(placed["payment"]["pay_by"].replace("Z", "+00:00"))
    assert f"お支払い期限: {pay_by.astimezone(ZoneInfo('Asia/Tokyo')):%Y-%m-%d %H:%M}" in body
    assert "10%対象 3,150円 (内消費税 286円)" in body and "8%対象 2,160円 (内消費税 160円)" in body


def test_the_servers_reconciler_loop_sends_the_mail_by_itself(make_stack, tmp_path):
    folder = tmp_path / "mail"
    stack = make_stack("embedded", ECSHOP_MAIL_DIR=str(folder), ECSHOP_RECONCILE_INTERVAL="0.2")
    stack.add_product("MUG", 1650, 5)
    body = {"lines": [{"sku": "MUG", "qty": 1}], "gateway": "bank_transfer",
            "customer": {"email": "buyer@example.com", "lang": "en"}}  # fmt: skip
    placed = stack.http.post(f"{stack.shop.url}/api/v1/checkout", json=body).json()
    assert wait_for(lambda: list(folder.glob("*.eml")))
    [path] = folder.glob("*.eml")
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mail["Subject"].endswith(f"We have received your order {placed['number']}")
    assert ACCOUNT in mail.get_content()
    assert wait_for(lambda: stack.order(placed["number"])["mail"][0]["status"] == "sent")
