"""``ecshop bench``: what this server can take, measured on this server.

It starts a throwaway shop (gunicorn with the shop's settings, a temporary SQLite
database unless ``--database-url`` names an empty one, the stock engine of
``--redis-url`` if given) and the sandbox gateway, then drives it from client
processes on the same machine (``ecshop._benchclient``):

1. **accepted checkouts**: for ``--seconds``, every client places one-unit checkouts of
   a SKU with plenty of stock, one after another. Each is an order accepted and its unit
   held, waiting for a payment that never comes: not a sale;
2. **paid checkouts**: for ``--seconds``, every client checks out, presses Pay on the
   sandbox gateway's page, and looks at the order (with its token) until the gateway's
   notification has made it paid; the figures are paid checkouts and notifications
   applied per second, the whole flow's and the notification wait's percentiles;
3. **pages**: the JSON catalog, the catalog page and product pages (``Accept:
   text/html``, a browser's session cookie kept), in slots of ``--seconds / 4``
   alternating A B C C B A so that a drift of the machine falls on all three alike;
4. **flash sale**: a SKU with ``--stock`` units; every client buys one unit at a time
   until it gets 409 ``out_of_stock``; the count sold must equal the stock;
5. **ceilings**: the same checkout against a bare Falcon app, a one-durable-insert app
   and an EC-CUBE-style ``SELECT … FOR UPDATE`` checkout (:mod:`ecshop.benchapps`) and
   ecshop's, side by side in slots of ``--step-seconds``;
6. **settings**: ecshop's checkout under each workers × threads setting, and with the
   other stock engine (Redis: ``--redis-url``, else a ``redis-server`` of its own when
   one is installed), side by side;
7. **round trips** to Redis and MariaDB over TCP and over their unix sockets;
8. **sweep**: ecshop's checkout, in the fastest setting, at 1, 2, 4, … clients up to
   ``--max-clients`` (or ``--sweep``), ``--step-seconds`` a step.

:mod:`ecshop.benchadvice` derives the recommendation from those figures and
:mod:`ecshop.benchwrite` writes the report. Progress goes to stderr, the figures to
stdout. The clients are Python processes sharing the machine with the shop, as real
traffic would not, so the figures are a floor; compare the ratios of one run. Nothing
of the shop's own data is touched.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ecshop import benchadvice, benchapps
from ecshop.benchadvice import setting_name
from ecshop.benchphases import (
    PAGE_PRODUCTS,
    Phases,
    Pool,
    client_pool,
    stderr,
    sweep_levels,
)
from ecshop.benchreport import BenchReport
from ecshop.benchservers import (
    Servers,
    Target,
    mysql_round_trips,
    private_redis,
    redis_round_trips,
)
from ecshop.errors import BadRequest, ShopError

MAX_CLIENTS = 64
"""The sweep's last step by default."""
STEP_SECONDS = 3.0
"""Each slot of the side-by-side phases and each step of the sweep, by default."""
OPEN_UNITS = 10_000_000
"""Stock of the SKUs that never sell out."""


