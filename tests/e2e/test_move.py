"""A shop moves from the embedded default (SQLite) to MariaDB + Redis on another host,
with members and orders in flight, as docs/move.md tells the owner to do it: every
payment the gateway captured ends paid on the new shop, its stock audits clean, and the
members log in there with their old passwords.

The shop's public address is a front door (``tests/e2e/frontdoor.py``) pointed at the
old host, at nothing while it switches, then at the new host: the gateway's notify URLs
and the customers' return links name it, as they name the shop's DNS name in a move.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from ecshop.members import Members
from ecshop.sandbox.protocol import sign_query
from ecshop.store import open_store
from ecshop.testing.shop import ShopProcess
from ecshop.throttle import Throttle
from tests.e2e.conftest import Stack
from tests.e2e.frontdoor import FrontDoor
from tests.e2e.test_checkout_flow import wait_for

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
PASSWORDS = {"hanako@example.com": "correct horse battery", "taro@example.com": "staple 9 wagon"}
ADDRESS = {"email": "hanako@example.com", "name": "山田花子", "phone": "0312345678",
           "postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区",
           "line1": "千代田1-1", "line2": ""}  # fmt: skip


class Browser:
    """A customer's browser on the shop's public address: cookies, CSRF tokens, forms."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers.update({"Accept": "text/html", "Accept-Language": "en"})

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=30)

    def submit(self, page: str, action: str, fields: dict[str, str]) -> requests.Response:
        """Open ``page`` and post its form to ``action`` (with the page's CSRF token)."""
        shown = self.get(page)
        token = CSRF.search(shown.text)
        assert token, (page, shown.status_code, shown.text[:300])
        return self.http.post(self.base + action, data={"csrf_token": token.group(1), **fields},
                              allow_redirects=False, timeout=30)  # fmt: skip

    def log_in(self, email: str, password: str) -> requests.Response:
        return self.submit("/account/login", "/account/login",
                           {"email": email, "password": password})  # fmt: skip

    def buy(self, sku: str, qty: int) -> str:
        """Fill the cart, check out with the sandbox; the gateway's pay link."""
        assert self.submit("/", "/cart/add", {"sku": sku, "qty": str(qty)}).status_code == 303
        placed = self.submit("/checkout", "/checkout", {**ADDRESS, "gateway": "sandbox"})
        assert placed.headers.get("location") == "/checkout/review", placed.text[:300]
        review = self.get("/checkout/review")
        key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', review.text)
        assert key, review.text[:300]
        token = CSRF.search(review.text)
        assert token
        handoff = self.http.post(self.base + "/checkout/place", timeout=30, allow_redirects=False,
                                 data={"csrf_token": token.group(1), "idempotency_key": key.group(1)})  # fmt: skip
        link = re.search(r'id="continue" href="([^"]+)"', handoff.text)
        assert link, handoff.text[:300]
        return html.unescape(link.group(1))


def pay(gateway_url: str, link: str, **changes: str) -> requests.Response:
    """Press Pay on the gateway's page for ``link``; the 303 back to the shop is not followed.
    ``changes`` alter the link's fields (signed again with ``secret``)."""
    fields = dict(parse_qsl(urlsplit(link).query))
    secret = changes.pop("secret", "")
    if changes:
        fields.pop("sig")
        fields.update(changes)
        fields["sig"] = sign_query(fields, secret)
    return requests.post(f"{gateway_url}/pay", data={**fields, "action": "pay"},
                         allow_redirects=False, timeout=30)  # fmt: skip


def number_of(link: str) -> str:
    return dict(parse_qsl(urlsplit(link).query))["order"]


def counts(url: str) -> dict[str, int]:
    store = open_store(url)
    try:
        with store.read() as tx:
            return {t: int(tx.scalar(f"SELECT COUNT(*) FROM {t}")) for t in ("members", "orders")}
    finally:
        store.close()


@pytest.fixture
def door():
    front = FrontDoor().start()
    yield front
    front.stop()


@pytest.fixture
def new_host(tmp_path):
    """The new host's shop process (started by the test, stopped here)."""
    made = []

    def make(env: dict[str, str]) -> ShopProcess:
        made.append(ShopProcess(env=env, log_path=tmp_path / "new-shop.log"))
        return made[-1]

    yield make
    for shop in made:
        shop.stop()


