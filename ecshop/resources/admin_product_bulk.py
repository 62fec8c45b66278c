"""Bulk edits of products from the product list, behind a guard.

The admin picks the products (ticked boxes, or every product the list's search
matches: never all of them by default) and the change (a price, prices up or down by a
percentage, active or inactive). ``POST /admin/bulk`` plans it (:mod:`ecshop.bulkedit`)
and keeps the plan in the admin session, so the set of products is fixed there; ``GET
/admin/bulk?key=`` shows how many products it touches with their old and new values;
``POST /admin/bulk/apply`` applies it only when the admin typed that number, and only as
planned: a product changed meanwhile gives a new preview instead.
"""

from __future__ import annotations

import secrets
from typing import Any

import falcon

from ecshop import bulkedit, catalog
from ecshop.admins import require
from ecshop.errors import Conflict, ValidationError
from ecshop.resources._declare import declare, query
from ecshop.resources._page import FORM, HTML_ANSWER, SEE_OTHER, see_other
from ecshop.resources.admin_pages import AdminPage
from ecshop.resources.admin_products import PAGE_SIZE

KEY = "bulk"  # the session's pending plan: {"key", "action", "value", "lines", "same"}
KEY_PARAM = query("key", {"type": "string", "maxLength": 64})


class Bulk(AdminPage):
    """``POST /admin/bulk`` (plan), ``GET /admin/bulk?key=`` (preview),
    ``POST /admin/bulk/apply``."""

    def _rows(self, req: falcon.Request) -> list[dict[str, Any]]:
        """The products the form picked.

        Raises:
            ValidationError: nothing picked, or more than one bulk edit may change.
        """
        form = req.context.form
        cap = bulkedit.MAX_PRODUCTS
        if form.get("scope") == "filter":
            words, state = form.get("q", "").strip()[:100], form.get("state", "")
            if state not in catalog.STATES or not (words or state):
                raise ValidationError("search or choose a state first: a bulk edit never "
                                      "takes every product by itself", field="scope")  # fmt: skip
            rows, more = catalog.find_products(self.shop.store, query=words, state=state,
                                               limit=cap)  # fmt: skip
            rows = [r for r in rows if not r["archived"]]  # an archived one cannot change
        else:
            skus = sorted({s for s in req.context.form_lists.get("sku", []) if 0 < len(s) <= 64})
            if not skus:
                raise ValidationError("tick the products to change first", field="scope")
            if len(skus) > cap:
                raise ValidationError(f"pick at most {cap} products", field="scope")
            rows, more = catalog.find_products(self.shop.store, skus=skus, limit=cap)
        if more:
            raise ValidationError(f"more than {cap} products match: narrow the search",
                                  field="scope")  # fmt: skip
        return rows

    def _keep(self, req: falcon.Request, action: str, value: Any,
              rows: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
        lines, same = bulkedit.plan(rows, action, value)
        pending = {"key": secrets.token_urlsafe(16), "action": action, "value": str(value),
                   "lines": lines, "same": same}  # fmt: skip
        req.context.session.set(KEY, pending)
        return pending

    def _preview(self, req: falcon.Request, resp: falcon.Response, pending: dict[str, Any],
                 *, error: str = "", status: int = 200) -> None:  # fmt: skip
        self.render(req, resp, "admin/products_bulk.html", {
            "pending": pending, "count": len(pending["lines"]), "error": error,
            "currency": self.shop.config.currency}, status)  # fmt: skip

    def _pending(self, req: falcon.Request, key: str | None) -> dict[str, Any] | None:
        pending = req.context.session.get(KEY)
        if not pending or not key or not secrets.compare_digest(str(pending["key"]), key):
            return None
        return dict(pending)

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Plan a bulk edit of the picked products and show its preview."""
        require(req.context.admin, "products")
        form = req.context.form
        try:
            action = form.get("action", "")
            value = bulkedit.parse_value(action, form.get("value", ""))
            pending = self._keep(req, action, value, self._rows(req))
        except ValidationError as exc:
            self._list_again(req, resp, exc)
            return
        if not pending["lines"]:
            req.context.session.pop(KEY)
            self.flash(req, self.tr(req, "Nothing to change: the products already have that value."),
                       "warning")  # fmt: skip
            see_other(resp, "/admin/products")
            return
        see_other(resp, f"/admin/bulk?key={pending['key']}")

    def _list_again(self, req: falcon.Request, resp: falcon.Response, exc: ValidationError) -> None:
        form = req.context.form
        words, state = form.get("q", "")[:100], form.get("state", "")
        state = state if state in catalog.STATES else ""
        rows, _ = catalog.find_products(self.shop.store, query=words, state=state, limit=PAGE_SIZE)
        ticked = set(req.context.form_lists.get("sku", []))
        self.render(req, resp, "admin/products.html", {
            "products": [{**r, "on_hand": None, "picture": False, "ticked": r["sku"] in ticked}
                         for r in rows],
            "q": words, "state": state, "states": catalog.STATES, "next_page": None,
            "currency": self.shop.config.currency,
            "error": {"field": exc.details.get("field", ""), "message": exc.message},
            "bulk": {k: form.get(k, "") for k in ("scope", "action", "value")},
        }, 400)  # fmt: skip

    @declare(params=(KEY_PARAM,), answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The preview: how many products, each with its old and new value."""
        pending = self._pending(req, req.context.params["key"])
        if pending is None:
            self.flash(
                req, self.tr(req, "That preview is no longer there: start again."), "warning"
            )
            see_other(resp, "/admin/products")
            return
        self._preview(req, resp, pending)

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post_apply(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Apply the previewed edit when the typed count is its number of products."""
        require(req.context.admin, "products")
        pending = self._pending(req, req.context.form.get("key"))
        if pending is None:
            self.flash(
                req, self.tr(req, "That preview is no longer there: start again."), "warning"
            )
            see_other(resp, "/admin/products")
            return
        lines = pending["lines"]
        typed = req.context.form.get("count", "").strip()
        if typed != str(len(lines)):
            self._preview(req, resp, pending, status=400, error=self.tr(
                req, "You typed %(typed)s, but this changes %(n)s products: nothing was changed.",
                typed=typed or "—", n=len(lines)))  # fmt: skip
            return
        try:
            bulkedit.apply(self.shop.store, lines, currency=self.shop.config.currency,
                           tax_classes=dict(self.shop.config.tax_rates))  # fmt: skip
        except Conflict:
            self._replan(req, resp, pending)
            return
        req.context.session.pop(KEY)
        for line in lines:
            self.audit(req, "product.update", line["sku"], {line["field"]: line["old"]},
                       {line["field"]: line["new"], "bulk": pending["action"]})  # fmt: skip
        self.flash(req, self.tr(req, "%(n)s products were changed.", n=len(lines)))
        see_other(resp, "/admin/products")

    def _replan(self, req: falcon.Request, resp: falcon.Response, pending: dict[str, Any]) -> None:
        """Some products changed since the preview: the same products, planned again."""
        action = pending["action"]
        value = bulkedit.parse_value(action, pending["value"])
        skus = [line["sku"] for line in pending["lines"]]
        rows, _ = catalog.find_products(self.shop.store, skus=skus, limit=len(skus))
        fresh = self._keep(req, action, value, [r for r in rows if not r["archived"]])
        self._preview(req, resp, fresh, status=409, error=self.tr(
            req, "Some products changed since the preview: check the new values. Nothing was changed."))  # fmt: skip


def add_routes(app: falcon.App, shop: Any, renderer: Any) -> None:
    bulk = Bulk(shop, renderer)
    app.add_route("/admin/bulk", bulk)
    app.add_route("/admin/bulk/apply", bulk, suffix="apply")
