"""The figures of one ``ecshop bench`` run and the lines it prints for them.

:class:`BenchReport` holds every phase's figures as plain dicts (what ``--json`` prints
and ``report.json`` keeps); its ``*_lines`` methods are the text on stdout, and
:mod:`ecshop.benchwrite` turns the same figures into the Markdown report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecshop.benchadvice import setting_name

TARGETS = {"paid_vs_accepted": 0.5, "notifications_vs_accepted": 0.8}
"""Each paid-checkout rate over the accepted-checkout rate should be at least this."""
CEILING_NAMES = {
    "bare_falcon": "bare Falcon (reads the body, answers 201)",
    "durable_insert": "one durable insert (order + line, one commit)",
    "for_update_checkout": "EC-CUBE-style checkout (SELECT ... FOR UPDATE, UPDATE, INSERT)",
    "ecshop_checkout": "ecshop's checkout",
}


def figure_line(label: str, f: dict[str, Any]) -> str:
    """``label: N/s (p50, p99, errors)`` for one measured target."""
    return (f"{label}: {f['per_second']:.0f}/s (p50 {f['p50_ms']:.1f} ms, "
            f"p99 {f['p99_ms']:.1f} ms, errors {f['errors']})")  # fmt: skip


def sweep_table(sweep: dict[str, Any]) -> list[str]:
    """The sweep as a text table, one row per step."""
    rows = [f"{'clients':>7s} {'checkouts/s':>11s} {'orders/min':>10s} {'p50 ms':>8s} "
            f"{'p99 ms':>8s} {'errors':>6s}"]  # fmt: skip
    for s in sweep.get("steps", []):
        rows.append(f"{s['clients']:7d} {s['per_second']:11.1f} {s['per_second'] * 60:10.0f} "
                    f"{s['p50_ms']:8.1f} {s['p99_ms']:8.1f} {s['errors']:6d}")  # fmt: skip
    return rows


def _yes_no(value: Any) -> str:
    return "not measured" if value is None else "yes" if value else "no"


@dataclass
class BenchReport:
    clients: int
    #: "throwaway shop" (this machine) or "running shop" (``--url``)
    mode: str = "throwaway shop"
    context: dict[str, Any] = field(default_factory=dict)
    checkouts: dict[str, Any] = field(default_factory=dict)
    #: the notify endpoint on its own: signed notifications for the accepted checkouts
    notifications: dict[str, Any] = field(default_factory=dict)
    paid: dict[str, Any] = field(default_factory=dict)
    pages: dict[str, Any] = field(default_factory=dict)
    flash_sale: dict[str, Any] = field(default_factory=dict)
    ceilings: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    transports: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] = field(default_factory=dict)
    recommendation: dict[str, Any] = field(default_factory=dict)
    cleanup: dict[str, Any] = field(default_factory=dict)

    def ratios(self) -> dict[str, Any]:
        """Paid checkouts and notifications per second over accepted checkouts per second.

        Notifications are those the shop applied in the notifications phase, sent as
        fast as it answers (its notify path's rate); without that phase, those of the
        paid phase, where each waits for a buyer's whole flow."""
        accepted = self.checkouts.get("per_second") or 0.0
        paid = self.paid.get("per_second", 0.0)
        notified = self.notifications.get(
            "per_second", self.paid.get("notifications_per_second", 0.0)
        )
        values = {
            "paid_vs_accepted": paid / accepted if accepted else 0.0,
            "notifications_vs_accepted": notified / accepted if accepted else 0.0,
        }
        met = {name: values[name] >= target for name, target in TARGETS.items()}
        return {**values, "targets": dict(TARGETS), "met": met}

    def as_dict(self) -> dict[str, Any]:
        return {"clients": self.clients, "mode": self.mode, "context": self.context,
                "checkouts": self.checkouts, "notifications": self.notifications,
                "paid": self.paid, "pages": self.pages,
                "flash_sale": self.flash_sale, "ratios": self.ratios(), "ceilings": self.ceilings,
                "settings": self.settings, "transports": self.transports, "sweep": self.sweep,
                "recommendation": self.recommendation, "cleanup": self.cleanup}  # fmt: skip

    def problems(self) -> list[str]:
        """What makes the run a failure (never its speed)."""
        found = []
        sale = self.flash_sale
        if sale and (sale["sold"] != sale["stock"] or sale["errors"]):
            found.append("a flash sale that did not sell exactly its stock")
        if self.checkouts.get("errors"):
            found.append("checkouts that were not accepted")
        if self.notifications.get("errors"):
            found.append("notifications that were not applied")
        if self.paid and sum(self.paid["errors"].values()):
            found.append("paid checkouts that failed or were never seen paid")
        if any(route["errors"] for route in self.pages.get("routes", {}).values()):
            found.append("pages that did not answer 200")
        if self.cleanup.get("problems"):
            found += self.cleanup["problems"]
        return found

    def checkout_line(self) -> str:
        c = self.checkouts
        return (f"accepted checkouts (order placed, unit held, not paid): {c['per_second']:.0f}/s "
                f"with {self.clients} clients over {c['seconds']:.0f}s "
                f"(p50 {c['p50_ms']:.0f} ms, p99 {c['p99_ms']:.0f} ms, errors {c['errors']})")  # fmt: skip

    def notifications_line(self) -> str:
        n = self.notifications
        if not n:
            return "notifications: not measured (the shop's test gateway is not the sandbox)"
        return (f"notifications (signed payment.succeeded for the {n['orders']} accepted orders, "
                f"verified, journaled, applied): {n['per_second']:.0f}/s over {n['seconds']:.1f}s "
                f"({n['applied']} applied, p50 {n['p50_ms']:.0f} ms, p99 {n['p99_ms']:.0f} ms, "
                f"errors {n['errors']})")  # fmt: skip

    def paid_lines(self) -> list[str]:
        p = self.paid
        if not p:
            return ["paid checkouts: not measured (the shop's test gateway is not the sandbox)"]
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
        if not self.paid:
            return []
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

    def ceiling_lines(self) -> list[str]:
        c = self.ceilings
        lines = [figure_line(f"ceiling {name}", f) for name, f in c["routes"].items()]
        ratios = "; ".join(f"{r:.2f} of {name}" for name, r in c["ecshop_vs"].items())
        return [*lines, f"ecshop's checkout runs at {ratios}"]

    def settings_lines(self) -> list[str]:
        return [figure_line(f"setting {c['name']}", c) for c in self.settings["candidates"]]

    def transport_lines(self) -> list[str]:
        lines = []
        for server, t in self.transports.items():
            if t.get("skipped"):
                lines.append(f"round trip to {server}: not compared ({t['skipped']})")
            else:
                lines.append(f"round trip to {server} ({t['what']}): {t['unix_us']:.0f} µs over "
                             f"its unix socket, {t['tcp_us']:.0f} µs over TCP")  # fmt: skip
        return lines

    def sweep_lines(self) -> list[str]:
        s = self.sweep
        return [f"concurrency sweep of {s['target']}, {s['step_seconds']:g}s a step:",
                *sweep_table(s)]  # fmt: skip

    def recommendation_lines(self) -> list[str]:
        r = self.recommendation
        cap = r["capacity"]
        lines = []
        if r["workers"]["value"] is not None:
            setting = setting_name(r["workers"]["value"], r["threads"]["value"])
            lines.append(f"recommended: {setting} (ecshop serve --workers, ECSHOP_THREADS)")
        if r.get("noise", {}).get("spread"):
            lines.append(f"noise of this run: one setting or ceiling ran up to "
                         f"{r['noise']['spread']:.0%} faster in one of its two slots than in the "
                         f"other; differences up to {r['noise']['value']:.0%} do not count")  # fmt: skip
        lines.append(f"recommended: Redis for the stock engine: {_yes_no(r['redis']['value'])}; "
                     f"unix sockets to the servers: {_yes_no(r['unix_socket']['value'])}")  # fmt: skip
        if cap["clients"] is None:
            lines.append(
                f"capacity: none measured at p99 <= {cap['limit_ms']:.0f} ms ({cap['why']})"
            )
        else:
            lines.append(f"capacity: {'at least ' if cap['at_least'] else ''}"
                         f"{cap['orders_per_minute']} orders per minute at p99 <= "
                         f"{cap['limit_ms']:.0f} ms ({cap['clients']} clients, p99 "
                         f"{cap['p99_ms']:.0f} ms)")  # fmt: skip
        return lines