def test_a_shop_moves_to_mariadb_and_redis_and_loses_no_payment(
    make_stack, door, new_host, tmp_path, mysql_url, redis_url
):
    # -- the old shop, on SQLite, at the shop's address ------------------------------
    old = make_stack("embedded", {"retry_base_ms": 50, "retry_budget": 20},
                     ECSHOP_BASE_URL=door.url)  # fmt: skip
    door.point_at(old.shop.url)
    gateway = old.gateway
    old.add_product("TEA", 1200, 50)
    old.add_product("MUG", 800, 20)
    hanako = Browser(door.url)
    fields = {"email": "hanako@example.com", "password": PASSWORDS["hanako@example.com"]}
    made = hanako.submit("/account/register", "/account/register", {**fields, "name": "山田花子"})
    assert made.headers.get("location") == "/account", made.text[:300]
    store = open_store(old.store_url)
    Members(store, Throttle(store)).register("taro@example.com", PASSWORDS["taro@example.com"])
    store.close()
    members_order = number_of(link := hanako.buy("MUG", 1))
    assert pay(gateway.url, link).status_code == 303
    paid_before = old.settled([("TEA", 2)], "pay", "paid")["number"]
    declined = old.settled([("MUG", 1)], "decline", "cancelled")["number"]
    links = {name: old.checkout(lines).json()["payment"]["redirect_url"] for name, lines in [
        ("on_the_page", [("TEA", 1)]), ("abandoned", [("MUG", 2)]), ("in_window", [("TEA", 1)]),
        ("while_switching", [("TEA", 1)]), ("stale_dns", [("TEA", 1)])]}  # fmt: skip
    assert requests.get(links["on_the_page"], timeout=30).status_code == 200  # pending there
    # A payment whose notification the gateway loses for good.
    gateway.switches["drop"] = 1.0
    gateway.restart()
    lost = old.checkout([("TEA", 3)]).json()
    assert pay(gateway.url, lost["payment"]["redirect_url"]).status_code == 303
    assert wait_for(lambda: gateway.api("GET", f"/v1/deliveries?order={lost['number']}")["items"])
    gateway.switches["drop"] = 0.0
    gateway.restart()
    assert wait_for(lambda: old.order(members_order)["status"] == "paid")
    assert old.order(lost["number"])["status"] == "pending_payment"

    # -- the window: maintenance on, backup ------------------------------------------
    assert old.cli("maintenance", "on", "--message", "Moving house").returncode == 0
    assert wait_for(lambda: requests.get(door.url + "/", timeout=30).status_code == 503)
    done = old.cli("backup", "--dir", str(tmp_path / "backups"))
    assert done.returncode == 0, done.stderr
    [backup] = (tmp_path / "backups").glob("ecshop-*.jsonl.gz")
    # A customer still on the gateway's page pays: the notification lands on the old
    # shop, in maintenance, which journals it.
    in_window = number_of(links["in_window"])
    assert pay(gateway.url, links["in_window"]).status_code == 303
    assert wait_for(lambda: old.order(in_window)["status"] == "paid")
    # The address is switching: a payment's notification finds no shop and is retried.
    door.point_at(None)
    assert pay(gateway.url, links["while_switching"]).status_code == 303

    # -- the new host: migrate, restore, start, cutover -------------------------------
    # The same configuration (secret key, base URL, gateway), another database.
    env = {**old.shop.env, "ECSHOP_DATABASE_URL": mysql_url, "ECSHOP_REDIS_URL": redis_url}
    new = Stack(new_host(env), gateway, old.admin_token, mysql_url, requests.Session())
    assert new.cli("migrate").returncode == 0
    done = new.cli("restore", str(backup))
    assert done.returncode == 0, done.stdout + done.stderr
    new.shop.start()
    door.point_at(new.shop.url)
    # It comes up as it was backed up: in maintenance, payments open.
    assert requests.get(door.url + "/", timeout=30).status_code == 503
    assert requests.get(door.url + "/healthz", timeout=30).status_code == 200

    # -- after: carry the old journal, customers pay, the reconciler asks -----------
    carried = tmp_path / "journal-1.jsonl.gz"
    done = old.cli("journal", "export", str(carried), "--after-backup", str(backup))
    assert done.returncode == 0 and "exported 1 " in done.stdout, done.stdout + done.stderr
    done = new.cli("journal", "replay", str(carried))
    assert done.returncode == 0, done.stdout + done.stderr
    one_tea = new.order(in_window)["total"]  # shipping included
    assert f"order {in_window} payment.succeeded {one_tea} JPY -> paid" in done.stdout
    assert new.order(in_window)["status"] == "paid"
    # The customer who was on the page pays now; the answer reaches the new shop, and
    # the link back, signed by the old host, opens there (the same secret key).
    on_the_page = number_of(links["on_the_page"])
    back = pay(gateway.url, links["on_the_page"])
    assert back.status_code == 303 and back.headers["location"].startswith(door.url)
    assert wait_for(lambda: new.order(on_the_page)["status"] == "paid")
    assert requests.get(back.headers["location"], timeout=30).status_code == 200
    # A gateway whose DNS cache still holds the old address: the old shop journals it.
    stale = number_of(links["stale_dns"])
    assert pay(gateway.url, links["stale_dns"], secret=gateway.secret,
               notify_url=f"{old.shop.url}/payments/sandbox/notify").status_code == 303  # fmt: skip
    assert wait_for(lambda: old.order(stale)["status"] == "paid")
    # The new shop's reconciler asks the gateway about every pending order: it settles
    # the lost notification and the stale one without any journal carried.
    done = new.cli("reconcile", "--once", env={"ECSHOP_RECONCILE_GRACE": "0"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert new.order(lost["number"])["status"] == "paid"
    assert new.order(stale)["status"] == "paid"
    # Once no one reaches the old host any more, it stops; its journal is carried again.
    old.shop.stop()
    carried = tmp_path / "journal-2.jsonl.gz"
    done = old.cli("journal", "export", str(carried), "--after-backup", str(backup))
    assert done.returncode == 0 and "exported 2 " in done.stdout, done.stdout + done.stderr
    done = new.cli("journal", "replay", str(carried))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"order {in_window} payment.succeeded {one_tea} JPY -> duplicate" in done.stdout
    assert f"order {stale} payment.succeeded {one_tea} JPY -> ignored:paid" in done.stdout

    # -- open the new shop, smoke test -----------------------------------------------
    assert new.cli("maintenance", "off").returncode == 0
    done = new.cli("smoke-test", "--base-url", door.url, "--sku", "MUG")
    assert done.returncode == 0, done.stdout + done.stderr
    smoke_order = done.stdout.rsplit("test order ", 1)[1].strip(" )\n")
    while_switching = number_of(links["while_switching"])
    assert wait_for(lambda: new.order(while_switching)["status"] == "paid")
    tried = gateway.api("GET", f"/v1/deliveries?order={while_switching}")["items"]
    assert tried[0]["http_status"] == 503  # found no shop while the address switched
    assert wait_for(lambda: gateway.api("GET", "/healthz")["pending_deliveries"] == 0)

    # -- the checks that prove nothing was lost --------------------------------------
    ledger = {p["order"]: p["amount"] for p in gateway.ledger()}
    paid = {o["number"]: o["paid_amount"] for o in new.orders("paid")}
    assert ledger == paid  # every captured payment is a paid order, and no other
    assert sorted(paid) == sorted([members_order, paid_before, lost["number"], in_window,
                                   while_switching, on_the_page, stale])  # fmt: skip
    assert all(new.order(number)["total"] == amount for number, amount in paid.items())
    assert new.order(declined)["status"] == "cancelled"
    assert new.order(number_of(links["abandoned"]))["status"] == "pending_payment"
    assert new.order(smoke_order)["status"] in ("cancelled", "refunded")
    levels = {sku: (v["on_hand"], v["available"], v["held"], v["sold_unshipped"])
              for sku, v in new.levels().items()}  # fmt: skip
    assert levels == {"TEA": (50, 41, 0, 9), "MUG": (20, 17, 2, 1)}
    audit = new.cli("stock", "audit")
    assert audit.returncode == 0 and "no drift" in audit.stdout, audit.stdout + audit.stderr
    before, after = counts(old.store_url), counts(mysql_url)
    assert after == {"members": before["members"], "orders": before["orders"] + 1} == {
        "members": 2, "orders": 10}  # fmt: skip
    for email, password in PASSWORDS.items():
        member = Browser(door.url)
        assert member.log_in(email, password + "!").status_code == 401
        assert member.log_in(email, password).headers.get("location") == "/account"
        account = member.get("/account")
        assert account.status_code == 200 and email in account.text
        assert (members_order in account.text) == (email == "hanako@example.com")
