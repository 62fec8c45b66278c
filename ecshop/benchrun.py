"""``ecshop bench``: what this server can take, measured on this server.

It starts a throwaway shop (gunicorn with the shop's settings, a temporary SQLite
database unless ``--database-url`` names an empty one, the stock engine of
``--redis-url`` if given) and the sandbox gateway, then drives it from client
processes on the same machine:

1. **checkouts**: for ``--seconds``, every client places one-unit checkouts of a SKU
   with plenty of stock, one after another; the figures are checkouts per second and
   latency percentiles;
2. **flash sale**: a SKU with ``--stock`` units; every client buys one unit at a time
   until it gets 409 ``out_of_stock``; the figures are the time to sell out and the
   count sold, which must equal the stock (nothing oversold, nothing lost).

The clients are Python processes sharing the machine with the shop, as real traffic
would not, so the figures are a floor. Nothing of the shop's own data is touched.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import secrets
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ecshop.errors import BadRequest, ShopError

BODY = {"customer": {"email": "bench@example.invalid"}, "gateway": "sandbox"}


def _checkout_loop(
    url: str, sku: str, deadline: float, stop_on_409: bool
) -> list[tuple[int, float]]:
    """One client: checkouts of one unit until the deadline (or the first 409)."""
    parts = urlsplit(url)
    body = json.dumps({**BODY, "lines": [{"sku": sku, "qty": 1}]}).encode()
    results: list[tuple[int, float]] = []
    while time.monotonic() < deadline:
        started = time.perf_counter()
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            conn.request("POST", "/api/v1/checkout", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except OSError:
            status = 0
        finally:
            conn.close()
        results.append((status, time.perf_counter() - started))
        if stop_on_409 and status == 409:
            break
    return results


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class BenchReport:
    clients: int
    checkouts: dict[str, Any] = field(default_factory=dict)
    flash_sale: dict[str, Any] = field(default_factory=dict)

    def checkout_line(self) -> str:
        c = self.checkouts
        return (f"checkouts: {c['per_second']:.0f}/s with {self.clients} clients over {c['seconds']:.0f}s "
                f"(p50 {c['p50_ms']:.0f} ms, p99 {c['p99_ms']:.0f} ms, errors {c['errors']})")  # fmt: skip

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

    def run(self) -> BenchReport:
        from ecshop.testing.sandbox import SandboxGatewayProcess
        from ecshop.testing.shop import ShopProcess

        if self.clients < 1 or self.seconds <= 0 or self.stock < 1:
            raise BadRequest("--clients, --seconds and --stock must be positive")
        work = Path(tempfile.mkdtemp(prefix="ecshop-bench-"))
        gateway = SandboxGatewayProcess(directory=work).start()
        token = secrets.token_hex(16)
        env = {
            "ECSHOP_DATABASE_URL": self.database_url or f"sqlite:///{work}/bench.db",
            "ECSHOP_REDIS_URL": self.redis_url or "", "ECSHOP_ADMIN_TOKEN": token,
            "ECSHOP_GATEWAY_SANDBOX_URL": gateway.url, "ECSHOP_GATEWAY_SANDBOX_SECRET": gateway.secret,
            "ECSHOP_RECONCILE_INTERVAL": "0", "ECSHOP_CONFIG": str(work / "none.toml"),
            "ECSHOP_PLUGINS_DIR": str(work / "plugins"), "ECSHOP_PLUGINS_ENABLED": "sandbox",
            # the bench's clients all come from this host: no per-client limit
            "ECSHOP_CHECKOUT_RATE_LIMIT": "0",
        }  # fmt: skip
        (work / "none.toml").write_text("")
        # The shop under test pays through the built-in sandbox gateway, whatever
        # plugins the real shop has: only that plugin is enabled.
        shop = None
        try:
            shop = ShopProcess(env=env, workers=self.workers, log_path=work / "shop.log")
            shop.run_cli("migrate")
            self._require_empty(shop)
            shop.start()
            self.say(f"shop on {shop.url} ({self.workers} workers), throwaway data in {work}")
            self._product(shop, token, "BENCH-OPEN", 10_000_000)
            self._product(shop, token, "BENCH-HOT", self.stock)
            report = BenchReport(self.clients)
            report.checkouts = self._checkouts(shop.url)
            self.say(report.checkout_line())
            report.flash_sale = self._flash_sale(shop.url, token)
            self.say(report.flash_sale_line())
            return report
        finally:
            if shop is not None:
                shop.stop()
            gateway.stop()
            shutil.rmtree(work, ignore_errors=True)

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

    def _product(self, shop: Any, token: str, sku: str, on_hand: int) -> None:
        self._request(shop.url, "POST", "/api/v1/admin/products", token,
                      {"sku": sku, "name": sku, "price": 1000, "on_hand": on_hand})  # fmt: skip

    def _drive(
        self, url: str, sku: str, seconds: float, stop_on_409: bool
    ) -> tuple[list[tuple[int, float]], float]:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(self.clients) as pool:
            pool.map(time.sleep, [0] * self.clients)  # the clients are up before the clock starts
            begin = time.monotonic()
            jobs = [(url, sku, begin + seconds, stop_on_409)] * self.clients
            parts = pool.starmap(_checkout_loop, jobs)
            elapsed = time.monotonic() - begin
        return [r for part in parts for r in part], elapsed

    def _checkouts(self, url: str) -> dict[str, Any]:
        results, elapsed = self._drive(url, "BENCH-OPEN", self.seconds, stop_on_409=False)
        ok = [lat for status, lat in results if status == 201]
        return {"seconds": elapsed, "count": len(ok), "per_second": len(ok) / elapsed,
                "p50_ms": statistics.median(ok) * 1000 if ok else 0.0,
                "p99_ms": _percentile(ok, 0.99) * 1000, "errors": len(results) - len(ok)}  # fmt: skip

    def _flash_sale(self, url: str, token: str) -> dict[str, Any]:
        limit = max(self.seconds * 6, 60.0)
        results, elapsed = self._drive(url, "BENCH-HOT", limit, stop_on_409=True)
        codes = Counter(status for status, _ in results)
        levels = self._request(url, "GET", "/api/v1/admin/stock/BENCH-HOT", token)
        held = int(levels["held"]) + int(levels["sold_unshipped"])
        return {"stock": self.stock, "seconds": elapsed, "sold": codes[201], "refused": codes[409],
                "errors": sum(n for c, n in codes.items() if c not in (201, 409)),
                "oversold": max(0, codes[201] - self.stock), "held_after": held,
                "available_after": int(levels["available"])}  # fmt: skip
