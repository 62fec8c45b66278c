"""A spike on the storefront: nginx with the deployment kit's site in front of ``ecshop
serve --workers 2`` on the embedded default (SQLite), and the sandbox gateway as its own
process.

Visitors ask for catalog and product pages at 20 times the rate the shop served in a
short calibration, while buyers check out through nginx and pay on the gateway's page.
Only so many of them wait for an answer at once (see QUEUE_SECONDS); an arrival that
finds them all waiting is counted as not sent, so the requests actually sent follow what
the shop answers, and the figures say how many that was.
The gateway's notifications reach the shop through nginx as well (HTTPS, as a
provider's do), queued behind the flood. With ECSHOP_SHED_QUEUE_MS at 300 the shop sheds
storefront requests, and its promises hold all the same: every notification is answered
2xx and applied once, nothing answers 500, a shed page says why and when to come back,
and stock adds up.

Slow (left out by default); the figures are printed:
``./scripts/test.sh tests/e2e/test_spike.py -m slow -s``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ecshop.testing.sandbox import SandboxGatewayProcess
from ecshop.testing.servers import free_port
from tests.deploy.conftest import Serve, system_binary
from tests.deploy.nginx import Nginx
from tests.e2e._flood import PACE, Front, buy, visit
from tests.e2e.test_checkout_flow import wait_for

pytestmark = pytest.mark.slow

SHED_MS = 300
SPIKE = 20  # times the calibrated rate
SECONDS = 15  # of spike
PROCESSES = 2  # visitor processes (the machine has two cores, shared with the shop)
# Visitors waiting for an answer at once, at most: as many as the shop answers in
# QUEUE_SECONDS at its calibrated rate (the queue in front of it is then ten times
# ECSHOP_SHED_QUEUE_MS), and never more than VISITORS: nginx's single worker, the client
# processes and the shop share two cores, and past that the test measures them.
QUEUE_SECONDS = 3
VISITORS = 2000
# visitors, and seconds counted after one of warm-up (connections, first pages): enough
# visitors to keep the workers busy, not enough to queue past ECSHOP_SHED_QUEUE_MS
CALIBRATION = (128, 3)
BUYERS = 6
HOT_UNITS = 5  # a product that sells out during the spike
PRODUCTS = [f"P{n:02d}" for n in range(1, 41)]
BUYER_SKUS = ["HOT", "P01", "P02", "P03"]
PATHS = ["/"] * len(PRODUCTS) + [f"/products/{sku}" for sku in [*PRODUCTS, "HOT"]]
ACCESS_LINE = re.compile(r'"(\S+) (\S+) [^"]*" (\d{3}) ')


@dataclass
class Spiked:
    nginx: Nginx
    gateway: SandboxGatewayProcess
    shop: Serve
    admin: dict[str, str]

    def front(self, octet: int) -> Front:
        return Front(self.nginx.https_port, str(self.nginx.cert), octet)

    def admin_get(self, path: str, **params: Any) -> Any:
        resp = requests.get(f"{self.shop.url}{path}", headers=self.admin, params=params,
                            timeout=30)  # fmt: skip
        assert resp.status_code == 200, resp.text
        return resp.json()

    def orders(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        after = None
        while True:
            page = self.admin_get("/api/v1/admin/orders", limit=500,
                                  **({"after": after} if after else {}))  # fmt: skip
            found.update((o["number"], o) for o in page["items"])
            if not (after := page["next_after"]):
                return found

    def metrics(self) -> Counter[str]:
        """``name{labels}`` → value of every ``ecshop_`` sample (all workers')."""
        text = requests.get(f"{self.shop.url}/metrics", timeout=30).text
        samples: Counter[str] = Counter()
        for line in text.splitlines():
            if line.startswith("ecshop_"):
                name, value = line.rsplit(" ", 1)
                samples[name] = int(float(value))
        return samples

    def pending_deliveries(self) -> int:
        health = requests.get(f"{self.gateway.url}/healthz", timeout=30).json()
        return int(health["pending_deliveries"])


@pytest.fixture
def spiked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Spiked]:
    system_binary("nginx", "nginx")
    shop_port = free_port()
    # two connections per waiting visitor (theirs and nginx's to the shop), and room for
    # the buyers and the gateway
    nginx = Nginx(tmp_path / "nginx", shop_port, connections=2 * VISITORS + 500)
    # NOTE: the gateway posts its notifications to nginx over HTTPS and trusts the test
    # certificate, as a provider trusts a public one.
    monkeypatch.setenv("SSL_CERT_FILE", str(nginx.cert))
    started: list[Any] = [SandboxGatewayProcess(directory=tmp_path).start()]
    gateway = started[0]
    token = secrets.token_hex(16)
    env = {
        "ECSHOP_DATABASE_URL": f"sqlite:///{tmp_path}/data/shop.db",
        "ECSHOP_SECRET_KEY": secrets.token_hex(32),
        "ECSHOP_ADMIN_TOKEN": token,
        "ECSHOP_BASE_URL": f"https://127.0.0.1:{nginx.https_port}",
        "ECSHOP_GATEWAY_SANDBOX_URL": gateway.url,
        "ECSHOP_GATEWAY_SANDBOX_SECRET": gateway.secret,
        "ECSHOP_SHED_QUEUE_MS": str(SHED_MS),
        # no reconciler: a payment the notifications did not settle stays pending_payment
        "ECSHOP_RECONCILE_INTERVAL": "0",
    }
    try:
        started.append(Serve(env, shop_port, tmp_path, workers=2).start())
        started.append(nginx.start())
        stack = Spiked(nginx, gateway, started[1], {"Authorization": f"Bearer {token}"})
        for sku in [*PRODUCTS, "HOT"]:
            made = requests.post(f"{stack.shop.url}/api/v1/admin/products", headers=stack.admin,
                                 json={"sku": sku, "name": f"Product {sku}", "price": 1200,
                                       "on_hand": HOT_UNITS if sku == "HOT" else 1000},
                                 timeout=30)  # fmt: skip
            assert made.status_code == 201, made.text
        yield stack
    finally:
        for proc in reversed(started):
            proc.stop()


