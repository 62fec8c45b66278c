"""Bulk edits of orders, guarded: ship or cancel the orders ticked on the list, or every
order an explicit filter matches (a status, a day or a search; never every order by
default).

``POST /admin/orders/bulk`` fixes the set and keeps it in the admin session under a
random key; ``GET /admin/orders/bulk/{key}`` lists it with what each order goes
through; the admin types how many orders that is, and ``POST /admin/orders/bulk/{key}``
makes the change order by order through :class:`ecshop.order_admin.OrderDesk`, each
with its own audit line. A wrong count refuses and touches nothing; an order that cannot
make the move (any more) is reported, never half-changed.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict
from typing import Any

import falcon

from ecshop import order_admin, order_search
from ecshop.errors import BadRequest, Conflict, NotFound, ShopError
from ecshop.order_admin import BULK_ACTIONS, Outcome
from ecshop.resources._declare import declare, path
from ecshop.resources._page import FORM, HTML_ANSWER, SEE_OTHER, see_other
from ecshop.resources.admin_orders import (
    BULK_MAX,
    CANNOT,
    NOT_OWNER,
    OrderPages,
    filter_of,
    list_url,
)

SESSION_KEY = "bulk"
#: previews a session keeps, and for how long
KEEP, PREVIEW_TTL = 5, 3600
PICK = "pick."
KEY = (path("key", {"type": "string", "minLength": 8, "maxLength": 64}),)
TITLES = {"ship": "Ship several orders", "cancel": "Cancel several orders"}
RESULTS = {"ship": "%(n)s of %(total)s orders were shipped.",
           "cancel": "%(n)s of %(total)s orders were cancelled."}  # fmt: skip
NOTHING_PICKED = "Tick at least one order first."
NO_FILTER = "Choose a status, a day or a search first: a bulk edit never takes every order."
TOO_MANY = "This filter matches more than %(n)s orders: narrow it down."
WRONG_COUNT = "You typed %(typed)s, but this changes %(n)s orders: nothing was changed. Type the number shown to go ahead."
GONE = "This bulk edit is over or was never made: start again from the list."
DONE_ALREADY = "This bulk edit was made already."
#: texts the bulk page shows from variables, for the translation check
SHOWN = (*TITLES.values(), *RESULTS.values(), NOTHING_PICKED, NO_FILTER, TOO_MANY,
         WRONG_COUNT, GONE, DONE_ALREADY)  # fmt: skip


class BulkEdit(OrderPages):
    """``POST /admin/orders/bulk``; ``GET|POST /admin/orders/bulk/{key}``."""

    # -- the session's previews ----------------------------------------------------------
    def _previews(self, req: falcon.Request) -> dict[str, Any]:
        now = time.time()
        kept = req.context.session.get(SESSION_KEY) or {}
        return {k: v for k, v in kept.items() if now - float(v.get("at", 0)) < PREVIEW_TTL}

    def _keep(self, req: falcon.Request, key: str, entry: dict[str, Any]) -> None:
        previews = {**self._previews(req), key: entry}
        newest = sorted(previews, key=lambda k: float(previews[k]["at"]))[-KEEP:]
        req.context.session.set(SESSION_KEY, {k: previews[k] for k in newest})

    def _entry(self, req: falcon.Request, key: str) -> dict[str, Any]:
        entry = self._previews(req).get(key)
        if entry is None:
            raise NotFound(self.tr(req, GONE), key=key)
        return dict(entry)

    # -- choosing the set ----------------------------------------------------------------
    def _chosen(self, req: falcon.Request, form: dict[str, str], scope: str) -> list[str]:
        """The orders ticked, or those the explicit filter matches (newest first).

        Raises:
            BadRequest: nothing ticked, no explicit filter, too many orders.
        """
        if scope == "selected":
            numbers = list(dict.fromkeys(k[len(PICK):] for k, v in form.items()
                                         if k.startswith(PICK) and v and len(k) <= 80))  # fmt: skip
            if not numbers:
                raise BadRequest(self.tr(req, NOTHING_PICKED))
        else:
            f = filter_of(form)
            if not f.explicit:
                raise BadRequest(self.tr(req, NO_FILTER))
            rows, more = order_search.page(self.shop.store, f, zone=self.shop.config.timezone,
                                           limit=BULK_MAX)  # fmt: skip
            if more:
                raise BadRequest(self.tr(req, TOO_MANY, n=BULK_MAX))
            numbers = [r["number"] for r in rows]
        if len(numbers) > BULK_MAX:
            raise BadRequest(self.tr(req, TOO_MANY, n=BULK_MAX))
        return numbers

    @declare(raw_body=FORM, answers=(SEE_OTHER, HTML_ANSWER), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Fix the set of a bulk edit and show it (nothing changes yet)."""
        form = req.context.form
        action, _, scope = form.get("bulk", "").partition(":")
        if action not in BULK_ACTIONS or scope not in ("selected", "filter"):
            raise BadRequest("choose ship or cancel, for the ticked orders or the filter")
        try:
            numbers = self._chosen(req, form, scope)
        except BadRequest as exc:
            self._refuse_list(req, resp, exc, filter_of(form))
            return
        plans, left_out = self.desk.bulk_plan(action, numbers, role=self.role(req))
        key = secrets.token_urlsafe(16)
        self._keep(req, key, {
            "action": action, "scope": scope, "filter": filter_of(form).params(), "at": time.time(),
            "numbers": [p.number for p in plans], "left_out": [asdict(o) for o in left_out],
            "done": None,
        })  # fmt: skip
        see_other(resp, f"/admin/orders/bulk/{key}")

    def _refuse_list(self, req: falcon.Request, resp: falcon.Response, exc: ShopError,
                     f: order_search.OrderFilter) -> None:  # fmt: skip
        self.render(req, resp, "admin/error.html", {
            "status": exc.status, "code": exc.code, "title": self.tr(req, "Please check your input"),
            "message": exc.message, "back": "", "back_list": list_url(f)}, exc.status)  # fmt: skip

    # -- the preview and the change ------------------------------------------------------
    @declare(params=KEY, answers=(HTML_ANSWER,), page=True)
    def on_get_key(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        """The preview: how many orders, which, and what each goes through; or, once
        made, what became of each."""
        self._show(req, resp, key, self._entry(req, key))

    @declare(params=KEY, raw_body=FORM, answers=(SEE_OTHER, HTML_ANSWER), page=True)
    def on_post_key(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        """Make the change, if the count typed is the number of orders in the set."""
        entry = self._entry(req, key)
        if entry["done"] is not None:
            raise Conflict(self.tr(req, DONE_ALREADY), key=key)
        numbers = list(entry["numbers"])
        typed = req.context.form.get("count", "").strip()
        if not numbers or typed != str(len(numbers)):
            error = self.tr(req, WRONG_COUNT, typed=typed[:12] or "—", n=len(numbers))
            self._show(req, resp, key, entry, error=error, status=400)
            return
        action = str(entry["action"])
        outcomes = self.desk.bulk_do(action, numbers, actor=req.context.actor, role=self.role(req))
        entry["done"] = [asdict(o) for o in outcomes]
        self._keep(req, key, entry)
        done = sum(1 for o in outcomes if o.done)
        self.flash(req, RESULTS[action], "info" if done == len(outcomes) else "warning",
                   n=done, total=len(outcomes))  # fmt: skip
        see_other(resp, f"/admin/orders/bulk/{key}")

    def _show(self, req: falcon.Request, resp: falcon.Response, key: str, entry: dict[str, Any],
              error: str = "", status: int = 200) -> None:  # fmt: skip
        action = str(entry["action"])
        numbers = list(entry["numbers"])
        rows = order_search.by_numbers(
            self.shop.store, numbers + [o["number"] for o in entry["left_out"]]
        )
        items = []
        for number in numbers:
            row = rows.get(number, {"number": number})
            item = {**row, "status_name": self.status_name(req, str(row.get("status", "")))}
            try:
                plan = order_admin.plan_of(self.desk.load(number), action)
                item["refund"], item["now"] = plan.refund, ""
            except ShopError as exc:
                item["refund"], item["now"] = (
                    0,
                    self.reason(req, action, order_admin.refused(number, exc)),
                )
            items.append(item)
        left_out = [{**rows.get(o["number"], {"number": o["number"]}),
                     "reason": self.reason(req, action, Outcome(**o))} for o in entry["left_out"]]  # fmt: skip
        results = None
        if entry["done"] is not None:
            results = [{**o, "status_name": self.status_name(req, o["status"]),
                        "reason": "" if o["done"] else self.reason(req, action, Outcome(**o))}
                       for o in entry["done"]]  # fmt: skip
        self.render(req, resp, "admin/orders_bulk.html", {
            "key": key, "action": action, "title": self.tr(req, TITLES[action]), "items": items,
            "left_out": left_out, "results": results, "error": error, "count": len(numbers),
            "refund_total": sum(i["refund"] for i in items),
            "currency": next((i["currency"] for i in items if i.get("currency")), self.shop.config.currency),
            "back": list_url(filter_of(entry["filter"])),
        }, status)  # fmt: skip

    def reason(self, req: falcon.Request, action: str, outcome: Outcome) -> str:
        """Why an order cannot make the move, for a person."""
        if outcome.error == "not_allowed":
            return self.tr(req, NOT_OWNER)
        if outcome.error == "illegal_transition" and action in CANNOT:
            return self.tr(req, CANNOT[action], number=outcome.number,
                           status=self.status_name(req, outcome.status))  # fmt: skip
        return outcome.message
