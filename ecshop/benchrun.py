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
   until it gets 409 ``out_of_stock``; the count sold must equal the stock.

Progress (one line per phase, a heartbeat every few seconds) goes to stderr, the
figures to stdout. The clients are Python processes sharing the machine with the shop,
as real traffic would not, so the figures are a floor; compare the ratios of one run.
Nothing of the shop's own data is touched.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ecshop import _benchclient as client
from ecshop.errors import BadRequest, ShopError

HEARTBEAT = 3.0
"""Seconds between two progress lines within a phase."""
PAID_WAIT_LIMIT = 30.0
"""Seconds a client waits for an order to be paid before counting it ``not_paid``."""
PAGE_PRODUCTS = 48
"""Products the pages phase shows: two catalog pages of 24."""
TARGETS = {"paid_vs_accepted": 0.5, "notifications_vs_accepted": 0.8}
"""Each paid-checkout rate over the accepted-checkout rate should be at least this."""


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(values: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    return _percentile(values, 0.5) * 1000, _percentile(values, 0.99) * 1000


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class BenchReport:
    clients: int
    checkouts: dict[str, Any] = field(default_factory=dict)
    paid: dict[str, Any] = field(default_factory=dict)
    pages: dict[str, Any] = field(default_factory=dict)
    flash_sale: dict[str, Any] = field(default_factory=dict)

    def ratios(self) -> dict[str, Any]:
        """Paid checkouts and notifications per second over accepted checkouts per second."""
        accepted = self.checkouts.get("per_second") or 0.0
        values = {
            "paid_vs_accepted": self.paid["per_second"] / accepted if accepted else 0.0,
            "notifications_vs_accepted": (
                self.paid["notifications_per_second"] / accepted if accepted else 0.0
            ),
        }
        met = {name: values[name] >= target for name, target in TARGETS.items()}
        return {**values, "targets": dict(TARGETS), "met": met}

    def as_dict(self) -> dict[str, Any]:
        return {"clients": self.clients, "checkouts": self.checkouts, "paid": self.paid,
                "pages": self.pages, "flash_sale": self.flash_sale, "ratios": self.ratios()}  # fmt: skip

    def problems(self) -> list[str]:
        """What makes the run a failure (never its speed)."""
        found = []
        sale = self.flash_sale
        if sale["sold"] != sale["stock"] or sale["errors"]:
            found.append("a flash sale that did not sell exactly its stock")
        if self.checkouts["errors"]:
            found.append("checkouts that were not accepted")
        if sum(self.paid["errors"].values()):
            found.append("paid checkouts that failed or were never seen paid")
        if any(route["errors"] for route in self.pages["routes"].values()):
            found.append("pages that did not answer 200")
        return found

    def checkout_line(self) -> str:
        c = self.checkouts
        return (f"accepted checkouts (order placed, unit held, not paid): {c['per_second']:.0f}/s "
                f"with {self.clients} clients over {c['seconds']:.0f}s "
                f"(p50 {c['p50_ms']:.0f} ms, p99 {c['p99_ms']:.0f} ms, errors {c['errors']})")  # fmt: skip

    def paid_lines(self) -> list[str]:
        p = self.paid
        return [
            f"paid checkouts (checkout, pay, notification, seen paid): {p['per_second']:.0f}/s "
            f"({p['paid']} of {p['accepted']} accepted, errors {sum(p['errors'].values())}); "
            f"flow p50 {p['flow_p50_ms']:.0f} ms, p99 {p['flow_p99_ms']:.0f} ms",
            f"notifications applied: {p['notifications_per_second']:.0f}/s "
            f"({p['notifications']}); wait after paying p50 {p['wait_p50_ms']:.0f} ms, "
            f"p99 {p['wait_p99_ms']:.0f} ms ({p['polls_per_paid']:.1f} looks per order)",
        ]

    def pages_lines(self) -> list[str]:
        lines = []
        for name, r in self.pages["routes"].items():
            lines.append(f"{name}: {r['per_second']:.0f}/s (p50 {r['p50_ms']:.1f} ms, "
                         f"p99 {r['p99_ms']:.1f} ms, errors {r['errors']}), "
                         f"{r['cost_vs_json']:.2f}x the JSON catalog's cost")  # fmt: skip
        return lines

    def ratio_lines(self) -> list[str]:
        r = self.ratios()
        lines = []
        for name, label in (("paid_vs_accepted", "paid checkouts / accepted checkouts"),
                            ("notifications_vs_accepted", "notifications applied / accepted checkouts")):  # fmt: skip
            verdict = "met" if r["met"][name] else "missed"
            lines.append(f"{label}: {r[name]:.2f} (target >= {TARGETS[name]:.2f}: {verdict})")
        return lines

    def flash_sale_line(self) -> str:
        f = self.flash_sale
        return (f"flash sale: {f['stock']} units gone in {f['seconds']:.2f}s to {self.clients} clients "
                f"({f['sold']} checkouts holding one each, {f['refused']} refused with 409, "
                f"oversold {f['oversold']}, errors {f['errors']})")  # fmt: skip


@dataclass
class Bench:
    clients: int = 8
    seconds: float = 10.0
    stock: int = 200
    workers: int = 2
    database_url: str | None = None
    redis_url: str | None = None
    say: Callable[[str], None] = print
    progress: Callable[[str], None] = _stderr

    def run(self) -> BenchReport:
        from ecshop.testing.sandbox import SandboxGatewayProcess

        if self.clients < 1 or self.seconds <= 0 or self.stock < 1:
            raise BadRequest("--clients, --seconds and --stock must be positive")
        work = Path(tempfile.mkdtemp(prefix="ecshop-bench-"))
        gateway = SandboxGatewayProcess(directory=work).start()
        shop = None
        try:
            token = secrets.token_hex(16)
            shop = self._shop(work, gateway, token)
            self.progress(f"bench: shop on {shop.url} ({self.workers} workers), "
                          f"sandbox gateway on {gateway.url}, throwaway data in {work}")  # fmt: skip
            self._products(shop.url, token)
            with self._clients() as pool:
                return self._phases(pool, shop.url, token, gateway)
        finally:
            if shop is not None:
                shop.stop()
            gateway.stop()
            shutil.rmtree(work, ignore_errors=True)

    def _shop(self, work: Path, gateway: Any, token: str) -> Any:
        from ecshop.testing.servers import free_port
        from ecshop.testing.shop import ShopProcess

        port = free_port()
        env = {
            "ECSHOP_DATABASE_URL": self.database_url or f"sqlite:///{work}/bench.db",
            "ECSHOP_REDIS_URL": self.redis_url or "", "ECSHOP_ADMIN_TOKEN": token,
            # the gateway notifies the shop at this address
            "ECSHOP_BASE_URL": f"http://127.0.0.1:{port}",
            "ECSHOP_GATEWAY_SANDBOX_URL": gateway.url, "ECSHOP_GATEWAY_SANDBOX_SECRET": gateway.secret,
            "ECSHOP_RECONCILE_INTERVAL": "0", "ECSHOP_CONFIG": str(work / "none.toml"),
            "ECSHOP_PLUGINS_DIR": str(work / "plugins"), "ECSHOP_PLUGINS_ENABLED": "sandbox",
            # the bench's clients all come from this host: no per-client limit
            "ECSHOP_CHECKOUT_RATE_LIMIT": "0",
        }  # fmt: skip
        (work / "none.toml").write_text("")
        # The shop under test pays through the built-in sandbox gateway, whatever
        # plugins the real shop has: only that plugin is enabled.
        shop = ShopProcess(env=env, workers=self.workers, port=port, log_path=work / "shop.log")
        try:
            shop.run_cli("migrate")
            self._require_empty(shop)
            return shop.start()
        except BaseException:
            shop.stop()
            raise

    def _phases(self, pool: _Pool, url: str, token: str, gateway: Any) -> BenchReport:
        report = BenchReport(self.clients)
        report.checkouts = self._checkouts(pool, url)
        self.say(report.checkout_line())
        report.paid = self._paid(pool, url, gateway)
        for line in report.paid_lines():
            self.say(line)
        report.pages = self._pages(pool, url)
        for line in report.pages_lines():
            self.say(line)
        report.flash_sale = self._flash_sale(pool, url, token)
        self.say(report.flash_sale_line())
        for line in report.ratio_lines():
            self.say(line)
        return report

    def _require_empty(self, shop: Any) -> None:
        if not self.database_url:
            return
        from ecshop.store import open_store

        store = open_store(self.database_url)
        with store.read() as tx:
            if tx.scalar("SELECT COUNT(*) FROM products") or tx.scalar(
                "SELECT COUNT(*) FROM orders"
            ):
                raise BadRequest(
                    "--database-url must name an empty database: bench writes test orders"
                )

    def _request(self, url: str, method: str, path: str, token: str, body: Any = None) -> Any:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None,
                         {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})  # fmt: skip
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status >= 300:
            raise ShopError(f"{method} {path}: HTTP {resp.status}: {data[:200]!r}")
        return json.loads(data)

    def _product(self, url: str, token: str, sku: str, on_hand: int, name: str = "") -> None:
        self._request(url, "POST", "/api/v1/admin/products", token,
                      {"sku": sku, "name": name or sku, "price": 1000, "on_hand": on_hand})  # fmt: skip

    def _products(self, url: str, token: str) -> None:
        self._product(url, token, "BENCH-OPEN", 10_000_000)
        self._product(url, token, "BENCH-PAID", 10_000_000)
        self._product(url, token, "BENCH-HOT", self.stock)
        for i in range(PAGE_PRODUCTS):
            self._product(url, token, f"BENCH-P{i:03d}", 1000, f"Bench tea {i}")

    # -- running the clients ---------------------------------------------------------
    @contextmanager
    def _clients(self) -> Iterator[_Pool]:
        ctx = multiprocessing.get_context("spawn")
        counter = ctx.Value("q", 0)
        with ctx.Pool(self.clients, initializer=client.init, initargs=(counter,)) as pool:
            pool.map(time.sleep, [0] * self.clients)  # the clients are up before any clock starts
            yield _Pool(pool, counter, self.progress)

    def _drive(
        self, pool: _Pool, sku: str, url: str, seconds: float, stop_on_409: bool
    ) -> tuple[list[tuple[int, float]], float]:
        def jobs(deadline: float) -> list[tuple[Any, ...]]:
            return [(url, sku, deadline, stop_on_409)] * self.clients

        parts, elapsed = pool.run(client.checkout_loop, jobs, seconds)
        return [r for part in parts for r in part], elapsed

    def _checkouts(self, pool: _Pool, url: str) -> dict[str, Any]:
        pool.phase_begins("accepted checkouts", f"bench: accepted checkouts, "
                          f"{self.seconds:g}s with {self.clients} clients")  # fmt: skip
        results, elapsed = self._drive(pool, "BENCH-OPEN", url, self.seconds, False)
        ok = [lat for status, lat in results if status == 201]
        return {"seconds": elapsed, "count": len(ok), "per_second": len(ok) / elapsed,
                "p50_ms": statistics.median(ok) * 1000 if ok else 0.0,
                "p99_ms": _percentile(ok, 0.99) * 1000, "errors": len(results) - len(ok)}  # fmt: skip

    def _paid(self, pool: _Pool, url: str, gateway: Any) -> dict[str, Any]:
        pool.phase_begins("paid checkouts", f"bench: paid checkouts, "
                          f"{self.seconds:g}s with {self.clients} clients")  # fmt: skip

        def jobs(deadline: float) -> list[tuple[Any, ...]]:
            return [(url, "BENCH-PAID", deadline, PAID_WAIT_LIMIT)] * self.clients

        parts, elapsed = pool.run(client.paid_loop, jobs, self.seconds)
        flows = [f for part in parts for f in part]
        paid = [f for f in flows if f.outcome == "paid"]
        outcomes = Counter(f.outcome for f in flows)
        notifications = _applied_notifications(gateway)
        flow_p50, flow_p99 = _ms([f.flow for f in paid])
        wait_p50, wait_p99 = _ms([f.wait for f in paid])
        return {
            "seconds": elapsed, "accepted": len(flows) - outcomes["checkout"],
            "paid": len(paid), "per_second": len(paid) / elapsed,
            "notifications": notifications, "notifications_per_second": notifications / elapsed,
            "flow_p50_ms": flow_p50, "flow_p99_ms": flow_p99,
            "wait_p50_ms": wait_p50, "wait_p99_ms": wait_p99,
            "polls_per_paid": sum(f.polls for f in paid) / len(paid) if paid else 0.0,
            "errors": {kind: outcomes[kind] for kind in ("checkout", "pay", "not_paid")},
        }  # fmt: skip

    def _pages(self, pool: _Pool, url: str) -> dict[str, Any]:
        routes = {
            "json_catalog": (["/api/v1/products?limit=24"], False),
            "catalog_page": (["/"], True),
            "product_page": ([f"/products/BENCH-P{i:03d}" for i in range(PAGE_PRODUCTS)], True),
        }
        slot = self.seconds / 4
        pool.phase_begins("pages", f"bench: pages against the JSON catalog, {slot * 6:g}s "
                          f"in slots of {slot:g}s with {self.clients} clients")  # fmt: skip
        seen: dict[str, list[tuple[int, float]]] = {name: [] for name in routes}
        spent = dict.fromkeys(routes, 0.0)
        order = [*routes, *reversed(routes)]
        for name in order:
            paths, browser = routes[name]

            def jobs(deadline: float) -> list[tuple[Any, ...]]:
                return [(url, paths, browser, deadline, i) for i in range(self.clients)]  # noqa: B023

            parts, elapsed = pool.run(client.page_loop, jobs, slot)
            seen[name] += [r for part in parts for r in part]
            spent[name] += elapsed
        figures = {name: _route_figures(seen[name], spent[name]) for name in routes}
        base = figures["json_catalog"]["per_second"]
        for fig in figures.values():
            fig["cost_vs_json"] = base / fig["per_second"] if fig["per_second"] else 0.0
        return {"slot_seconds": slot, "order": order, "routes": figures}

    def _flash_sale(self, pool: _Pool, url: str, token: str) -> dict[str, Any]:
        pool.phase_begins("flash sale", f"bench: flash sale of {self.stock} units "
                          f"to {self.clients} clients")  # fmt: skip
        limit = max(self.seconds * 6, 60.0)
        results, elapsed = self._drive(pool, "BENCH-HOT", url, limit, True)
        codes = Counter(status for status, _ in results)
        levels = self._request(url, "GET", "/api/v1/admin/stock/BENCH-HOT", token)
        held = int(levels["held"]) + int(levels["sold_unshipped"])
        return {"stock": self.stock, "seconds": elapsed, "sold": codes[201], "refused": codes[409],
                "errors": sum(n for c, n in codes.items() if c not in (201, 409)),
                "oversold": max(0, codes[201] - self.stock), "held_after": held,
                "available_after": int(levels["available"])}  # fmt: skip