def tally(found: list[dict[str, Any]]) -> dict[str, Any]:
    """The visitor processes' results added up."""
    statuses: Counter[str] = Counter()
    timed: Counter[str] = Counter()
    for part in found:
        statuses.update(part["statuses"])
        timed.update(part["timed"])
    return {
        "arrived": sum(p["arrived"] for p in found),
        "sent": sum(p["sent"] for p in found),
        "served": statuses["200"],
        "shed": statuses["503"],
        "statuses": statuses,
        "timed": timed,
        "unreadable": [u for p in found for u in p["unreadable"]],
        "connections": sum(p["connections"] for p in found),
        "cpu_seconds": round(sum(p["cpu_seconds"] for p in found), 1),
    }


def calibrate(stack: Spiked) -> dict[str, Any]:
    """The shop's own rate: pages served a second to visitors that keep it busy."""
    visitors, seconds = CALIBRATION
    per = visitors // PROCESSES
    with ProcessPoolExecutor(max_workers=PROCESSES) as pool:
        jobs = [pool.submit(visit, stack.front(30 + i), PATHS, per * PACE, 1 + seconds, per,
                            i, warmup=1) for i in range(PROCESSES)]  # fmt: skip
        found = tally([job.result() for job in jobs])
    assert set(found["statuses"]) <= {"200", "503"}, found["statuses"]
    assert found["timed"]["200"] > 0, found
    found["rate"] = found["timed"]["200"] / seconds
    return found


