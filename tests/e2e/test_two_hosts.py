"""Past one machine: two shop hosts (two ``ecshop serve``-style gunicorn instances, each
with its own port and data folder) share one MariaDB and one Redis behind the deployment
kit's nginx site, with both hosts in its upstream.

A flash sale through the front sells exactly its stock across both hosts; exactly one
reconciler leads while both run, and when its host is killed the other host's takes
over once the lease runs out.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests

from ecshop.reconcile import LEASE, lease_holder
from ecshop.store import open_store
from ecshop.testing.servers import free_port
from ecshop.testing.shop import ShopProcess
from tests.deploy.nginx import FromAddress, Nginx

pytestmark = pytest.mark.slow

PLUGINS = str(Path(__file__).resolve().parents[2] / "plugins")
STOCK = 40
CLIENTS = 8
TRIES = 20  # checkouts per client: 160 tries for 40 units
WAIT = 90  # bound on any wait: turns a hang into a failure, times nothing


def _buyer(front: str, cert: str, address: str, tries: int,
           results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]  # fmt: skip
    """One client process from its own address (the front limits requests per client
    address): ``tries`` checkouts of one unit, each on a fresh connection."""
    http = requests.Session()
    http.mount("https://", FromAddress(address))
    outcomes = []
    for _ in range(tries):
        try:
            resp = http.post(
                f"{front}/api/v1/checkout", verify=cert, timeout=60,
                headers={"Idempotency-Key": uuid.uuid4().hex, "Connection": "close"},
                json={"lines": [{"sku": "HOT", "qty": 1}], "gateway": "bank_transfer",
                      "customer": {"email": "buyer@example.com"}},
            )  # fmt: skip
            number = resp.json().get("number") if resp.status_code == 201 else None
            outcomes.append((resp.status_code, number))
        except requests.RequestException as exc:
            outcomes.append((0, type(exc).__name__))
    results.put(outcomes)


def _until(predicate, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while not (value := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return value


def _passes(shop: ShopProcess) -> float:
    """Reconciler passes this host made, from its own /metrics."""
    text = requests.get(f"{shop.url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ecshop_reconcile_passes_total{"))  # fmt: skip


def _host_of(holder: str, shops: list[ShopProcess]) -> ShopProcess | None:
    """The host whose worker holds the lease (``hostname:pid:thread``)."""
    pid = int(holder.split(":")[1])
    found = [shop for shop in shops if pid in shop.worker_pids()]
    return found[0] if found else None


def _kill_host(shop: ShopProcess) -> None:
    """The host dies: its master and workers at once, with no chance to clean up."""
    assert shop.proc is not None
    for pid in (*shop.worker_pids(), shop.proc.pid):
        os.kill(pid, signal.SIGKILL)
    shop.proc.wait(WAIT)
    shop.proc = None


def test_two_hosts_sell_exactly_the_stock_and_hand_over_the_reconciler(
    mysql_url, redis_url, store, tmp_path
):
    token = secrets.token_hex(16)
    shared = {
        "ECSHOP_DATABASE_URL": mysql_url, "ECSHOP_REDIS_URL": redis_url,
        "ECSHOP_ADMIN_TOKEN": token, "ECSHOP_SECRET_KEY": secrets.token_hex(32),
        "ECSHOP_PLUGINS_DIR": PLUGINS, "ECSHOP_CHECKOUT_RATE_LIMIT": "0",
        "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": "Example Bank 123-4567",
        "ECSHOP_RECONCILE_INTERVAL": "0.5",
    }  # fmt: skip
    shops = []
    for name in ("host-a", "host-b"):
        (tmp_path / name).mkdir()
        shops.append(ShopProcess(env={**shared, "ECSHOP_DATA_DIR": str(tmp_path / name)},
                                 port=free_port(), log_path=tmp_path / name / "shop.log"))  # fmt: skip
    front = None
    try:
        for shop in shops:
            shop.start()
        site = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "ecshop.conf"
        # the kit's upstream with the second host after the first (render sets the first)
        both = f"server 127.0.0.1:8000; server 127.0.0.1:{shops[1].port};"
        front = Nginx(tmp_path / "nginx", shops[0].port,
                      site=site.read_text().replace("server 127.0.0.1:8000;", both)).start()  # fmt: skip
        base, cert = f"https://127.0.0.1:{front.https_port}", str(front.cert)
        added = requests.post(f"{shops[0].url}/api/v1/admin/products", timeout=30,
                              headers={"Authorization": f"Bearer {token}"},
                              json={"sku": "HOT", "name": "Hot", "price": 1000, "on_hand": STOCK})  # fmt: skip
        assert added.status_code == 201, added.text

        # exactly one reconciler leads while both hosts run
        holder = _until(lambda: lease_holder(store, LEASE), "no reconciler took the lease")
        leader = _host_of(holder[0], shops)
        assert leader is not None, holder
        other = shops[1] if leader is shops[0] else shops[0]

        # the flash sale, through the front to both hosts
        results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        buyers = [multiprocessing.Process(target=_buyer,
                                          args=(base, cert, f"127.0.0.{10 + n}", TRIES, results))
                  for n in range(CLIENTS)]  # fmt: skip
        for buyer in buyers:
            buyer.start()
        outcomes = [item for _ in buyers for item in results.get(timeout=300)]
        for buyer in buyers:
            buyer.join(WAIT)
        statuses = [status for status, _ in outcomes]
        sold = [number for status, number in outcomes if status == 201]
        assert len(outcomes) == CLIENTS * TRIES
        assert set(statuses) <= {201, 409}, sorted(set(statuses))
        assert len(sold) == STOCK and len(set(sold)) == STOCK
        served = [shop.log_text().count('"POST /api/v1/checkout') for shop in shops]
        assert all(served), f"one host took no checkout: {served}"
        with store.read() as tx:
            assert tx.scalar("SELECT COUNT(*) FROM orders WHERE status = 'accepted'") == STOCK
        audit = shops[0].run_cli("stock", "audit", check=False)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        levels = requests.get(f"{shops[1].url}/api/v1/admin/stock", timeout=30,
                              headers={"Authorization": f"Bearer {token}"}).json()["items"]  # fmt: skip
        [hot] = [item for item in levels if item["sku"] == "HOT"]
        assert hot["available"] == 0 and hot["on_hand"] == STOCK
        # only the leader made passes; the lease never moved
        assert _passes(leader) > 0 and _passes(other) == 0
        assert lease_holder(store, LEASE)[0] == holder[0]  # type: ignore[index]

        # the leader's host dies; the other host leads once the lease runs out
        _kill_host(leader)
        taken = _until(lambda: (h := lease_holder(store, LEASE)) and h[0] != holder[0] and h,
                       "the other host never took the lease")  # fmt: skip
        assert _host_of(taken[0], [other]) is other
        print(f"two hosts: {len(outcomes)} checkouts tried, {len(sold)} sold of {STOCK}, "
              f"checkouts served per host {served}, lease {holder[0]} -> {taken[0]}")  # fmt: skip
        before = _passes(other)
        _until(lambda: _passes(other) > before, "the new leader made no pass")
        # the front still sells through the host that is left
        resp = requests.get(f"{base}/api/v1/products/HOT", verify=cert, timeout=30)
        assert resp.status_code == 200 and resp.json()["available"] == 0
    finally:
        if front is not None:
            front.stop()
        for shop in shops:
            shop.stop()


@pytest.fixture
def store(mysql_url):  # type: ignore[no-untyped-def]
    opened = open_store(mysql_url)
    yield opened
    opened.close()
