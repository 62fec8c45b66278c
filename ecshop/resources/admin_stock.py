"""Admin stock endpoints: levels, adjustments, counts, CSV import, audit and rebuild.

Resources only parse, call the stock engine and render; the rules live in
``ecshop.stock``. Admin authentication is done by the app's middleware.
"""

from __future__ import annotations

from typing import Any

import falcon

from ecshop.errors import PayloadTooLarge, ValidationError
from ecshop.resources._http import paging, read_json, send_json
from ecshop.stock._types import Levels
from ecshop.stock.counts import parse_counts_csv

DEFAULT_MAX_BODY = 1024 * 1024
MAX_CSV = 16 * 1024 * 1024


def _actor(req: falcon.Request) -> str:
    return str(getattr(req.context, "actor", None) or "admin")


def _item(sku: str, levels: Levels) -> dict[str, Any]:
    return {"sku": sku, **levels.to_dict()}


def _int_field(body: dict[str, Any], name: str, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if type(value) is not int:
        raise ValidationError(f"{name} must be an integer", field=name)
    return value


class _Resource:
    def __init__(self, engine: Any, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.engine = engine
        self.max_body = max_body


class StockList(_Resource):
    """``GET /api/v1/admin/stock``: levels per SKU, paged by SKU."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, after = paging(req)
        found, next_after = self.engine.page(after=after, limit=limit)
        send_json(
            resp,
            {"items": [_item(s, lv) for s, lv in found.items()], "next_after": next_after},
        )


class StockAdjust(_Resource):
    """``POST /api/v1/admin/stock/{sku}/adjust`` ``{"delta": -2, "reason": "damaged"}``."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        body = read_json(req, self.max_body)
        delta = _int_field(body, "delta")
        reason = body.get("reason")
        levels = self.engine.adjust(sku, delta, reason=reason, actor=_actor(req))
        send_json(resp, _item(sku, levels))


class StockItem(_Resource):
    """``GET``/``PUT /api/v1/admin/stock/{sku}``; PUT ``{"on_hand": 40, "expected_on_hand": 42}``
    sets a count, 409 when the base is stale."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        found = self.engine.levels([sku])
        if sku not in found:
            raise falcon.HTTPNotFound()
        send_json(resp, _item(sku, found[sku]))

    def on_put(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        body = read_json(req, self.max_body)
        on_hand = _int_field(body, "on_hand")
        expected = _int_field(body, "expected_on_hand")
        reason = body.get("reason", "count")
        levels = self.engine.set_on_hand(
            sku, on_hand, expected_on_hand=expected, actor=_actor(req), reason=reason
        )
        send_json(resp, _item(sku, levels))


class StockImport(_Resource):
    """``POST /api/v1/admin/stock/import[?dry_run=1]``: CSV ``sku,on_hand[,expected_on_hand]``.

    Malformed rows are reported by line number and nothing is written; a dry run returns
    the diff and changes nothing; otherwise every row is applied or none is.
    """

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        dry_run = req.get_param_as_bool("dry_run", default=False)
        if req.content_length is not None and req.content_length > MAX_CSV:
            raise PayloadTooLarge(f"the CSV is over the limit of {MAX_CSV} bytes", limit=MAX_CSV)
        raw = req.bounded_stream.read(MAX_CSV + 1)
        if len(raw) > MAX_CSV:
            raise PayloadTooLarge(f"the CSV is over the limit of {MAX_CSV} bytes", limit=MAX_CSV)
        rows = parse_counts_csv(raw)
        diff = self.engine.import_counts(rows, dry_run=bool(dry_run), actor=_actor(req))
        send_json(resp, {"dry_run": bool(dry_run), "applied": not dry_run, "items": diff})


class StockAudit(_Resource):
    """``GET /api/v1/admin/stock/audit``: drift between the engine and the database."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        drift = self.engine.audit()
        send_json(resp, {"items": drift, "next_after": None, "consistent": not drift})


class StockRebuild(_Resource):
    """``POST /api/v1/admin/stock/rebuild``: recompute the engine from the database."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.engine.rebuild()
        drift = self.engine.audit()
        send_json(resp, {"rebuilt": True, "drift": drift, "consistent": not drift})


def add_routes(app: falcon.App, shop: Any) -> None:
    """Mount the admin stock endpoints on ``app`` for ``shop.stock``."""
    engine = shop.stock
    max_body = int(getattr(getattr(shop, "config", None), "max_body", DEFAULT_MAX_BODY))
    app.add_route("/api/v1/admin/stock", StockList(engine, max_body=max_body))
    app.add_route("/api/v1/admin/stock/import", StockImport(engine, max_body=max_body))
    app.add_route("/api/v1/admin/stock/audit", StockAudit(engine, max_body=max_body))
    app.add_route("/api/v1/admin/stock/rebuild", StockRebuild(engine, max_body=max_body))
    app.add_route("/api/v1/admin/stock/{sku}", StockItem(engine, max_body=max_body))
    app.add_route("/api/v1/admin/stock/{sku}/adjust", StockAdjust(engine, max_body=max_body))
