"""``ecshop bench --url``: the measures of ``ecshop bench`` against a running shop, which
is left with its stock as the bench found it.

With the shop's admin token it:

1. refuses a shop that lists no live test-mode gateway (``GET /api/v1/admin/gateways``):
   its checkouts would take real payments. The sandbox gateway is preferred; with
   another test-mode gateway the paid flow is not measured (only the sandbox's page is
   known to the bench);
2. creates a product of its own (``BENCH-<random>``, "ecshop bench (not for sale)",
   10,000,000 units) and places every order on it — no other product is touched; the
   pages phase only reads the shop's catalog;
3. measures accepted checkouts, paid checkouts (sandbox only), pages, and the
   concurrency sweep. Each checkout carries an ``Idempotency-Key`` of this run and the
   admin token (so the shop's per-address limit lets the bench through);
4. at the end, whatever happened: asks again for every checkout whose answer did not
   come (same key, same body: the same order), cancels every order it placed through
   the admin API (a paid one is refunded through the gateway first), checks that the
   product's levels are back where they started (nothing held, nothing sold), sets its
   stock to 0 and archives it.

It measures the shop as it runs — its workers, threads and servers are its own — so
the report gives what it can take, not settings to change.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from ecshop import _benchclient as client
from ecshop import benchadvice
from ecshop.benchphases import PAGE_PRODUCTS, Phases, client_pool, stderr, sweep_levels
from ecshop.benchreport import BenchReport
from ecshop.benchrun import MAX_CLIENTS, OPEN_UNITS, STEP_SECONDS, context, finish, request
from ecshop.errors import BadRequest, ShopError

SETTLE_WAIT = 30.0
"""Seconds to wait for the product's levels to come back after the cancellations."""
NOT_HERE = ("a running shop's workers, threads and servers are its own: run ecshop bench on "
            "its host to compare settings")  # fmt: skip


def check_url(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) address; BadRequest for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"--url must be an http:// or https:// address, not {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def pick_gateway(gateways: Sequence[dict[str, Any]], url: str) -> str:
    """The sandbox if live, else the first live test-mode gateway that takes payments."""
    usable = [g["name"] for g in gateways if g["live"] and g["test_mode"] and not g["offline"]]
    if not usable:
        raise BadRequest(f"{url} has no live test-mode gateway: bench --url places orders, "
                         "which would take real payments")  # fmt: skip
    return "sandbox" if "sandbox" in usable else str(usable[0])


