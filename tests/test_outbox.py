"""The outbox: the buyer's mail is written in the transaction of the order change that
causes it, sent after the commit by whoever runs the sender next (so a crash in
between loses none and sends none twice), retried with backoff when the mailer fails,
and carries the tax per rate and an offline method's payment instructions."""

from __future__ import annotations

import email
import email.policy
import socket
import subprocess
import sys
import time

import pytest

from ecshop import catalog, orders
from ecshop.app import build_shop
from ecshop.config import load_config
from ecshop.outbox import backoff
from ecshop.store import open_store
from ecshop.testing.servers import free_port

ACCOUNT = "Example Bank, Shibuya branch, ordinary 1234567"


def make_shop(db_url, tmp_path, **env):
    return build_shop(load_config({"ECSHOP_DATABASE_URL": db_url,
                                   "ECSHOP_PLUGINS_DIR": str(tmp_path / "none"),
                                   "ECSHOP_SECRET_KEY": "k" * 32,
                                   "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": ACCOUNT,
                                   "ECSHOP_SHOP_NAME": "Ocha Shop",
                                   "ECSHOP_INVOICE_NUMBER": "T1234567890123",
                                   **env}))  # fmt: skip


@pytest.fixture
def shop(db_url, tmp_path):
    open_store(db_url).migrate()
    shop = make_shop(db_url, tmp_path, ECSHOP_MAIL_DIR=str(tmp_path / "mail"))
    for sku, price, tax_class in (("RICE", 2160, "reduced"), ("MUG", 1650, "standard")):
        catalog.create_product(shop.store, shop.stock, {"sku": sku, "name": sku, "price": price,
                               "on_hand": 9, "tax_class": tax_class}, currency="JPY",
                               actor="test")  # fmt: skip
    yield shop
    shop.close()


def place(shop, gateway="bank_transfer", **customer):
    body = {"lines": [{"sku": "RICE", "qty": 1}, {"sku": "MUG", "qty": 1}],
            "customer": {"email": "buyer@example.com", "name": "山田太郎", **customer},
            "gateway": gateway}  # fmt: skip
    result = shop.checkout.place(body, gateways=shop.gateways, idempotency_key=None)
    shop.flow.start(result.order, result.lines)  # offline: pending_payment -> accepted
    return result.order["number"]


def outbox(shop):
    with shop.store.read() as tx:
        return tx.query(
            "SELECT kind, order_number, recipient, status, attempts FROM outbox ORDER BY id"
        )


def mails(folder):
    found = sorted(folder.glob("*.eml")) if folder.exists() else []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in found]


def test_a_crash_between_the_commit_and_the_send_loses_no_mail_and_sends_it_once(shop, db_url,
                                                                                  tmp_path):  # fmt: skip
    number = place(shop)
    assert outbox(shop) == [{"kind": "order_received", "order_number": number,
                             "recipient": "buyer@example.com", "status": "pending", "attempts": 0}]  # fmt: skip
    shop.close()  # the process dies before any sender ran
    folder = tmp_path / "mail"
    assert mails(folder) == []
    later = make_shop(db_url, tmp_path, ECSHOP_MAIL_DIR=str(folder))
    try:
        assert later.reconciler.run_once().mailed == 1
        assert later.reconciler.run_once().mailed == 0
        assert later.mail.send_due(now=time.time() + 86400).sent == 0
        [mail] = mails(folder)
        assert mail["To"] == "buyer@example.com" and number in mail["Subject"]
        assert [row["status"] for row in outbox(later)] == ["sent"]
    finally:
        later.close()


def test_the_bank_transfer_mail_holds_the_instructions_and_the_tax_per_rate(shop, tmp_path):
    number = place(shop)
    shop.mail.send_due()
    [mail] = mails(tmp_path / "mail")
    body = mail.get_content()
    with shop.store.read() as tx:
        pay_by = orders.load(tx, number)["hold_expires_at"]
    day = time.strftime("%Y-%m-%d", time.gmtime(float(pay_by) + 9 * 3600))  # Asia/Tokyo
    assert ACCOUNT in body and f"reference {number}" in body
    assert "4,310円" in body and f"お支払い期限: {day}" in body
    # the invoice system's receipt: per rate the amount and the tax it contains
    assert "10%対象 2,150円 (内消費税 195円)" in body
    assert "8%対象 2,160円 (内消費税 160円)" in body
    assert "※RICE" in body and "※は軽減税率対象" in body
    assert "登録番号: T1234567890123" in body
    assert mail["Subject"] == f"[Ocha Shop] ご注文を承りました (注文番号 {number})"


