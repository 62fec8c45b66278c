"""Admin stock endpoints: levels, adjustments, counts, CSV import, audit and rebuild.

Resources only parse, call the stock engine and render; the rules live in
``ecshop.stock``. Admin authentication is done by the app's middleware.
"""

from __future__ import annotations

from typing import Any

import falcon

from ecshop.errors import PayloadTooLarge
from ecshop.resources._declare import PAGING, declare, ok, page_of, path, query
from ecshop.resources._http import DEFAULT_MAX_BODY, audit_request, read_body, send_json
from ecshop.resources._shapes import AUDIT, IMPORT_DIFF, REBUILT, STOCK_ITEM
from ecshop.schema import COUNT, DELTA, SKU, TEXT, obj
from ecshop.stock._types import Levels
from ecshop.stock.counts import parse_counts_csv

MAX_CSV = 16 * 1024 * 1024
SKU_PATH = (path("sku", SKU),)
ADJUSTMENT = obj({"delta": DELTA, "reason": TEXT})
COUNTED = obj({"on_hand": COUNT, "expected_on_hand": COUNT}, {"reason": TEXT})


def actor_name(req: falcon.Request) -> str:
    """The name stock changes are recorded under (``token``, ``admin:<name>``)."""
    actor = getattr(req.context, "actor", None)
    return str(getattr(actor, "name", None) or actor or "admin")


def _item(sku: str, levels: Levels) -> dict[str, Any]:
    return {"sku": sku, **levels.to_dict()}


class _Resource:
    def __init__(self, engine: Any, *, max_body: int = DEFAULT_MAX_BODY, store: Any = None) -> None:
        self.engine = engine
        self.max_body = max_body
        self.store = store

    def levels(self, sku: str) -> dict[str, Any] | None:
        found = self.engine.levels([sku])
        return found[sku].to_dict() if sku in found else None

    def audit(self, req: falcon.Request, action: str, target: str, before: Any, after: Any) -> None:
        if self.store is not None:
            audit_request(self.store, req, action, target, before, after)


class StockList(_Resource):
    """``GET /api/v1/admin/stock``: levels per SKU, paged by SKU."""

    @declare(params=PAGING, answers=(ok(page_of(STOCK_ITEM), "a page of levels"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Levels per SKU: on hand, available, held and sold but not shipped."""
        limit, after = req.context.params["limit"], req.context.params["after"]
        found, next_after = self.engine.page(after=after, limit=limit)
        send_json(
            resp,
            {"items": [_item(s, lv) for s, lv in found.items()], "next_after": next_after},
        )


class StockAdjust(_Resource):
    """``POST /api/v1/admin/stock/{sku}/adjust`` ``{"delta": -2, "reason": "damaged"}``."""

    @declare(params=SKU_PATH, body=ADJUSTMENT, answers=(ok(STOCK_ITEM, "the new levels"),))
    def on_post(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """Move on_hand by a delta, with a reason."""
        body = req.context.body
        before = self.levels(sku)
        levels = self.engine.adjust(
            sku, body["delta"], reason=body["reason"], actor=actor_name(req)
        )
        self.audit(req, "stock.adjust", sku, before,
                   {**levels.to_dict(), "delta": body["delta"], "reason": body["reason"]})  # fmt: skip
        send_json(resp, _item(sku, levels))


class StockItem(_Resource):
    """``GET``/``PUT /api/v1/admin/stock/{sku}``; PUT ``{"on_hand": 40, "expected_on_hand": 42}``
    sets a count, 409 when the base is stale."""

    @declare(params=SKU_PATH, answers=(ok(STOCK_ITEM, "the levels"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """The levels of one SKU."""
        found = self.engine.levels([sku])
        if sku not in found:
            raise falcon.HTTPNotFound()
        send_json(resp, _item(sku, found[sku]))

    @declare(params=SKU_PATH, body=COUNTED, answers=(ok(STOCK_ITEM, "the new levels"),))
    def on_put(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """Set on_hand from a count; 409 when expected_on_hand is no longer true."""
        body = req.context.body
        before = self.levels(sku)
        levels = self.engine.set_on_hand(
            sku, body["on_hand"], expected_on_hand=body["expected_on_hand"], actor=actor_name(req),
            reason=body.get("reason", "count"),
        )  # fmt: skip
        self.audit(req, "stock.set", sku, before, levels.to_dict())
        send_json(resp, _item(sku, levels))


class StockImport(_Resource):
    """``POST /api/v1/admin/stock/import[?dry_run=1]``: CSV ``sku,on_hand[,expected_on_hand]``.

    Malformed rows are reported by line number and nothing is written; a dry run returns
    the diff and changes nothing; otherwise every row is applied or none is.
    """

    @declare(params=(query("dry_run", {"type": "boolean", "default": False}),),
             raw_body="text/csv", answers=(ok(IMPORT_DIFF, "the diff, applied or not"),))  # fmt: skip
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Import counts from CSV sku,on_hand[,expected_on_hand]; all rows or none."""
        dry_run = req.context.params["dry_run"]
        try:
            raw = read_body(req, MAX_CSV)
        except PayloadTooLarge as exc:
            raise PayloadTooLarge(
                f"the CSV is over the limit of {MAX_CSV} bytes", limit=MAX_CSV
            ) from exc
        rows = parse_counts_csv(raw)
        diff = self.engine.import_counts(rows, dry_run=bool(dry_run), actor=actor_name(req))
        if not dry_run:
            self.audit(req, "stock.import", f"{len(diff)} SKUs", None, {"items": diff})
        send_json(resp, {"dry_run": bool(dry_run), "applied": not dry_run, "items": diff})


class StockAudit(_Resource):
    """``GET /api/v1/admin/stock/audit``: drift between the engine and the database."""

    @declare(answers=(ok(AUDIT, "the drift, empty when consistent"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Drift between the stock engine and the database."""
        drift = self.engine.audit()
        send_json(resp, {"items": drift, "next_after": None, "consistent": not drift})


class StockRebuild(_Resource):
    """``POST /api/v1/admin/stock/rebuild``: recompute the engine from the database."""

    @declare(answers=(ok(REBUILT, "rebuilt"),))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Recompute the stock engine from the database."""
        before = self.engine.audit()
        self.engine.rebuild()
        drift = self.engine.audit()
        self.audit(req, "stock.rebuild", "engine", {"drift": before}, {"drift": drift})
        send_json(resp, {"rebuilt": True, "drift": drift, "consistent": not drift})


def add_routes(app: falcon.App, shop: Any) -> None:
    """Mount the admin stock endpoints on ``app`` for ``shop.stock``."""
    engine = shop.stock
    max_body = int(getattr(getattr(shop, "config", None), "max_body", DEFAULT_MAX_BODY))
    store = getattr(shop, "store", None)
    app.add_route("/api/v1/admin/stock", StockList(engine, max_body=max_body, store=store))
    app.add_route("/api/v1/admin/stock/import", StockImport(engine, max_body=max_body, store=store))
    app.add_route("/api/v1/admin/stock/audit", StockAudit(engine, max_body=max_body, store=store))
    app.add_route(
        "/api/v1/admin/stock/rebuild", StockRebuild(engine, max_body=max_body, store=store)
    )
    app.add_route("/api/v1/admin/stock/{sku}", StockItem(engine, max_body=max_body, store=store))
    app.add_route(
        "/api/v1/admin/stock/{sku}/adjust", StockAdjust(engine, max_body=max_body, store=store)
    )
