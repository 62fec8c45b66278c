"""A deploy loses no request: ``ecshop serve --workers 2`` under load from several client
processes is reloaded twice (HUP) and then upgraded in place (USR2, the new master
serving, the old one stopped). Every request is answered as it would be on a quiet day,
every accepted checkout is in the database, and the stock adds up."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from gunicorn.ctl.client import ControlClient, ControlClientError

from ecshop.store import open_store
from ecshop.testing.servers import free_port
from tests.e2e.conftest import SETUPS

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
WAIT = 60  # bound on any wait: turns a hang into a failure, times nothing
REPLY = 30  # bound on one request: past it the client counts it failed
#: the embedded default on sync workers (ECSHOP_THREADS=1: a request at a time each)
SYNC = "embedded-sync"

#: what the load is told apart by: a request belongs to the phase it started in
PHASES = ("steady", "first HUP", "second HUP", "USR2", "WINCH to the old master",
          "QUIT to the old master", "the new master alone")  # fmt: skip
CLIENTS = 6
PER_CLIENT = 20_000  # requests at most from one client
LOAD_FOR = 150  # seconds at most of load from one client
AT_LEAST = 30  # requests finished in a phase before the next step
#: a client's pause between two requests: it keeps the queue the load itself makes
#: short, even for two sync workers on a busy 2-core machine, so that a request waiting
#: past ECSHOP_SHED_QUEUE_MS (shed: 503) tells of the deploy
PAUSE = 0.01
SKU, ON_HAND = "TEA", CLIENTS * PER_CLIENT  # more than the checkouts can take
KINDS = ("home", "product", "catalog", "checkout")
EXPECTED = {"home": 200, "product": 200, "catalog": 200, "checkout": 201}
PATHS = {"home": "/", "product": f"/products/{SKU}", "catalog": "/api/v1/products",
         "checkout": "/api/v1/checkout"}  # fmt: skip
GATEWAYS = ("bank_transfer", "cod")


class Outcome(NamedTuple):
    """One request as its client saw it; ``status`` 0 when no answer came."""

    phase: int
    kind: str
    status: int
    error: str = ""
    key: str = ""
    number: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status != EXPECTED[self.kind]


# -- the load: client processes, each request on a connection of its own ----------------
def _request(port: int, kind: str, key: str, gateway: str) -> tuple[int, str, str]:
    """``(status, error, order number)`` of one request, made as nginx makes it upstream:
    a fresh connection, closed after the answer, stamped with when it was sent."""
    headers = {"Connection": "close", "X-Request-Id": key,
               "X-Request-Start": f"t={time.time():.3f}"}  # fmt: skip
    body = None
    if kind == "checkout":
        body = json.dumps({"lines": [{"sku": SKU, "qty": 1}], "gateway": gateway,
                           "customer": {"email": "deploy@example.com"}}).encode()  # fmt: skip
        headers |= {"Content-Type": "application/json", "Idempotency-Key": key}
    else:
        headers["Accept"] = "application/json" if kind == "catalog" else "text/html"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REPLY)
    try:
        conn.request("POST" if body else "GET", PATHS[kind], body, headers)
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}", ""
    finally:
        conn.close()
    if resp.status != EXPECTED[kind]:
        return resp.status, data[:300].decode(errors="replace"), ""
    number = str(json.loads(data)["number"]) if kind == "checkout" else ""
    return resp.status, "", number


def _client(index: int, port: int, phase: Any, finished: Any, stop: Any, out: Any) -> None:
    """One client process: requests one after another, round the kinds, until told to
    stop (or its count or time runs out); its outcomes go to ``out`` at the end."""
    outcomes: list[Outcome] = []
    give_up = time.monotonic() + LOAD_FOR
    for n in range(PER_CLIENT):
        if stop.is_set() or time.monotonic() > give_up:
            break
        kind, key = KINDS[(index + n) % len(KINDS)], f"deploy-{index}-{n}-{secrets.token_hex(4)}"
        started_in, started = phase.value, time.monotonic()
        status, error, number = _request(port, kind, key, GATEWAYS[n % len(GATEWAYS)])
        outcomes.append(Outcome(started_in, kind, status, error, key, number,
                                time.monotonic() - started))  # fmt: skip
        with finished.get_lock():
            finished[started_in] += 1
        time.sleep(PAUSE)
    out.put(outcomes)


class Load:
    """:data:`CLIENTS` client processes against 127.0.0.1:``port``, told apart by phase."""

    def __init__(self, port: int) -> None:
        # NOTE: forked, the clients start at once with what this process has imported;
        # it holds no thread, and no connection to the shop.
        context = multiprocessing.get_context("fork")
        self.phase = context.Value("i", 0)
        self.finished = context.Array("i", len(PHASES))
        self.stop_event = context.Event()
        self.out = context.Queue()
        self.clients = [
            context.Process(target=_client, daemon=True, args=(
                i, port, self.phase, self.finished, self.stop_event, self.out))
            for i in range(CLIENTS)
        ]  # fmt: skip
        for client in self.clients:
            client.start()

    def enter(self, phase: str) -> None:
        """Requests started from now on belong to ``phase`` (one of :data:`PHASES`)."""
        self.phase.value = PHASES.index(phase)

    def settle(self) -> None:
        """Wait until :data:`AT_LEAST` requests of the current phase have finished."""
        phase = self.phase.value
        _until(lambda: self.finished[phase] >= AT_LEAST,
               f"{PHASES[phase]}: fewer than {AT_LEAST} requests finished")  # fmt: skip

    def stop(self) -> list[Outcome]:
        self.stop_event.set()
        outcomes = [o for _ in self.clients for o in self.out.get(timeout=WAIT + REPLY)]
        for client in self.clients:
            client.join(WAIT)
        return outcomes

    def kill(self) -> None:
        for client in self.clients:
            if client.is_alive():
                client.kill()
                client.join()


# -- the shop: ecshop serve and its masters ----------------------------------------------
def _until(predicate: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while not (value := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return value


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return {int(p) for p in found.stdout.split() if _running(int(p))}


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    data: Path
    env: dict[str, str]
    admin: dict[str, str]
    #: the gunicorn masters running (two during an upgrade)
    masters: set[int] = field(default_factory=set)

    def pid_file(self, name: str = "gunicorn.pid") -> int | None:
        try:
            return int((self.data / name).read_text())
        except (OSError, ValueError):
            return None

    def workers(self, master: int) -> set[int]:
        """The master's workers (during an upgrade the new master is a child too)."""
        return _children(master) - self.masters

    def serving(self, master: int) -> set[int]:
        """``master``'s workers, once there are two and each serves, as its control
        socket tells (what ``gunicornc -s <data folder>/gunicorn.ctl -c "show workers"``
        prints); empty before that."""
        try:
            with ControlClient(str(self.data / f"gunicorn-{master}.ctl"), timeout=WAIT) as ctl:
                workers = ctl.send_command("show workers")["workers"]
        except ControlClientError:
            return set()  # no control socket yet
        if len(workers) != 2 or not all(w["booted"] for w in workers):
            return set()
        return {w["pid"] for w in workers}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ecshop.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=WAIT)  # fmt: skip

    def log(self) -> str:
        return (self.data.parent / "serve.log").read_text(errors="replace")


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REPLY)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def _stop_master(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + WAIT
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _running(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Served]]:
    """``serve(setup)``: ``ecshop serve --workers 2`` with a data folder of its own, on
    the embedded default or on MariaDB and Redis, with the offline payment methods."""
    started: list[Served] = []

    def start(setup: str) -> Served:
        data, port, token = tmp_path / "data", free_port(), secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECSHOP_")}
        env |= {
            "ECSHOP_ADMIN_TOKEN": token, "ECSHOP_SECRET_KEY": secrets.token_hex(32),
            "ECSHOP_BASE_URL": f"http://127.0.0.1:{port}", "ECSHOP_PLUGINS_DIR": str(PLUGINS),
            "ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT": "Example Bank 123-4567",
            # every client is 127.0.0.1: the limit has its own tests
            "ECSHOP_CHECKOUT_RATE_LIMIT": "0",
        }  # fmt: skip
        if setup in ("embedded", SYNC):
            env["ECSHOP_DATABASE_URL"] = f"sqlite:///{data}/shop.db"  # the data folder: its own
            if setup == SYNC:
                env["ECSHOP_THREADS"] = "1"
        else:
            env |= {"ECSHOP_DATABASE_URL": request.getfixturevalue("mysql_url"),
                    "ECSHOP_REDIS_URL": request.getfixturevalue("redis_url"),
                    "ECSHOP_DATA_DIR": str(data)}  # fmt: skip
        data.mkdir(mode=0o700)
        with open(tmp_path / "serve.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ecshop.cli", "serve", "--bind", f"127.0.0.1:{port}",
                 "--workers", "2"],
                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        served = Served(proc, port, data, env, {"Authorization": f"Bearer {token}"}, {proc.pid})
        started.append(served)

        def ready() -> bool:
            assert proc.poll() is None, served.log()[-3000:]
            return served.pid_file() == proc.pid and bool(served.serving(proc.pid))

        _until(ready, "ecshop serve did not start")
        return served

    yield start
    for served in started:
        for pid in list(served.masters):
            _stop_master(pid)
        if served.proc.poll() is None:
            served.proc.kill()
        served.proc.wait(WAIT)


