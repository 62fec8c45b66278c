"""Service endpoints: health, metrics and the maintenance switch."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import falcon

from ecshop import maintenance
from ecshop.metrics import WorkerCounters, render, sample
from ecshop.resources._declare import Answer, declare, ok
from ecshop.resources._http import audit_request, send_json
from ecshop.resources._shapes import HEALTH, MAINTENANCE
from ecshop.schema import FLAG, obj

SWITCH = obj({"on": FLAG}, {
    "message": {"type": "string", "maxLength": 500, "description": "a text of at most 500 characters"},
    "retry_after": {"type": "integer", "minimum": 1, "maximum": 86400,
                    "description": "a number of seconds from 1 to 86400"},
})  # fmt: skip


class Health:
    """``GET /healthz``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(answers=(ok(HEALTH, "every part answers"), Answer(503, "a part fails", HEALTH)))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """200 when the database and the stock engine answer, 503 otherwise."""
        parts: dict[str, Any] = {}
        try:
            with self.shop.store.read() as tx:
                tx.scalar("SELECT 1")
            parts["database"] = {"ok": True}
        except Exception as exc:
            parts["database"] = {"ok": False, "error": str(exc)[:200]}
        try:
            self.shop.stock.levels([])
            parts["stock"] = {"ok": True, "engine": type(self.shop.stock).__name__}
        except Exception as exc:
            parts["stock"] = {"ok": False, "error": str(exc)[:200]}
        ok = all(p["ok"] for p in parts.values())
        send_json(resp, {"ok": ok, "parts": parts}, falcon.HTTP_200 if ok else falcon.HTTP_503)


COUNTER_KINDS = {
    "ecshop_http_responses_total": "counter",
    "ecshop_plugin_action_errors_total": "counter",
    "ecshop_shed_requests_total": "counter",
}


def worker_samples(shop: Any, responses: Counter[tuple[str, str]]) -> dict[str, float]:
    """This process's counters: responses, plugin action errors, shedding, group commit."""
    samples = dict(
        sample("ecshop_http_responses_total", count, route=route, status=status)
        # NOTE: list() copies under the GIL: the timer thread reads while requests count.
        for (route, status), count in list(responses.items())
    )
    for key, count in list((getattr(shop.hooks, "action_errors", {}) or {}).items()):
        plugin, hook = key if isinstance(key, tuple) else (str(key), "")
        samples.update(
            [sample("ecshop_plugin_action_errors_total", count, plugin=plugin, hook=hook)]
        )
    shedder = shop.extras.get("shedder")
    if shedder is not None:
        samples.update([sample("ecshop_shed_requests_total", shedder.shed)])
    limiter = shop.extras.get("limiter")
    if limiter is not None:
        samples.update([sample("ecshop_rate_limited_requests_total", limiter.limited)])
    group = getattr(shop.store, "group", None)
    if group is not None:
        samples.update([sample("ecshop_group_commits_total", group.batches),
                        sample("ecshop_group_commit_writes_total", group.items)])  # fmt: skip
    return samples


class Metrics:
    """``GET /metrics`` in the Prometheus text format, summed over every worker."""

    def __init__(self, shop: Any, counters: WorkerCounters) -> None:
        self.shop = shop
        self.counters = counters

    @declare(answers=(Answer(200, "Prometheus text format", {"type": "string"}, "text/plain"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Orders by status, unapplied payment events, and the workers' counters."""
        lines = ["# TYPE ecshop_orders gauge"]
        with self.shop.store.read() as tx:
            for row in tx.query("SELECT status, COUNT(*) AS n FROM orders GROUP BY status"):
                lines.append(f'ecshop_orders{{status="{row["status"]}"}} {int(row["n"])}')
            unapplied = tx.scalar("SELECT COUNT(*) FROM payments_journal WHERE applied_at IS NULL")
        lines += [
            "# TYPE ecshop_payment_events_unapplied gauge",
            f"ecshop_payment_events_unapplied {int(unapplied)}",
        ]
        lines += render(self.counters.totals(), COUNTER_KINDS)
        lines.append(f"ecshop_scrape_timestamp_seconds {time.time():.3f}")
        resp.content_type = "text/plain; version=0.0.4"
        resp.text = "\n".join(lines) + "\n"


class MaintenanceResource:
    """``POST /api/v1/admin/maintenance``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(answers=(ok(MAINTENANCE, "the switch"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Whether maintenance mode is on."""
        state = maintenance.read(self.shop.store)
        send_json(
            resp, {"on": state.on, "message": state.message, "retry_after": state.retry_after}
        )

    @declare(body=SWITCH, answers=(ok(MAINTENANCE, "the switch"),))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Turn maintenance mode on or off: ``{"on": true, "message": "..."}``."""
        body = req.context.body
        message = body.get("message", "")
        retry_after = body.get("retry_after", 300)
        before = maintenance.read(self.shop.store)
        state = maintenance.Maintenance(body["on"], message, retry_after)
        maintenance.write(self.shop.store, state)
        audit_request(self.shop.store, req, "maintenance.set", "maintenance", before.__dict__,
                      state.__dict__)  # fmt: skip
        send_json(resp, {"on": body["on"], "message": message, "retry_after": retry_after})
