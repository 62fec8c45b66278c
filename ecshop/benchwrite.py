"""The report of an ``ecshop bench`` run, written to a folder: ``report.md`` (for the
owner), ``report.json`` (every figure, as ``--json`` prints them) and ``sweep.png`` (the
concurrency sweep, with matplotlib: ``pip install 'ecshop[plot]'``; without it the
Markdown keeps the sweep as a table only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ecshop import benchadvice
from ecshop.benchreport import CEILING_NAMES, BenchReport, sweep_table
from ecshop.files import private_dir

REPORT_MD, REPORT_JSON, SWEEP_PNG = "report.md", "report.json", "sweep.png"


def write_report(report: BenchReport, folder: Path) -> list[Path]:
    """Write the report's files into ``folder`` (made if missing); the paths written."""
    private_dir(folder)
    written = []
    plot = folder / SWEEP_PNG
    plot.unlink(missing_ok=True)
    if report.sweep.get("steps") and draw_sweep(report, plot):
        written.append(plot)
    md = folder / REPORT_MD
    md.write_text(markdown(report, plot.name if plot in written else None), encoding="utf-8")
    data = folder / REPORT_JSON
    data.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")  # fmt: skip
    return [md, data, *written]


def draw_sweep(report: BenchReport, path: Path) -> bool:
    """The sweep as a PNG: checkouts per second and p50/p99 by clients. False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    steps = report.sweep["steps"]
    clients = [s["clients"] for s in steps]
    fig, rate = plt.subplots(figsize=(8, 4.5), dpi=100)
    rate.plot(clients, [s["per_second"] for s in steps], "o-", color="tab:blue",
              label="checkouts/s")  # fmt: skip
    rate.set_xscale("log", base=2)
    rate.set_xticks(clients, [str(c) for c in clients])
    rate.set_xlabel("concurrent clients")
    rate.set_ylabel("checkouts per second", color="tab:blue")
    rate.set_ylim(bottom=0)
    latency = rate.twinx()
    latency.plot(clients, [s["p50_ms"] for s in steps], "s--", color="tab:green", label="p50 ms")
    latency.plot(clients, [s["p99_ms"] for s in steps], "^--", color="tab:red", label="p99 ms")
    limit = report.recommendation.get("p99_limit_ms", benchadvice.P99_LIMIT_MS)
    latency.axhline(limit, color="tab:red", linewidth=0.8, linestyle=":",
                    label=f"p99 limit {limit:.0f} ms")  # fmt: skip
    latency.set_ylabel("milliseconds")
    latency.set_ylim(bottom=0)
    cap = report.recommendation.get("capacity", {})
    if cap.get("clients"):
        rate.axvline(cap["clients"], color="grey", linewidth=0.8)
    handles = rate.get_legend_handles_labels()[0] + latency.get_legend_handles_labels()[0]
    rate.legend(handles, [str(h.get_label()) for h in handles], loc="upper left")
    rate.set_title(f"ecshop checkout: {report.sweep['target']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _figures_table(rows: dict[str, dict[str, Any]], extra: str = "") -> list[str]:
    head = "| | checkouts/s | p50 ms | p99 ms | errors |" + (f" {extra} |" if extra else "")
    lines = [head, "|---" * (5 + bool(extra)) + "|"]
    for label, f in rows.items():
        cells = (f"| {label} | {f['per_second']:.1f} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} "
                 f"| {f['errors']} |")  # fmt: skip
        lines.append(cells + (f" {f.get(extra, '')} |" if extra else ""))
    return lines


def _recommendation(r: dict[str, Any]) -> list[str]:
    cap = r["capacity"]
    noise = r.get("noise") or {
        "spread": 0.0,
        "value": benchadvice.NOISE,
        "floor": benchadvice.NOISE,
    }

    def value(v: Any) -> str:
        return (
            "not measured" if v is None else "yes" if v is True else "no" if v is False else str(v)
        )

    return [
        "## Recommendation", "",
        f"- **Capacity: {'at least ' if cap['at_least'] else ''}{cap['orders_per_minute']} "
        f"orders per minute** with p99 ≤ "
        f"{cap['limit_ms']:.0f} ms" + (f" ({cap['clients']} concurrent clients)" if cap["clients"] else ""),
        f"- **Workers: {value(r['workers']['value'])}**, **threads per worker "
        f"(`ECSHOP_THREADS`): {value(r['threads']['value'])}**",
        f"- **Redis for the stock engine: {value(r['redis']['value'])}**",
        f"- **Unix sockets to the servers: {value(r['unix_socket']['value'])}**", "",
        "## How this was derived", "",
        f"Every figure below was measured in this run; nothing is a constant of ecshop's. A "
        f"step or setting *keeps up* when its p99 is at most {cap['limit_ms']:.0f} ms and at "
        f"most {benchadvice.ERROR_SHARE:.0%} of its checkouts failed. Each setting and "
        f"ceiling ran in an early and a late slot; the faster slot of one was at most "
        f"{noise['spread']:.0%} faster than its slower one here, so two figures count as "
        f"different only when one is more than {noise['value']:.0%} faster than the other "
        f"(that, or {noise['floor']:.0%} if larger): anything less is this machine's noise. A "
        f"noisy run (other work on the machine) keeps the current settings; run it again when "
        f"the machine is quieter.", "",
        f"- Capacity: the sweep step that kept up with the most checkouts per second, times "
        f"60: {cap['why']}.",
        f"- Workers and threads: the setting that kept up with the most checkouts per second "
        f"side by side, unless the current one is within the noise of it: {r['workers']['why']}.",
        f"- Redis: only when it places more checkouts per second than the SQL engine by more "
        f"than the noise: {r['redis']['why']}.",
        f"- Unix sockets: when a round trip over the socket is {benchadvice.NOISE:.0%} "
        f"shorter than over TCP: {r['unix_socket']['why']}.", "",
    ]  # fmt: skip


def markdown(report: BenchReport, plot: str | None) -> str:
    """The owner's report: what the server can take, the settings, and every figure."""
    ctx = report.context
    lines = [f"# ecshop bench: {ctx.get('target', report.mode)}", "",
             f"- when: {ctx.get('started', '')}, {ctx.get('duration_s', 0):.0f} s",
             f"- command: `{ctx.get('command', 'ecshop bench')}`",
             f"- machine: {ctx.get('cpus', '?')} CPUs, load average {ctx.get('load_before', '?')} "
             f"before and {ctx.get('load_after', '?')} after",
             f"- clients: {report.clients} client processes on this machine (they share its CPUs "
             "with what they measure: the figures are a floor)", ""]  # fmt: skip
    if report.recommendation:
        lines += _recommendation(report.recommendation)
    if report.sweep.get("steps"):
        lines += ["## Concurrency sweep", "", f"{report.sweep['target']}, "
                  f"{report.sweep['step_seconds']:g} s a step.", ""]  # fmt: skip
        lines += (
            [f"![sweep]({plot})", ""]
            if plot
            else [
                "(matplotlib is not installed: `pip install 'ecshop[plot]'` draws this as a plot)",
                "",
            ]
        )
        lines += ["```", *sweep_table(report.sweep), "```", ""]
    if report.ceilings:
        c = report.ceilings
        lines += ["## Ceilings side by side", "", f"{c['clients']} clients, slots of "
                  f"{c['slot_seconds']:g} s in the order {', '.join(c['order'])}; the same gunicorn "
                  "settings and database for each.", ""]  # fmt: skip
        rows = {CEILING_NAMES.get(n, n): {**f, "ratio": f"{c['ecshop_vs'].get(n, 1.0):.2f}"}
                for n, f in c["routes"].items()}  # fmt: skip
        lines += [*_figures_table(rows, "ratio"), "",
                  "*ratio*: ecshop's checkouts per second over the row's.", ""]  # fmt: skip
    if report.settings.get("candidates"):
        s = report.settings
        lines += ["## Settings side by side", "", f"{s['clients']} clients, slots of "
                  f"{s['slot_seconds']:g} s.", ""]  # fmt: skip
        lines += [*_figures_table({c["name"]: c for c in s["candidates"]}), ""]
    if report.transports:
        lines += ["## Round trips", "", "| server | unix socket µs | TCP µs |", "|---|---|---|"]
        for server, t in report.transports.items():
            if t.get("skipped"):
                lines.append(f"| {server} | not compared: {t['skipped']} | |")
            else:
                lines.append(f"| {server} | {t['unix_us']:.0f} | {t['tcp_us']:.0f} |")
        lines.append("")
    lines += ["## The other phases", "", f"- {report.checkout_line()}",
              f"- {report.notifications_line()}",
              *[f"- {line}" for line in report.paid_lines()],
              *[f"- {line}" for line in report.pages_lines()]]  # fmt: skip
    if report.flash_sale:
        lines.append(f"- {report.flash_sale_line()}")
    if report.cleanup:
        lines += ["", "## Clean-up", "", f"- {report.cleanup.get('summary', '')}"]
    return "\n".join(lines) + "\n"