@dataclass
class RemoteBench:
    url: str
    admin_token: str
    clients: int = 8
    seconds: float = 10.0
    max_clients: int = MAX_CLIENTS
    sweep: Sequence[int] = field(default_factory=list)
    step_seconds: float = STEP_SECONDS
    command: str = "ecshop bench --url"
    say: Callable[[str], None] = print
    progress: Callable[[str], None] = stderr
    base: str = field(init=False, default="")

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return request(self.base, method, path, self.admin_token, body)

    def run(self) -> BenchReport:
        self.base = check_url(self.url)
        if not self.admin_token:
            raise BadRequest(
                "--url needs the shop's admin token (--admin-token or ECSHOP_ADMIN_TOKEN)"
            )
        if self.clients < 1 or self.seconds <= 0 or self.step_seconds <= 0 or self.max_clients < 1:
            raise BadRequest(
                "--clients, --seconds, --step-seconds and --max-clients must be positive"
            )
        gateway = self._gateway()
        sku = self._product()
        before = self._levels(sku)
        self.progress(f"bench: {self.base}, test gateway {gateway}, bench product {sku} "
                      f"({before['on_hand']} units)")  # fmt: skip
        report = BenchReport(self.clients, mode="running shop",
                             context=context(f"the running shop at {self.base}", self.command))  # fmt: skip
        phases = Phases(self.clients, self.seconds, self.step_seconds, self.progress,
                        tag=f"bench-{secrets.token_hex(6)}", token=self.admin_token)  # fmt: skip
        try:
            with client_pool(self.clients, self.progress, gateway) as pool:
                report.checkouts = phases.checkouts(pool, self.base, sku)
                self.say(report.checkout_line())
                if gateway == "sandbox":
                    report.paid = phases.paid(pool, self.base, sku, None)
                for line in report.paid_lines():
                    self.say(line)
                report.pages = phases.pages(pool, self.base, self._routes())
                for line in report.pages_lines():
                    self.say(line)
                levels = list(self.sweep) or sweep_levels(self.max_clients)
                report.sweep = phases.sweep(pool, self.base, sku, levels,
                                            f"the shop at {self.base}")  # fmt: skip
                for line in report.sweep_lines():
                    self.say(line)
        finally:
            report.cleanup = self.clean_up(sku, phases, before)
            self.say(f"clean-up: {report.cleanup['summary']}")
        report.settings = {"skipped": NOT_HERE}
        report.recommendation = benchadvice.recommend(report.as_dict())
        for line in report.recommendation_lines():
            self.say(line)
        finish(report.context)
        return report

    def _gateway(self) -> str:
        try:
            page = self.admin("GET", "/api/v1/admin/gateways?limit=500")
        except ShopError as exc:
            raise BadRequest(f"{self.base} did not list its gateways ({exc.message}): bench "
                             "--url needs an ecshop with GET /api/v1/admin/gateways and its "
                             "admin token") from exc  # fmt: skip
        return pick_gateway(page["items"], self.base)

    def _product(self) -> str:
        for _ in range(5):
            sku = f"BENCH-{secrets.token_hex(4).upper()}"
            try:
                self.admin("POST", "/api/v1/admin/products", {"sku": sku, "price": 1000,
                           "name": "ecshop bench (not for sale)", "on_hand": OPEN_UNITS})  # fmt: skip
                return sku
            except ShopError as exc:
                if "HTTP 409" not in exc.message:
                    raise
        raise ShopError("could not find a free SKU for the bench product")

    def _levels(self, sku: str) -> dict[str, int]:
        found = self.admin("GET", f"/api/v1/admin/stock/{quote(sku, safe='')}")
        return {k: int(found[k]) for k in ("on_hand", "available", "held", "sold_unshipped")}

    def _routes(self) -> dict[str, tuple[list[str], bool]]:
        """The JSON catalog, the catalog page, and the pages of the catalog's first
        products (read only)."""
        listed = request(self.base, "GET", f"/api/v1/products?limit={PAGE_PRODUCTS}", "")
        paths = [f"/products/{quote(p['sku'], safe='')}" for p in listed["items"]]
        return {"json_catalog": (["/api/v1/products?limit=24"], False),
                "catalog_page": (["/"], True), "product_page": (paths, True)}  # fmt: skip

    # -- the clean-up -------------------------------------------------------------------
    def _spread(self, work: Callable[[list[str]], list[Any]], items: list[str]) -> list[Any]:
        """``work`` over ``items`` in ``clients`` threads."""
        if not items:
            return []
        n = min(self.clients, len(items))
        with ThreadPoolExecutor(n) as pool:
            parts = pool.map(work, [items[i::n] for i in range(n)])
        return [r for part in parts for r in part]

    def clean_up(self, sku: str, phases: Phases, before: dict[str, int]) -> dict[str, Any]:
        """Cancel every order of the run, check the product's levels, archive it."""
        self.progress(f"bench: clean-up of {len(phases.placed)} orders on {sku}")
        problems = []
        lost = sorted(set(phases.lost))
        found = self._spread(
            lambda keys: client.recover_loop(self.base, sku, keys, self.admin_token), lost
        )
        unknown = [key for key, number in found if not number]
        if unknown:
            problems.append(f"{len(unknown)} checkouts of the bench whose order could not be "
                            f"found again (keys {', '.join(unknown[:5])})")  # fmt: skip
        numbers = sorted(set(phases.placed) | {number for _, number in found if number})
        answers = self._spread(
            lambda ns: client.cancel_loop(self.base, ns, self.admin_token), numbers
        )
        # 409: already cancelled (a replayed key answers the same order)
        failed = [n for n, status in answers if status not in (200, 409)]
        if failed:
            problems.append(f"{len(failed)} bench orders that could not be cancelled "
                            f"({', '.join(failed[:5])})")  # fmt: skip
        after = self._settled(sku, before)
        if after != before:
            problems.append(f"the bench product {sku}'s levels are {after}, not {before} as before")
        else:
            self.admin("PUT", f"/api/v1/admin/stock/{quote(sku, safe='')}",
                       {"on_hand": 0, "expected_on_hand": before["on_hand"]})  # fmt: skip
        self.admin("DELETE", f"/api/v1/admin/products/{quote(sku, safe='')}")
        summary = (f"cancelled {len(numbers) - len(failed)} of {len(numbers)} bench orders; "
                   f"{sku}'s levels {'are back' if after == before else 'are NOT back'} "
                   f"({after}); product archived")  # fmt: skip
        return {"sku": sku, "orders": len(numbers), "cancelled": len(numbers) - len(failed),
                "recovered": len(found) - len(unknown), "levels_before": before,
                "levels_after": after, "archived": True, "problems": problems,
                "summary": summary}  # fmt: skip

    def _settled(self, sku: str, before: dict[str, int]) -> dict[str, int]:
        """The product's levels once they are back (or after :data:`SETTLE_WAIT`)."""
        deadline = time.monotonic() + SETTLE_WAIT
        while True:
            now = self._levels(sku)
            if now == before or time.monotonic() >= deadline:
                return now
            time.sleep(0.5)