def spike(stack: Spiked, rate: float, visitors: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Visitors at ``rate`` a second, at most ``visitors`` waiting at once, and the
    buyers, all for SECONDS."""
    with ProcessPoolExecutor(max_workers=PROCESSES + 1) as pool:
        buyers = pool.submit(buy, stack.front(20), stack.gateway.url, BUYER_SKUS, SECONDS, BUYERS)
        jobs = [pool.submit(visit, stack.front(10 + i), PATHS, rate / PROCESSES, SECONDS,
                            visitors // PROCESSES, i) for i in range(PROCESSES)]  # fmt: skip
        found = tally([job.result() for job in jobs])
    return {**found, "visitors": visitors}, buyers.result()


def gateway_record(stack: Spiked) -> dict[str, Any]:
    """What the gateway raised, tried and captured, once its deliveries are all done."""
    return {
        "events": stack.gateway.api("GET", "/v1/events?limit=100000")["items"],
        "attempts": stack.gateway.api("GET", "/v1/deliveries?limit=100000")["items"],
        "ledger": {p["order"]: p for p in stack.gateway.ledger()},
    }


def check_notifications(stack: Spiked, placed: dict[str, Any], record: dict[str, Any]) -> None:
    """Every notification the gateway raised was answered 2xx and applied, once."""
    events, attempts, ledger = record["events"], record["attempts"], record["ledger"]
    # NOTE: an attempt the shop did not answer within the gateway's timeout (queued
    # behind the flood) is retried, and is no refusal; any answer must be a 2xx.
    answers = Counter((a["outcome"], a["http_status"], a["error"]) for a in attempts)
    assert all(
        (outcome == "delivered" and 200 <= status < 300)
        or (outcome == "error" and error.startswith("TimeoutError"))
        for outcome, status, error in answers
    ), answers
    delivered = {a["event_id"] for a in attempts if a["outcome"] == "delivered"}
    assert delivered == {e["id"] for e in events}, "a notification was never delivered"
    assert set(ledger) == set(placed), "a payment is missing from the ledger, or one too many"
    assert [e["type"] for e in events] == ["payment.succeeded"] * len(ledger)
    orders = stack.orders()
    assert {n: o["status"] for n, o in orders.items()} == dict.fromkeys(ledger, "paid")
    for number in ledger:
        order = stack.admin_get(f"/api/v1/admin/orders/{number}")
        assert [p["type"] for p in order["payments"]] == ["payment.succeeded"], order
        assert order["paid_amount"] == order["total"] == ledger[number]["amount"]


def check_stock(stack: Spiked, placed: dict[str, Any]) -> None:
    """Paid orders hold their units, nothing is held or oversold, and the audit agrees."""
    sold = Counter(entry["sku"] for entry in placed.values())
    levels = {item["sku"]: item for item in stack.admin_get("/api/v1/admin/stock", limit=500)["items"]}  # fmt: skip
    for sku, level in levels.items():
        assert level["held"] == 0 and level["sold_unshipped"] == sold[sku], level
        assert level["on_hand"] == (HOT_UNITS if sku == "HOT" else 1000), level
        assert level["on_hand"] == level["available"] + level["sold_unshipped"], level
    audit = subprocess.run([sys.executable, "-m", "ecshop.cli", "stock", "audit"],
                           env={**os.environ, **stack.shop.env}, cwd=stack.shop.directory,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr


def front_door(stack: Spiked) -> tuple[Counter[str], list[tuple[str, str, str]]]:
    """nginx's answers by status, and those that break a promise: a 5xx other than the
    shop's 503, or a 503 on /payments/."""
    answered: Counter[str] = Counter()
    broken = []
    for method, uri, status in ACCESS_LINE.findall(stack.nginx.access_log()):
        answered[status] += 1
        if (status >= "500" and status != "503") or (
            status == "503" and uri.startswith("/payments/")
        ):
            broken.append((method, uri, status))
    return answered, broken


def notifications(metrics: Counter[str], outcome: str) -> int:
    """The sandbox notifications the shop counted with ``outcome`` (applied, duplicate…)."""
    return metrics[
        f'ecshop_payment_notifications_total{{gateway="sandbox",outcome="{outcome}",reason=""}}'
    ]


def figures(calibrated: dict[str, Any], flood: dict[str, Any], bought: list[dict[str, Any]],
            record: dict[str, Any], metrics: Counter[str], answered: Counter[str]) -> dict[str, Any]:  # fmt: skip
    """What the run did, to print: the calibration, the spike, the checkouts, the
    notifications and nginx's answers."""
    rate = calibrated["rate"]
    attempts = Counter(a["outcome"] for a in record["attempts"])
    return {
        "shed_queue_ms": SHED_MS,
        "calibration": {
            "seconds": CALIBRATION[1],
            "visitors": CALIBRATION[0],
            "served": calibrated["timed"]["200"],
            "shed": calibrated["timed"]["503"],
            "pages_per_s": round(rate),
        },
        "spike": {
            "seconds": SECONDS,
            "demand_per_s": round(SPIKE * rate),
            "visitors_at_once": flood["visitors"],
            "arrived": flood["arrived"],
            "sent": flood["sent"],
            "not_sent_all_visitors_waiting": flood["arrived"] - flood["sent"],
            "served": flood["served"],
            "shed": flood["shed"],
            "sent_per_s": round(flood["sent"] / SECONDS),
            "served_per_s": round(flood["served"] / SECONDS),
            "sent_times_calibrated": round(flood["sent"] / SECONDS / rate, 2),
            "connections": flood["connections"],
            "client_cpu_s": flood["cpu_seconds"],
        },
        "checkouts": {
            "tried": len(bought),
            "placed": sum("number" in b for b in bought),
            "sold_out": sum(b["statuses"][-1] == 409 for b in bought),
            "shed_and_sent_again": sum(b["statuses"].count(503) for b in bought),
        },
        "notifications": {
            "raised": len(record["events"]),
            "attempts": sum(attempts.values()),
            "delivered_2xx": attempts["delivered"],
            "unanswered_attempts": attempts["error"],
            "applied": notifications(metrics, "applied"),
            "duplicates": notifications(metrics, "duplicate"),
        },
        "paid_in_ledger": len(record["ledger"]),
        "nginx_statuses": dict(answered),
    }


def test_a_storefront_spike_sheds_pages_and_loses_no_payment(spiked: Spiked) -> None:
    calibrated = calibrate(spiked)
    visitors = min(VISITORS, max(100 * PROCESSES, round(QUEUE_SECONDS * calibrated["rate"])))
    flood, bought = spike(spiked, SPIKE * calibrated["rate"], visitors)
    # Let the gateway finish every delivery, retries included (a bound, not a timing).
    drained = wait_for(lambda: spiked.pending_deliveries() == 0, timeout=60)
    record = gateway_record(spiked)
    metrics = spiked.metrics()
    answered, broken = front_door(spiked)
    line = json.dumps(figures(calibrated, flood, bought, record, metrics, answered))
    print(f"\nspike figures: {line}")

    # Visitors: a page, or a readable 503 page with Retry-After; every one answered.
    assert set(flood["statuses"]) <= {"200", "503"}, flood["statuses"]
    assert flood["unreadable"] == []
    assert flood["shed"] > 0, "nothing was shed: the test did not spike"
    # Buyers: a shed checkout (a JSON 503 with Retry-After) was sent again until it was
    # placed or found the product sold out; every placed order was paid on the gateway.
    assert [b["unreadable"] for b in bought if b["unreadable"]] == []
    assert all(set(b["statuses"][:-1]) <= {503} for b in bought), bought
    assert {b["statuses"][-1] for b in bought} <= {200, 201, 409}, bought
    placed = {b["number"]: b for b in bought if "number" in b}
    assert placed, "no checkout was placed during the spike"
    assert {b["paid"] for b in placed.values()} == {303}
    # Payments: none refused, shed, lost or applied twice.
    assert drained, "the gateway still had deliveries to make"
    check_notifications(spiked, placed, record)
    assert notifications(metrics, "applied") == len(placed)
    # Nothing answered 500, and every 503 was the shop shedding a storefront request.
    assert broken == []
    assert [k for k, v in metrics.items() if 'status="500"' in k and v] == []
    shed_checkouts = sum(b["statuses"].count(503) for b in bought)
    assert metrics["ecshop_shed_requests_total"] == (
        calibrated["shed"] + flood["shed"] + shed_checkouts
    )
    check_stock(spiked, placed)
