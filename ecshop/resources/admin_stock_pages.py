"""The admin's stock pages: the levels of every SKU with a form to adjust by a delta
(with a reason) and one to set a count against the base the page showed; a CSV import
previewed before it is applied; the drift between the stock engine and the database,
and a rebuild after a confirmation.

They make the stock API's engine calls (``shop.stock``) under the admin's name
(``admin:<username>``, as :func:`ecshop.resources.admin_stock.actor_name` gives it) and
write the same audit lines (``stock.adjust``, ``stock.set``, ``stock.import``,
``stock.rebuild``). A count whose base is stale changes nothing: the page says what it
showed and what is there now.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import falcon

from ecshop import catalog
from ecshop.admins import require
from ecshop.errors import Conflict, NotFound, ShopError, StaleStock, ValidationError
from ecshop.resources._declare import declare, query
from ecshop.resources._page import FORM, HTML_ANSWER, MULTIPART, SEE_OTHER, local_path, see_other
from ecshop.resources.admin_pages import AdminPage
from ecshop.resources.admin_stock import actor_name
from ecshop.stock._types import MAX_DELTA
from ecshop.stock.counts import parse_counts_csv

PAGE_SIZE = 50
#: the most rows one import through the page takes (the API and the CLI take more)
MAX_PAGE_ROWS = 5000
IMPORT = "stock_import"  # the session's pending import: {"key", "filename", "diff"}
REFUSED = ("stale", "unknown_sku", "short")
AFTER = query("after", {"type": "string", "maxLength": 255}, description="the next page's cursor")
KEY_PARAM = query("key", {"type": "string", "maxLength": 64})


def _integer(form: dict[str, str], name: str, *, signed: bool = False) -> int:
    text = form.get(name, "").strip().replace(",", "")
    digits = text[1:] if signed and text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()) or int(digits) > MAX_DELTA:
        kind = "a whole number" if signed else "a whole number of 0 or more"
        raise ValidationError(f"{name} must be {kind}", field=name)
    return int(text)


def _signature(diff: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must not have moved between a preview and its apply."""
    return [(e["sku"], e["on_hand"], e["on_hand_before"], e["delta"], e["status"]) for e in diff]