def test_the_mail_follows_the_order_in_the_buyers_language(shop, tmp_path):
    number = place(shop, lang="en")
    shop.orders.mark_paid(number, amount=4310, payment_id=None, actor="admin", reason="paid",
                          move="mark_paid")  # fmt: skip
    shop.orders.ship(number, actor="admin")
    assert [r["kind"] for r in outbox(shop)] == ["order_received", "payment_received", "shipped"]
    assert shop.mail.send_due().sent == 3
    subjects = sorted(m["Subject"] for m in mails(tmp_path / "mail"))
    assert subjects == sorted([f"[Ocha Shop] We have received your order {number}",
                               f"[Ocha Shop] Payment received for order {number}",
                               f"[Ocha Shop] Your order {number} has shipped"])  # fmt: skip
    paid = next(m for m in mails(tmp_path / "mail") if "Payment" in m["Subject"]).get_content()
    assert "Subject to 10%: 2,150 JPY (tax included: 195 JPY)" in paid


def test_a_change_that_rolls_back_writes_no_mail_and_an_unpaid_gateway_order_gets_none(
    shop, monkeypatch
):
    number = place(shop)
    shop.mail.send_due()

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(orders, "record_event", broken)
    with pytest.raises(RuntimeError):
        shop.orders.cancel(number, move="customer_cancel", actor="customer", reason="x")
    monkeypatch.undo()
    assert [r["kind"] for r in outbox(shop)] == ["order_received"]
    shop.orders.cancel(number, move="customer_cancel", actor="customer", reason="x")
    assert [r["kind"] for r in outbox(shop)] == ["order_received", "cancelled"]
    declined = shop.checkout.place({"lines": [{"sku": "MUG", "qty": 1}],
                                    "customer": {"email": "b@example.com"}, "gateway": "cod"},
                                   gateways=shop.gateways, idempotency_key=None)  # fmt: skip
    shop.orders.cancel(declined.order["number"], move="decline", actor="gateway", reason="no")
    assert len(outbox(shop)) == 2  # never accepted nor paid: nothing to tell the buyer


def test_a_failing_mailer_is_retried_with_backoff_then_given_up(db_url, tmp_path, counted):
    open_store(db_url).migrate()
    attempts, failures = [], [2]  # the first two calls fail

    def flaky(message):
        attempts.append(message["kind"])
        if len(attempts) <= failures[0]:
            raise ConnectionError("mail server busy")

    shop = make_shop(db_url, tmp_path, ECSHOP_MAIL_MAX_ATTEMPTS="3",
                     ECSHOP_MAIL_DIR=str(tmp_path / "mail"))  # fmt: skip
    try:
        shop.hooks.add_filter("mailer", lambda default: flaky, plugin="test")
        catalog.create_product(shop.store, shop.stock, {"sku": "MUG", "name": "Mug", "price": 1650,
                               "on_hand": 9}, currency="JPY", actor="test")  # fmt: skip
        body = {"lines": [{"sku": "MUG", "qty": 1}], "customer": {"email": "b@example.com"},
                "gateway": "cod"}  # fmt: skip
        result = shop.checkout.place(body, gateways=shop.gateways, idempotency_key=None)
        shop.flow.start(result.order, result.lines)
        now = time.time()
        assert shop.mail.send_due(now=now).retried == 1
        assert shop.mail.send_due(now=now + backoff(1) - 1).retried == 0  # not due yet
        assert shop.mail.send_due(now=now + backoff(1)).retried == 1
        assert shop.mail.send_due(now=now + backoff(1) + backoff(2)).sent == 1
        assert attempts == ["order_received"] * 3
        assert [(r["status"], r["attempts"]) for r in outbox(shop)] == [("sent", 3)]
        shop.orders.cancel(result.order["number"], move="customer_cancel", actor="c", reason="x")
        attempts[:], failures[0] = [], 99  # from now on it always fails
        later = time.time()
        for step in range(3):
            report = shop.mail.send_due(now=later + step * 86400)
        assert report.failed == 1 and attempts == ["cancelled"] * 3
        assert outbox(shop)[-1]["status"] == "failed"
        assert [counted("ecshop_mails_total", result=r) for r in ("sent", "retried", "failed")] == [
            1,
            4,
            1,
        ]
        assert counted("ecshop_checkout_duration_seconds_count", result="placed") == 1
    finally:
        shop.close()


def test_mail_before_send_may_stop_a_message(shop, tmp_path):
    shop.hooks.add_filter("mail_before_send", lambda message: None, plugin="test")
    place(shop)
    assert shop.mail.send_due().stopped == 1
    assert mails(tmp_path / "mail") == [] and outbox(shop)[0]["status"] == "stopped"


def _wait_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the SMTP server died"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the SMTP server did not start")