def _route_figures(results: list[tuple[int, float]], seconds: float) -> dict[str, Any]:
    ok = [lat for status, lat in results if status == 200]
    p50, p99 = _ms(ok)
    return {"seconds": seconds, "count": len(ok), "per_second": len(ok) / seconds if seconds else 0.0,
            "p50_ms": p50, "p99_ms": p99, "errors": len(results) - len(ok)}  # fmt: skip


def _applied_notifications(gateway: Any) -> int:
    """Notifications the shop took (2xx), first copies only, from the gateway's own log."""
    count, after = 0, ""
    while True:
        page = gateway.api(
            "GET", "/v1/deliveries?limit=5000" + (f"&after={after}" if after else "")
        )
        count += sum(1 for d in page["items"] if d["outcome"] == "delivered" and not d["duplicate"])
        after = page.get("next_after") or ""
        if not after:
            return count


class _Pool:
    """The client processes, the shared counter of finished requests, the heartbeat."""

    def __init__(self, pool: Any, counter: Any, progress: Callable[[str], None]) -> None:
        self.pool = pool
        self.counter = counter
        self.progress = progress
        self.phase = ""
        self.began = self.beat = time.monotonic()

    def phase_begins(self, phase: str, line: str) -> None:
        """Say what runs now; the heartbeat counts from here."""
        self.progress(line)
        with self.counter.get_lock():
            self.counter.value = 0
        self.phase = phase
        self.began = self.beat = time.monotonic()

    def run(
        self,
        loop: Callable[..., Any],
        jobs: Callable[[float], list[tuple[Any, ...]]],
        seconds: float,
    ) -> tuple[list[Any], float]:
        """Run ``loop`` in every client until ``seconds`` from now; what each returned."""
        begin = time.monotonic()
        pending = self.pool.starmap_async(loop, jobs(begin + seconds))
        while True:
            pending.wait(0.25)
            if pending.ready():
                break
            now = time.monotonic()
            if now - self.beat >= HEARTBEAT:
                self.beat = now
                self.progress(f"  {self.phase}: {now - self.began:.0f}s, "
                              f"{self.counter.value} done")  # fmt: skip
        elapsed = time.monotonic() - begin
        return list(pending.get()), elapsed
