"""Service endpoints: health, metrics, the maintenance switch and the gateways found."""

from __future__ import annotations

import logging
from typing import Any

import falcon

from ecshop import maintenance, metrics
from ecshop.logconf import Repeats
from ecshop.resources._declare import PAGING, Answer, declare, ok, page_of
from ecshop.resources._http import audit_request, send_json
from ecshop.resources._shapes import GATEWAY, HEALTH, MAINTENANCE
from ecshop.schema import FLAG, obj

log = logging.getLogger("ecshop.http")

SWITCH = obj({"on": FLAG}, {
    "message": {"type": "string", "maxLength": 500, "description": "a text of at most 500 characters"},
    "retry_after": {"type": "integer", "minimum": 1, "maximum": 86400,
                    "description": "a number of seconds from 1 to 86400"},
})  # fmt: skip


class Health:
    """``GET /healthz``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop
        self.repeats = Repeats(log)  # a load balancer asks every few seconds

    @declare(answers=(ok(HEALTH, "every part answers"), Answer(503, "a part fails", HEALTH)))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """200 when the database and the stock engine answer, 503 otherwise.

        The body says which part fails, never why: a driver's error can name hosts,
        users or paths. The reason goes to the log with the request's id."""
        parts: dict[str, Any] = {
            "database": self._probe("database", self._database),
            "stock": self._probe("stock", self.shop.stock.levels, []),
        }
        if parts["stock"]["ok"]:
            parts["stock"]["engine"] = type(self.shop.stock).__name__
        ok = all(p["ok"] for p in parts.values())
        send_json(resp, {"ok": ok, "parts": parts}, falcon.HTTP_200 if ok else falcon.HTTP_503)

    def _database(self) -> None:
        with self.shop.store.read() as tx:
            tx.scalar("SELECT 1")

    def _probe(self, part: str, check: Any, *args: Any) -> dict[str, Any]:
        try:
            check(*args)
        except Exception as exc:
            self.repeats.failed(f"health:{part}", "health: the %s does not answer: %s", part,
                                exc, exc_info=exc)  # fmt: skip
            return {"ok": False, "error": "not answering"}
        return {"ok": True}


class Metrics:
    """``GET /metrics`` in the Prometheus text format, summed over every worker."""

    def __init__(self, shop: Any, folder: str = "") -> None:
        self.shop = shop
        self.folder = folder  # the multiprocess folder, "" for this process alone

    @declare(answers=(
        Answer(200, "Prometheus text format", {"type": "string"}, "text/plain"),
        Answer(401, "no or a wrong ECSHOP_METRICS_TOKEN, from an address not allowed"),
        Answer(403, "an address not in ECSHOP_METRICS_ALLOW (and no token is set)"),
    ))  # fmt: skip
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Every worker's counters, histograms and gauges, and orders by status: with
        the metrics token, or from an allowed address."""
        resp.content_type = metrics.CONTENT_TYPE
        resp.data = metrics.exposition(self.shop.store, self.folder)


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


class GatewayList:
    """``GET /api/v1/admin/gateways``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=PAGING, answers=(ok(page_of(GATEWAY), "a page of gateways by name"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Every gateway found: live or not (with what it lacks), test mode, offline.
        Tools that place test orders (``ecshop bench --url``) pick a test-mode one here."""
        limit, after = req.context.params["limit"], req.context.params["after"]
        table = [g for g in self.shop.plugins.gateway_table() if not after or g["name"] > after]
        more = len(table) > limit
        table = table[:limit]
        send_json(resp, {"items": table, "next_after": table[-1]["name"] if more else None})
