"""Service endpoints: health, metrics and the maintenance switch."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import falcon

from ecshop import maintenance
from ecshop.errors import ValidationError
from ecshop.resources._http import read_json, send_json


class Health:
    """``GET /healthz``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

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


class Metrics:
    """``GET /metrics`` in the Prometheus text format."""

    def __init__(self, shop: Any, counters: Counter[tuple[str, str]]) -> None:
        self.shop = shop
        self.counters = counters

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Orders by status, unapplied payment events, plugin action errors and requests of this worker."""
        lines = ["# TYPE ecshop_orders gauge"]
        with self.shop.store.read() as tx:
            for row in tx.query("SELECT status, COUNT(*) AS n FROM orders GROUP BY status"):
                lines.append(f'ecshop_orders{{status="{row["status"]}"}} {int(row["n"])}')
            unapplied = tx.scalar("SELECT COUNT(*) FROM payments_journal WHERE applied_at IS NULL")
        lines += [
            "# TYPE ecshop_payment_events_unapplied gauge",
            f"ecshop_payment_events_unapplied {int(unapplied)}",
        ]
        errors = getattr(self.shop.hooks, "action_errors", {}) or {}
        lines.append("# TYPE ecshop_plugin_action_errors_total counter")
        for key, count in sorted(errors.items()):
            plugin, hook = key if isinstance(key, tuple) else (str(key), "")
            lines.append(
                f'ecshop_plugin_action_errors_total{{plugin="{plugin}",hook="{hook}"}} {count}'
            )
        pid = os.getpid()
        lines.append("# TYPE ecshop_http_responses_total counter")
        for (route, status), count in sorted(self.counters.items()):
            lines.append(
                f'ecshop_http_responses_total{{worker="{pid}",route="{route}",status="{status}"}} {count}'
            )
        shedder = self.shop.extras.get("shedder")
        if shedder is not None:
            lines += [
                "# TYPE ecshop_shed_requests_total counter",
                f'ecshop_shed_requests_total{{worker="{pid}"}} {shedder.shed}',
            ]
        group = getattr(self.shop.store, "group", None)
        if group is not None:
            lines += [
                "# TYPE ecshop_group_commits_total counter",
                f'ecshop_group_commits_total{{worker="{pid}"}} {group.batches}',
                "# TYPE ecshop_group_commit_writes_total counter",
                f'ecshop_group_commit_writes_total{{worker="{pid}"}} {group.items}',
            ]
        lines.append(f"ecshop_scrape_timestamp_seconds {time.time():.3f}")
        resp.content_type = "text/plain; version=0.0.4"
        resp.text = "\n".join(lines) + "\n"


class MaintenanceResource:
    """``POST /api/v1/admin/maintenance``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Whether maintenance mode is on."""
        state = maintenance.read(self.shop.store)
        send_json(
            resp, {"on": state.on, "message": state.message, "retry_after": state.retry_after}
        )

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Turn maintenance mode on or off: ``{"on": true, "message": "..."}``."""
        body = read_json(req, self.shop.config.max_body)
        if not isinstance(body.get("on"), bool):
            raise ValidationError("on must be true or false", field="on")
        message = body.get("message", "")
        retry_after = body.get("retry_after", 300)
        if not isinstance(message, str) or type(retry_after) is not int or retry_after <= 0:
            raise ValidationError("message must be a string and retry_after a positive integer")
        maintenance.write(
            self.shop.store, maintenance.Maintenance(body["on"], message, retry_after)
        )
        send_json(resp, {"on": body["on"], "message": message, "retry_after": retry_after})