def context(target: str, command: str) -> dict[str, Any]:
    """When, where and how a run was made (its load average is read again at the end)."""
    return {"target": target, "command": command, "cpus": os.cpu_count() or 0,
            "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "load_before": _load(), "began": time.monotonic()}  # fmt: skip


def finish(ctx: dict[str, Any]) -> None:
    ctx["load_after"] = _load()
    ctx["duration_s"] = time.monotonic() - ctx.pop("began", time.monotonic())


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def request(url: str, method: str, path: str, token: str, body: Any = None) -> Any:
    """One admin API call to a shop of the bench; its JSON answer (ShopError on non-2xx)."""
    from ecshop._benchclient import connection

    conn = connection(url)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ShopError(f"{method} {urlsplit(url).netloc}{path}: {exc}") from exc
    finally:
        conn.close()
    if resp.status >= 300:
        raise ShopError(f"{method} {path}: HTTP {resp.status}: {data[:200]!r}")
    return json.loads(data) if data else None


@dataclass
class Bench:
    clients: int = 8
    seconds: float = 10.0
    stock: int = 200
    workers: int = 2
    threads: int = 8
    database_url: str | None = None
    redis_url: str | None = None
    max_clients: int = MAX_CLIENTS
    sweep: Sequence[int] = field(default_factory=list)
    step_seconds: float = STEP_SECONDS
    command: str = "ecshop bench"
    say: Callable[[str], None] = print
    progress: Callable[[str], None] = stderr

    def validate(self) -> None:
        if (
            min(self.clients, self.stock, self.workers) < 1
            or min(self.seconds, self.step_seconds) <= 0
        ):
            raise BadRequest(
                "--clients, --seconds, --step-seconds, --stock and --workers must be positive"
            )
        if self.max_clients < 1 or any(n < 1 for n in self.sweep):
            raise BadRequest("--max-clients and every --sweep step must be at least 1")

    def run(self) -> BenchReport:
        from ecshop.testing.sandbox import SandboxGatewayProcess

        self.validate()
        work = Path(tempfile.mkdtemp(prefix="ecshop-bench-"))
        gateway = SandboxGatewayProcess(directory=work).start()
        token = secrets.token_hex(16)
        database = self.database_url or f"sqlite:///{work}/bench.db"
        servers = Servers(work, gateway, token, database)
        redis: Any = None
        try:
            main = self._main_shop(servers)
            self.progress(f"bench: shop on {main.url} ({setting_name(self.workers, self.threads)}), "
                          f"sandbox gateway on {gateway.url}, throwaway data in {work}")  # fmt: skip
            self._products(main.url, token)
            report = BenchReport(self.clients, context=context(self._describe(), self.command))
            phases = Phases(self.clients, self.seconds, self.step_seconds, self.progress)
            with client_pool(self.clients, self.progress) as pool:
                self._first_phases(report, phases, pool, main, token, gateway)
                report.ceilings = self._ceilings(phases, pool, servers, main)
                for line in report.ceiling_lines():
                    self.say(line)
                if not self.redis_url:
                    redis = private_redis()
                best = self._settings(report, phases, pool, servers, main, redis)
                for line in report.settings_lines():
                    self.say(line)
                report.transports = self._transports(redis)
                for line in report.transport_lines():
                    self.say(line)
                levels = list(self.sweep) or sweep_levels(self.max_clients)
                report.sweep = phases.sweep(pool, best.url, best.sku, levels, self._label(best))
                for line in report.sweep_lines():
                    self.say(line)
            report.recommendation = benchadvice.recommend(report.as_dict())
            for line in report.recommendation_lines():
                self.say(line)
            finish(report.context)
            return report
        finally:
            servers.stop()
            if redis is not None:
                redis.cleanup()
            gateway.stop()
            shutil.rmtree(work, ignore_errors=True)

    def _describe(self) -> str:
        database = "SQLite" if not self.database_url else self.database_url.split(":", 1)[0]
        engine = "the Redis stock engine" if self.redis_url else "the SQL stock engine"
        return f"this machine, a throwaway shop on {database} with {engine}"

    def _engine(self) -> str:
        return "redis" if self.redis_url else "sql"

    @staticmethod
    def _label(target: Target) -> str:
        return f"{setting_name(target.workers, target.threads)}, {target.engine} engine"

    def _main_shop(self, servers: Servers) -> Target:
        shop = servers.process("shop", workers=self.workers, threads=self.threads,
                               redis_url=self.redis_url or "")  # fmt: skip
        shop.run_cli("migrate")
        self._require_empty()
        failed = servers.start([shop])
        if failed:
            raise ShopError(f"the throwaway shop did not start: {failed[0]}")
        return Target("shop", shop, "BENCH-OPEN", self.workers, self.threads, self._engine())

    def _first_phases(self, report: BenchReport, phases: Phases, pool: Pool, main: Target,
                      token: str, gateway: Any) -> None:  # fmt: skip
        """Accepted and paid checkouts, pages, the flash sale, with their lines."""
        report.checkouts = phases.checkouts(pool, main.url, "BENCH-OPEN")
        self.say(report.checkout_line())
        orders = pending_orders(main.url, token)
        report.notifications = phases.notifications(pool, main.url, orders, gateway.secret)
        self.say(report.notifications_line())
        report.paid = phases.paid(pool, main.url, "BENCH-PAID",
                                  lambda paid: _applied_notifications(gateway, paid))  # fmt: skip
        for line in report.paid_lines():
            self.say(line)
        routes = {
            "json_catalog": (["/api/v1/products?limit=24"], False),
            "catalog_page": (["/"], True),
            "product_page": ([f"/products/BENCH-P{i:03d}" for i in range(PAGE_PRODUCTS)], True),
        }
        report.pages = phases.pages(pool, main.url, routes)
        for line in report.pages_lines():
            self.say(line)
        report.flash_sale = self._flash_sale(phases, pool, main.url, token)
        self.say(report.flash_sale_line())
        for line in report.ratio_lines():
            self.say(line)

    def _require_empty(self) -> None:
        if not self.database_url:
            return
        from ecshop.store import open_store

        store = open_store(self.database_url)
        try:
            with store.read() as tx:
                if tx.scalar("SELECT COUNT(*) FROM products") or tx.scalar(
                    "SELECT COUNT(*) FROM orders"
                ):
                    raise BadRequest(
                        "--database-url must name an empty database: bench writes test orders"
                    )
        finally:
            store.close()

    @staticmethod
    def _product(url: str, token: str, sku: str, on_hand: int, name: str = "") -> None:
        request(url, "POST", "/api/v1/admin/products", token,
                {"sku": sku, "name": name or sku, "price": 1000, "on_hand": on_hand})  # fmt: skip

    def _products(self, url: str, token: str) -> None:
        self._product(url, token, "BENCH-OPEN", OPEN_UNITS)
        self._product(url, token, "BENCH-PAID", OPEN_UNITS)
        self._product(url, token, "BENCH-HOT", self.stock)
        for i in range(PAGE_PRODUCTS):
            self._product(url, token, f"BENCH-P{i:03d}", 1000, f"Bench tea {i}")

    def _flash_sale(self, phases: Phases, pool: Pool, url: str, token: str) -> dict[str, Any]:
        pool.phase_begins("flash sale", f"bench: flash sale of {self.stock} units "
                          f"to {self.clients} clients")  # fmt: skip
        limit = max(self.seconds * 6, 60.0)
        results, elapsed = phases.drive(pool, url, "BENCH-HOT", limit, True)
        codes = Counter(status for status, _, _ in results)
        levels = request(url, "GET", "/api/v1/admin/stock/BENCH-HOT", token)
        held = int(levels["held"]) + int(levels["sold_unshipped"])
        return {"stock": self.stock, "seconds": elapsed, "sold": codes[201], "refused": codes[409],
                "errors": sum(n for c, n in codes.items() if c not in (201, 409)),
                "oversold": max(0, codes[201] - self.stock), "held_after": held,
                "available_after": int(levels["available"])}  # fmt: skip

    def _ceilings(
        self, phases: Phases, pool: Pool, servers: Servers, main: Target
    ) -> dict[str, Any]:
        """The ceilings and ecshop's checkout side by side, each the same gunicorn setting."""
        from ecshop.store import open_store

        store = open_store(servers.database_url)
        try:
            benchapps.seed(store, OPEN_UNITS)
        finally:
            store.close()
        apps = {name: servers.process(f"ceiling-{name}", workers=self.workers, threads=self.threads,
                                      redis_url=self.redis_url or "", app=spec)
                for name, spec in benchapps.CEILINGS.items()}  # fmt: skip
        failed = servers.start(list(apps.values()))
        for i, name in enumerate(list(apps)):
            if i in failed:
                self.progress(f"bench: ceiling {name} left out: it did not start ({failed[i]})")
                del apps[name]
        try:
            targets = {name: (p.url, "BENCH-OPEN") for name, p in apps.items()}
            targets["ecshop_checkout"] = (main.url, "BENCH-OPEN")
            figures = phases.side_by_side(pool, "ceilings", targets)
        finally:
            for p in apps.values():
                p.stop()
        ours = figures["routes"]["ecshop_checkout"]["per_second"]
        figures["ecshop_vs"] = {name: ours / f["per_second"] if f["per_second"] else 0.0
                                for name, f in figures["routes"].items() if name != "ecshop_checkout"}  # fmt: skip
        return figures

    def _candidates(self, servers: Servers, main: Target, redis: Any) -> tuple[list[Target], str]:
        """Every setting to compare (the main shop among them), and why the stock
        engines are not compared (or "")."""
        cores = os.cpu_count() or 1
        threads = sorted({1, self.threads if self.threads > 1 else 8})
        targets, i = [], 0
        for workers in sorted({self.workers, cores, 2 * cores}):
            for n in threads:
                if (workers, n) == (self.workers, self.threads):
                    main.grid = True
                    targets.append(main)
                    continue
                i += 1
                shop = servers.process(f"setting-{i}", workers=workers, threads=n,
                                       redis_url=self.redis_url or "")  # fmt: skip
                targets.append(Target(setting_name(workers, n), shop, f"BENCH-SET{i}",
                                      workers, n, self._engine(), grid=True))  # fmt: skip
        main.name = setting_name(self.workers, self.threads)
        other = "sql" if self.redis_url else "redis"
        if other == "redis" and redis is None:
            return targets, ("no Redis to compare with: pass --redis-url, or install "
                             "redis-server for the bench to start one of its own")  # fmt: skip
        shop = servers.process("setting-engine", workers=self.workers, threads=self.threads,
                               redis_url=redis.unix_url if other == "redis" else "")  # fmt: skip
        targets.append(Target(f"{main.name}, {other} engine", shop, "BENCH-SET-ENGINE",
                              self.workers, self.threads, other))  # fmt: skip
        return targets, ""

    def _settings(self, report: BenchReport, phases: Phases, pool: Pool, servers: Servers,
                  main: Target, redis: Any) -> Target:  # fmt: skip
        """The settings side by side; the fastest that keeps up (the sweep's target)."""
        targets, skipped = self._candidates(servers, main, redis)
        new = [t for t in targets if t is not main]
        failed = servers.start([t.shop for t in new])
        for i in sorted(failed):
            self.progress(f"bench: setting {new[i].name} left out: it did not start ({failed[i]})")
            if new[i].engine != main.engine:
                skipped = f"the {new[i].engine} engine's shop did not start ({failed[i]})"
        dropped = {id(new[i]) for i in failed}
        new = [t for t in new if id(t) not in dropped]
        targets = [t for t in targets if id(t) not in dropped]
        for t in new:
            self._product(t.url, servers.token, t.sku, OPEN_UNITS)
        figures = phases.side_by_side(pool, "settings", {t.name: (t.url, t.sku) for t in targets})
        candidates = [{**t.describe(), **figures["routes"][t.name]} for t in targets]
        engines = {c["engine"]: c for c in candidates
                   if (c["workers"], c["threads"]) == (self.workers, self.threads)}  # fmt: skip
        report.settings = {"clients": self.clients, "slot_seconds": self.step_seconds,
                           "order": figures["order"], "candidates": candidates,
                           "engines": engines if len(engines) == 2 else {},
                           "engines_skipped": skipped, "current": main.name}  # fmt: skip
        pick = benchadvice.recommend(report.as_dict())  # the same figures as the report's
        best = next(t for t in targets if t.grid and (t.workers, t.threads) == (
            pick["workers"]["value"], pick["threads"]["value"]))  # fmt: skip
        for t in new:
            if t is not best:
                t.shop.stop()
        return best

    def _transports(self, redis: Any) -> dict[str, Any]:
        found = {}
        redis_url = self.redis_url or (redis.url if redis is not None else "")
        if redis_url:
            # "used": the shop was given this Redis (not one of the bench's own)
            found["redis"] = {**redis_round_trips(redis_url), "used": bool(self.redis_url)}
        if (self.database_url or "").startswith("mysql"):
            found["mariadb"] = mysql_round_trips(self.database_url or "")
        return found


def pending_orders(url: str, token: str) -> list[tuple[str, int, str]]:
    """Every order of the shop waiting for its payment: number, total and currency."""
    found, after = [], ""
    while True:
        page = request(url, "GET", "/api/v1/admin/orders?status=pending_payment&limit=500"
                       + (f"&after={after}" if after else ""), token)  # fmt: skip
        found += [(str(o["number"]), int(o["total"]), str(o["currency"])) for o in page["items"]]
        after = page.get("next_after") or ""
        if not after:
            return found


def _applied_notifications(gateway: Any, paid: int, wait: float = 5.0) -> int:
    """Notifications the shop took (2xx), first copies only, from the gateway's own log.

    The gateway logs a delivery once it has read the shop's answer, which can come
    after a client has already seen the order paid: it asks again, for up to ``wait``
    seconds, while the log holds fewer than the ``paid`` orders seen."""
    give_up = time.monotonic() + wait
    while True:
        count = _delivered(gateway)
        if count >= paid or time.monotonic() >= give_up:
            return count
        time.sleep(0.1)


def _delivered(gateway: Any) -> int:
    count, after = 0, ""
    while True:
        page = gateway.api(
            "GET", "/v1/deliveries?limit=5000" + (f"&after={after}" if after else "")
        )
        count += sum(1 for d in page["items"] if d["outcome"] == "delivered" and not d["duplicate"])
        after = page.get("next_after") or ""
        if not after:
            return count