def _add_product(served: Served) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=REPLY)
    try:
        conn.request("POST", "/api/v1/admin/products", json.dumps(
            {"sku": SKU, "name": "Sencha", "price": 1200, "on_hand": ON_HAND}),
            {**served.admin, "Content-Type": "application/json"})  # fmt: skip
        resp = conn.getresponse()
        assert resp.status == 201, resp.read()
    finally:
        conn.close()


def _summary(outcomes: list[Outcome]) -> str:
    """Per phase: how many requests, the longest one took, and each kind of failure
    with one example."""
    lines = []
    for index, name in enumerate(PHASES):
        mine = [o for o in outcomes if o.phase == index]
        failed = Counter((o.kind, o.status) for o in mine if o.failed)
        longest = max(mine, key=lambda o: o.seconds, default=None)
        took = f"{longest.seconds:.2f}s, {longest.kind} {longest.key}" if longest else "-"
        lines.append(f"{name}: {len(mine)} requests, {sum(failed.values())} failed "
                     f"(the longest: {took})")  # fmt: skip
        for (kind, status), count in failed.most_common():
            example = next(o.error for o in mine if (o.kind, o.status) == (kind, status))
            lines.append(f"  {count} x {kind} -> {status or 'no answer'}: {example[:200]}")
    lines.append(f"in all: {len(outcomes)} requests, {sum(o.failed for o in outcomes)} failed")
    return "\n".join(lines)