class Stock(AdminPage):
    """``GET /admin/stock``, ``POST /admin/stock/adjust``, ``POST /admin/stock/set``."""

    @declare(params=(AFTER,), answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Levels per SKU, a page at a time, each with its adjust and count forms."""
        after = req.context.params["after"] or None
        levels, next_after = self.shop.stock.page(after=after, limit=PAGE_SIZE)
        rows, _ = catalog.find_products(self.shop.store, skus=list(levels), limit=len(levels) or 1)
        names = {r["sku"]: r for r in rows}
        items = [{"sku": sku, "name": names[sku]["name"] if sku in names else "",
                  "archived": bool(names.get(sku, {}).get("archived")), **lv.to_dict()}
                 for sku, lv in levels.items()]  # fmt: skip
        more = "/admin/stock?" + urlencode({"after": next_after}) if next_after else None
        self.render(req, resp, "admin/stock.html", {"items": items, "next_page": more})

    def _levels(self, sku: str) -> dict[str, int] | None:
        found = self.shop.stock.levels([sku])
        return found[sku].to_dict() if sku in found else None

    def _again(self, req: falcon.Request, resp: falcon.Response, sku: str, exc: ShopError,
               *, form: str, conflict: dict[str, int] | None = None) -> None:  # fmt: skip
        """The SKU's forms again, with what was typed, the levels now and the problem."""
        levels = self._levels(sku)
        self.render(req, resp, "admin/stock_item.html", {
            "sku": sku, "levels": levels, "form": form, "typed": req.context.form,
            "message": exc.message, "field": exc.details.get("field", ""), "conflict": conflict,
            "back": self._back(req)}, exc.status if levels is not None else 404)  # fmt: skip

    def _back(self, req: falcon.Request) -> str:
        back = local_path(req.context.form.get("back"), "/admin/stock")
        return back if back.split("?")[0] == "/admin/stock" else "/admin/stock"

    def _sku(self, req: falcon.Request) -> str:
        sku = req.context.form.get("sku", "")
        if not 0 < len(sku) <= 64:
            raise NotFound("no such SKU")
        return sku

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post_adjust(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Move a SKU's on hand by a delta, with a reason."""
        require(req.context.admin, "stock")
        sku, form = self._sku(req), req.context.form
        before = self._levels(sku)
        try:
            delta = _integer(form, "delta", signed=True)
            reason = form.get("reason", "")
            levels = self.shop.stock.adjust(sku, delta, reason=reason, actor=actor_name(req))
        except (ValidationError, Conflict, NotFound) as exc:
            self._again(req, resp, sku, exc, form="adjust")
            return
        self.audit(req, "stock.adjust", sku, before,
                   {**levels.to_dict(), "delta": delta, "reason": reason.strip()})  # fmt: skip
        self._done(req, resp, sku, before, levels.on_hand)

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post_set(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Set a SKU's on hand from a count, if it still is what the page showed."""
        require(req.context.admin, "stock")
        sku, form = self._sku(req), req.context.form
        before = self._levels(sku)
        try:
            on_hand = _integer(form, "on_hand")
            expected = _integer(form, "expected_on_hand")
            levels = self.shop.stock.set_on_hand(
                sku, on_hand, expected_on_hand=expected, actor=actor_name(req),
                reason=form.get("reason", "").strip() or "count",
            )  # fmt: skip
        except StaleStock as exc:
            conflict = {"page_had": int(exc.details["expected_on_hand"]),
                        "now": int(exc.details["on_hand"])}  # fmt: skip
            self._again(req, resp, sku, exc, form="set", conflict=conflict)
            return
        except (ValidationError, Conflict, NotFound) as exc:
            self._again(req, resp, sku, exc, form="set")
            return
        self.audit(req, "stock.set", sku, before, levels.to_dict())
        self._done(req, resp, sku, before, levels.on_hand)

    def _done(self, req: falcon.Request, resp: falcon.Response, sku: str,
              before: dict[str, int] | None, on_hand: int) -> None:  # fmt: skip
        was = before["on_hand"] if before else 0
        self.flash(req, self.tr(req, "%(sku)s: on hand %(was)s → %(now)s.", sku=sku, was=was,
                                now=on_hand))  # fmt: skip
        see_other(resp, f"{self._back(req)}#stock-{sku}")


class StockImport(AdminPage):
    """``GET|POST /admin/stock/import``, ``POST /admin/stock/import/apply``."""

    def _pending(self, req: falcon.Request, key: str | None) -> dict[str, Any] | None:
        pending = req.context.session.get(IMPORT)
        if not pending or not key or not secrets.compare_digest(str(pending["key"]), key):
            return None
        return dict(pending)

    def _keep(
        self, req: falcon.Request, filename: str, diff: list[dict[str, Any]]
    ) -> dict[str, Any]:
        pending = {"key": secrets.token_urlsafe(16), "filename": filename, "diff": diff}
        req.context.session.set(IMPORT, pending)
        return pending

    def _show(self, req: falcon.Request, resp: falcon.Response, *, pending: Any = None,
              errors: list[dict[str, Any]] | None = None, message: str = "",
              status: int = 200) -> None:  # fmt: skip
        diff = pending["diff"] if pending else []
        counts = {s: sum(1 for e in diff if e["status"] == s)
                  for s in ("change", "unchanged", *REFUSED)}  # fmt: skip
        refused = sum(counts[s] for s in REFUSED)
        self.render(req, resp, "admin/stock_import.html", {
            "pending": pending, "diff": diff, "counts": counts, "refused": refused,
            "errors": errors or [], "message": message, "max_rows": MAX_PAGE_ROWS}, status)  # fmt: skip

    @declare(params=(KEY_PARAM,), answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The upload form, or the preview of the uploaded counts."""
        key = req.context.params["key"]
        pending = self._pending(req, key)
        message = self.tr(req, "That preview is no longer there: upload the file again.")
        self._show(req, resp, pending=pending, message=message if key and not pending else "")

    @declare(raw_body=(MULTIPART, FORM), answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Read the CSV and preview what it would change (nothing is written)."""
        require(req.context.admin, "stock")
        upload = req.context.files.get("csv")
        if upload is None:
            self._show(req, resp, message=self.tr(req, "Choose a CSV file first."), status=400)
            return
        try:
            rows = parse_counts_csv(upload.data)
            if len(rows) > MAX_PAGE_ROWS:
                raise ValidationError(f"the file has {len(rows)} rows; the page takes at most "
                                      f"{MAX_PAGE_ROWS}: split it, or use the API", errors=[])  # fmt: skip
            diff = self.shop.stock.import_counts(rows, dry_run=True, actor=actor_name(req))
        except ValidationError as exc:
            self._show(req, resp, errors=list(exc.details.get("errors") or []),
                       message=exc.message, status=400)  # fmt: skip
            return
        pending = self._keep(req, upload.filename[:200], diff)
        see_other(resp, f"/admin/stock/import?key={pending['key']}")

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post_apply(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Apply exactly the previewed diff; if the stock moved since, show the new one."""
        require(req.context.admin, "stock")
        pending = self._pending(req, req.context.form.get("key"))
        if pending is None:
            self.flash(req, self.tr(req, "That preview is no longer there: upload the file again."),
                       "warning")  # fmt: skip
            see_other(resp, "/admin/stock/import")
            return
        diff, actor = pending["diff"], actor_name(req)
        rows = [{k: e[k] for k in ("line", "sku", "on_hand", "expected_on_hand")} for e in diff]
        fresh = self.shop.stock.import_counts(rows, dry_run=True, actor=actor)
        if _signature(fresh) != _signature(diff) or any(e["status"] in REFUSED for e in fresh):
            self._moved(req, resp, pending, fresh)
            return
        # NOTE: each row's base is pinned to what the preview showed, so a change that
        # lands between the check above and this write refuses the whole import.
        pinned = [
            {**row, "expected_on_hand": e["on_hand_before"]}
            for row, e in zip(rows, diff, strict=True)
        ]
        try:
            applied = self.shop.stock.import_counts(pinned, dry_run=False, actor=actor)
        except Conflict:
            self._moved(req, resp, pending, self.shop.stock.import_counts(rows, dry_run=True,
                                                                          actor=actor))  # fmt: skip
            return
        req.context.session.pop(IMPORT)
        self.audit(req, "stock.import", f"{len(applied)} SKUs", None, {"items": applied})
        changed = sum(1 for e in applied if e["status"] == "change")
        self.flash(req, self.tr(req, "Import applied: %(n)s SKUs changed.", n=changed))
        see_other(resp, "/admin/stock")

    def _moved(self, req: falcon.Request, resp: falcon.Response, pending: dict[str, Any],
               fresh: list[dict[str, Any]]) -> None:  # fmt: skip
        if _signature(fresh) == _signature(pending["diff"]):
            renewed = pending  # the same refused rows as shown: nothing new to preview
        else:
            renewed = self._keep(req, pending["filename"], fresh)
        self._show(req, resp, pending=renewed, status=409, message=self.tr(
            req, "The stock changed since the preview: this is the new diff. Nothing was applied."))  # fmt: skip


def _drift_line(entry: dict[str, Any]) -> dict[str, Any]:
    """One engine's drift entry in the page's terms: what the database says and what
    the engine holds (the SQL and Redis engines word it differently)."""
    if entry.get("sku") is None:
        return {"sku": None, "problem": entry.get("problem", "")}
    if "expected" in entry:
        expected, actual = entry["expected"], entry.get("actual")
    else:
        expected = {"available": entry["expected_available"], "held": entry["held"],
                    "sold_unshipped": entry["sold_unshipped"]}  # fmt: skip
        actual = {**expected, "available": entry["available"]}
    return {"sku": entry["sku"], "on_hand": entry["on_hand"], "expected": expected,
            "actual": actual, "trail": entry.get("audit_trail_sum")}  # fmt: skip


class StockAudit(AdminPage):
    """``GET /admin/stock/audit``, ``GET|POST /admin/stock/rebuild``."""

    @declare(answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The drift between the stock engine and the database, and the rebuild button."""
        drift = [_drift_line(e) for e in self.shop.stock.audit()]
        self.render(req, resp, "admin/stock_audit.html", {"drift": drift})

    @declare(answers=(HTML_ANSWER,), page=True)
    def on_get_rebuild(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Ask before rebuilding."""
        self.render(req, resp, "admin/stock_rebuild.html", {})

    @declare(raw_body=FORM, answers=(SEE_OTHER,), page=True)
    def on_post_rebuild(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Recompute the stock engine from the database, then audit again."""
        require(req.context.admin, "stock")
        before = self.shop.stock.audit()
        self.shop.stock.rebuild()
        drift = self.shop.stock.audit()
        self.audit(req, "stock.rebuild", "engine", {"drift": before}, {"drift": drift})
        if drift:
            self.flash(req, self.tr(req, "Rebuilt, but %(n)s SKUs still drift.", n=len(drift)),
                       "warning")  # fmt: skip
        else:
            self.flash(req, self.tr(req, "Rebuilt: the engine and the database agree."))
        see_other(resp, "/admin/stock/audit")


def add_routes(app: falcon.App, shop: Any, renderer: Any) -> None:
    """The stock pages (the SKU travels in the forms, never in the path)."""
    stock = Stock(shop, renderer)
    app.add_route("/admin/stock", stock)
    app.add_route("/admin/stock/adjust", stock, suffix="adjust")
    app.add_route("/admin/stock/set", stock, suffix="set")
    imports = StockImport(shop, renderer)
    app.add_route("/admin/stock/import", imports)
    app.add_route("/admin/stock/import/apply", imports, suffix="apply")
    audit = StockAudit(shop, renderer)
    app.add_route("/admin/stock/audit", audit)
    app.add_route("/admin/stock/rebuild", audit, suffix="rebuild")
