"""The reply to a notification, through gunicorn: the gateway words it, the shop keeps
the one rule that matters to the provider (no 2xx for what was not journaled)."""

from __future__ import annotations

from pathlib import Path

PLUGIN = '''
from ecshop.errors import SignatureError
from ecshop.payments.base import Gateway, NotificationReply, PaymentStart

NAME = "repliers"
VERSION = "1.0"


class AlwaysOK(Gateway):
    """Answers OK to everything: it would stop the provider retrying what was refused."""

    name = "alwaysok"

    def start_payment(self, order, *, notify_url, return_url):
        return PaymentStart(redirect_url="http://127.0.0.1:9/pay")

    def parse_request(self, request):
        raise SignatureError("never genuine: " + request.query.get("why", "?"))

    def notification_reply(self, outcome):
        return NotificationReply.text("OK")


class Broken(AlwaysOK):
    name = "broken"

    def notification_reply(self, outcome):
        raise RuntimeError("no reply today")


def register(host):
    host.add_gateway(AlwaysOK)
    host.add_gateway(Broken)
'''


def test_a_reply_of_ok_to_a_refused_notification_is_replaced_by_a_4xx(make_stack, tmp_path: Path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "repliers.py").write_text(PLUGIN)
    stack = make_stack("embedded", ECSHOP_PLUGINS_DIR=str(plugins))
    for gateway in ("alwaysok", "broken"):
        resp = stack.http.post(f"{stack.shop.url}/payments/{gateway}/notify?why=query-seen",
                               data=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert error["code"] == "invalid_notification"
        assert error["message"] == "never genuine: query-seen"  # the query reached the gateway
    log = stack.shop.log_tail()
    assert "gateway alwaysok: notification_reply answers 200 to a refused notification" in log
    assert "gateway broken: notification_reply failed" in log