# -- the deploy, step by step --------------------------------------------------------------
def _reload(served: Served, master: int) -> None:
    """HUP: new workers start, the old ones finish their requests and go."""
    before = served.workers(master)
    os.kill(master, signal.SIGHUP)
    _until(lambda: (now := served.serving(master)) and not now & before,
           f"new workers never replaced {sorted(before)}")  # fmt: skip


def _start_new_master(served: Served, old: int) -> int:
    """USR2: the old master starts a new one (its child) on the same socket; returns its
    pid once its workers serve beside the old ones."""
    os.kill(old, signal.SIGUSR2)
    # NOTE: gunicorn's new master writes gunicorn.pid.2; it takes gunicorn.pid over
    # once the old master has exited.
    new = _until(lambda: (pid := served.pid_file("gunicorn.pid.2")) not in (None, old) and pid,
                 "no new master after USR2")  # fmt: skip
    served.masters.add(new)
    _until(lambda: served.serving(new), "the new master's workers never served")
    assert served.serving(old), "the old master lost its workers before it was told to"
    return new


def _stop_old_workers(served: Served, old: int) -> None:
    """WINCH: the old master's workers finish their requests and go; the master stays."""
    os.kill(old, signal.SIGWINCH)
    _until(lambda: not served.workers(old), "the old master's workers never stopped")
    assert served.proc.poll() is None


def _quit_old_master(served: Served, old: int, new: int) -> None:
    """QUIT: the old master, left without workers, exits; the new one takes
    gunicorn.pid over."""
    os.kill(old, signal.SIGQUIT)
    assert served.proc.wait(WAIT) == 0, served.log()[-3000:]
    served.masters.discard(old)
    _until(lambda: served.pid_file() == new, "the new master never took gunicorn.pid over")


def _orders(url: str) -> dict[str, tuple[str, str, int]]:
    """``{number: (status, sku, qty)}`` of every order line in the database."""
    store = open_store(url)
    try:
        with store.read() as tx:
            rows = tx.query("SELECT o.number, o.status, l.sku, l.qty FROM orders o "
                            "JOIN order_lines l ON l.order_number = o.number")  # fmt: skip
    finally:
        store.close()
    return {r["number"]: (r["status"], r["sku"], int(r["qty"])) for r in rows}


@pytest.mark.parametrize("setup", [*SETUPS, SYNC])
def test_a_deploy_loses_no_request(serve, setup):
    served = serve(setup)
    _add_product(served)
    old = served.proc.pid
    load = Load(served.port)
    try:
        load.settle()  # steady
        for phase in ("first HUP", "second HUP"):
            load.enter(phase)
            _reload(served, old)
            load.settle()
        load.enter("USR2")
        new = _start_new_master(served, old)
        load.settle()
        load.enter("WINCH to the old master")
        _stop_old_workers(served, old)
        load.settle()
        load.enter("QUIT to the old master")
        _quit_old_master(served, old, new)
        load.settle()
        load.enter("the new master alone")
        load.settle()
        outcomes = load.stop()
    finally:
        load.kill()
    summary = _summary(outcomes)
    print(f"\n{setup}:\n{summary}")

    assert [o for o in outcomes if o.failed] == [], summary
    per_phase = Counter(o.phase for o in outcomes)
    assert all(per_phase[i] > 0 for i in range(len(PHASES))), summary

    # The upgraded shop: the new master alone, named by gunicorn.pid, still answering.
    assert served.masters == {new} and served.pid_file() == new and _running(new)
    assert not _running(old) and not (served.data / "gunicorn.pid.2").exists()
    assert len(served.serving(new)) == 2
    assert _get(served.port, "/")[0] == 200

    # Every checkout answered 201 is an order in the database, and there is no other.
    accepted = [o.number for o in outcomes if o.kind == "checkout"]
    assert len(set(accepted)) == len(accepted)  # a key of its own, an order of its own
    orders = _orders(served.env["ECSHOP_DATABASE_URL"])
    assert set(orders) == set(accepted)
    assert {(status, sku) for status, sku, _ in orders.values()} == {("accepted", SKU)}
    held = sum(qty for _, _, qty in orders.values())
    status, text = _get(served.port, f"/api/v1/admin/stock/{SKU}", served.admin)
    assert status == 200, text
    levels = json.loads(text)
    assert (levels["on_hand"], levels["available"]) == (ON_HAND, ON_HAND - held)
    assert levels["held"] + levels["sold_unshipped"] == held
    audit = served.cli("stock", "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