def test_an_smtp_server_that_is_down_gets_the_mail_once_it_is_back(db_url, tmp_path):
    open_store(db_url).migrate()
    port = free_port()
    shop = make_shop(db_url, tmp_path, ECSHOP_SMTP_URL=f"smtp://127.0.0.1:{port}",
                     ECSHOP_MAIL_FROM="shop@example.com")  # fmt: skip
    server = None
    try:
        catalog.create_product(shop.store, shop.stock, {"sku": "MUG", "name": "Mug", "price": 1650,
                               "on_hand": 9}, currency="JPY", actor="test")  # fmt: skip
        body = {"lines": [{"sku": "MUG", "qty": 1}], "customer": {"email": "b@example.com"},
                "gateway": "bank_transfer"}  # fmt: skip
        result = shop.checkout.place(body, gateways=shop.gateways, idempotency_key=None)
        shop.flow.start(result.order, result.lines)
        now = time.time()
        assert shop.mail.send_due(now=now).retried == 1  # nothing listens yet
        with shop.store.read() as tx:
            assert "ConnectionRefusedError" in tx.scalar("SELECT last_error FROM outbox")
        inbox = tmp_path / "inbox"
        server = subprocess.Popen([sys.executable, "-m", "ecshop.testing.smtp", "--port",
                                   str(port), "--dir", str(inbox)])  # fmt: skip
        _wait_port(port, server)
        assert shop.mail.send_due(now=now + backoff(1)).sent == 1
        [mail] = mails(inbox)
        assert mail["From"] == "shop@example.com" and mail["To"] == "b@example.com"
        assert ACCOUNT in mail.get_content()
        assert shop.mail.send_due(now=now + 86400).sent == 0
        assert len(mails(inbox)) == 1
    finally:
        shop.close()
        if server is not None:
            server.terminate()
            server.wait(10)


def test_the_smtp_password_never_shows_in_errors_or_reprs(tmp_path):
    from ecshop.errors import ConfigError
    from ecshop.mailer import SmtpMailer
    from ecshop.redact import mask

    for bad in ("http://user:s3cret@mail.example.com", "smtp://user:s3cret@mail:port",
                "smtp://user:s3cret@"):  # fmt: skip
        with pytest.raises(ConfigError) as info:
            load_config({"ECSHOP_SMTP_URL": bad})
        assert "s3cret" not in info.value.message and "ECSHOP_SMTP_URL" in info.value.message
    url = "smtp://user:s3cret@mail.example.com:587?starttls=1"
    config = load_config({"ECSHOP_SMTP_URL": url})
    assert "s3cret" not in repr(config)
    mailer = SmtpMailer(url, "shop@example.com")
    assert (mailer.port, mailer.starttls, mailer.password) == (587, True, "s3cret")
    assert (
        "s3cret" not in repr(mailer)
        and mask(url) == "smtp://user:***@mail.example.com:587?starttls=1"
    )


def test_the_owners_template_replaces_the_shops_own_file_by_file(db_url, tmp_path):
    open_store(db_url).migrate()
    own = tmp_path / "templates" / "ja"
    own.mkdir(parents=True)
    (own / "order_received.txt").write_text(
        "Subject: $shop_name より: $number\n\nお振込先 $instructions / 税 $taxes\n", "utf-8"
    )
    shop = make_shop(db_url, tmp_path, ECSHOP_MAIL_DIR=str(tmp_path / "mail"),
                     ECSHOP_MAIL_TEMPLATES=str(tmp_path / "templates"))  # fmt: skip
    try:
        catalog.create_product(shop.store, shop.stock, {"sku": "MUG", "name": "Mug", "price": 1650,
                               "on_hand": 9}, currency="JPY", actor="test")  # fmt: skip
        body = {"lines": [{"sku": "MUG", "qty": 1}], "customer": {"email": "b@example.com"},
                "gateway": "bank_transfer"}  # fmt: skip
        result = shop.checkout.place(body, gateways=shop.gateways, idempotency_key=None)
        shop.flow.start(result.order, result.lines)
        number = result.order["number"]
        shop.orders.mark_paid(number, amount=2150, payment_id=None, actor="admin", reason="paid",
                              move="mark_paid")  # fmt: skip
        assert shop.mail.send_due().sent == 2
        received, paid = sorted(mails(tmp_path / "mail"), key=lambda m: "入金" in m["Subject"])
        assert received["Subject"] == f"Ocha Shop より: {number}"
        assert received.get_content() == (
            f"お振込先 Transfer 2,150 JPY to {ACCOUNT}, reference {number}. "
            "/ 税 10%対象 2,150円 (内消費税 195円)\n"
        )
        assert paid["Subject"] == f"[Ocha Shop] ご入金を確認しました (注文番号 {number})"
    finally:
        shop.close()


def test_two_senders_never_take_the_same_mail(shop, tmp_path):
    from ecshop.mailer import build_sender

    place(shop)
    other = build_sender(shop.config, shop.store, shop.hooks)
    [row] = shop.mail.due(time.time(), 10)
    now = time.time()
    assert shop.mail._claim(row, now) and not other._claim(row, now)
    assert other.send_due(now=now).sent == 0
    assert other.send_due(now=now + 3600).sent == 1  # the first one died holding it
    assert len(mails(tmp_path / "mail")) == 1
