"""The owner's pages under ``/admin``: login, the dashboard, maintenance, plugins,
members and the audit log (orders, products and stock have their own modules).

Every ``/admin`` route is the ``admin_pages`` lane (decided on the matched route, like
every lane): open in maintenance, never shed, and behind :class:`AdminGate`, which wants
an admin session (its own cookie, ``ecshop_admin``, SameSite=Strict, signed for another
purpose than a shopper's) on every route but the login page. A role that may not do
something gets a 403 page (:func:`ecshop.admins.require`). Each change is written to
the audit log with the admin's name (:mod:`ecshop.audit`).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import falcon

from ecshop import audit, maintenance
from ecshop.admins import AdminLoginFailed, require
from ecshop.audit import Actor
from ecshop.reconcile import LAST_PASS
from ecshop.resources._declare import declare, query
from ecshop.resources._page import (
    FORM,
    HTML_ANSWER,
    SEE_OTHER,
    local_path,
    page_language,
    render,
    see_other,
)
from ecshop.resources.middleware import ADMIN_PAGES, lane_of
from ecshop.resources.ratelimit import client_address
from ecshop.throttle import LoginThrottled

NEXT = query("next", {"type": "string", "maxLength": 2000}, description="where to go after")
#: how long an admin session lasts after its last use
ADMIN_SESSION_TTL = 12 * 3600
HOURS = 48
#: texts the admin templates show from variables (the navigation, the roles) and the
#: messages of this module, for the translation check
SHOWN = ("Dashboard", "Orders", "Products", "Stock", "Members", "Maintenance", "Plugins",
         "Audit log", "owner", "staff", "The user name, password or code is wrong.",
         "Too many failed logins: wait 15 minutes and try again.", "Maintenance is on.",
         "Maintenance is off.", "You are logged out.")  # fmt: skip


class AdminGate:
    """Lets only a logged-in admin reach an ``/admin`` route (the login page aside):
    a GET goes to the login page, anything else is a 403."""

    def __init__(self, admins: Any) -> None:
        self.admins = admins

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        if lane_of(req.uri_template) != ADMIN_PAGES:
            return
        session = getattr(req.context, "session", None)
        admin = self.admins.get(session.get("admin_id")) if session is not None else None
        req.context.admin = admin
        if admin is not None:
            req.context.actor = Actor(f"admin:{admin['username']}", "web")
            return
        if getattr(resource, "public", False):
            return
        if req.method in ("GET", "HEAD"):
            raise falcon.HTTPSeeOther("/admin/login?" + urlencode({"next": req.relative_uri}))
        raise falcon.HTTPForbidden(title="Log in first", description="log in to the admin first")


class AdminPage:
    """A page of the admin: the shop, the renderer, the admin session."""

    uses_admin_session = True

    def __init__(self, shop: Any, renderer: Any) -> None:
        self.shop = shop
        self.renderer = renderer

    def render(self, req: falcon.Request, resp: falcon.Response, template: str,
               context: dict[str, Any], status: int = 200) -> None:  # fmt: skip
        admin = getattr(req.context, "admin", None)
        render(self.renderer, req, resp, template,
               {"admin": admin, "section": template.split("/")[-1].split(".")[0], **context},
               status)  # fmt: skip

    def tr(self, req: falcon.Request, message: str, **values: Any) -> str:
        return str(self.renderer.gettext(page_language(req), message, **values))

    def flash(self, req: falcon.Request, text: str, kind: str = "info", **values: Any) -> None:
        """A one-shot message (an English message id, shown translated, with
        ``%(name)s`` values filled in)."""
        req.context.session.flash(self.tr(req, text, **values), kind)

    def audit(self, req: falcon.Request, action: str, target: str = "",
              before: Any = None, after: Any = None) -> None:  # fmt: skip
        audit.record(self.shop.store, req.context.actor, action, target, before, after)

    def when(self, ts: float) -> str:
        zone = ZoneInfo(self.shop.config.timezone)
        return dt.datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")


class Login(AdminPage):
    """``GET|POST /admin/login``, ``POST /admin/logout``."""

    public = True

    @declare(params=(NEXT,), answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The admin login form (user name, password, and the code when TOTP is on)."""
        self.render(req, resp, "admin/login.html", {
            "next": local_path(req.context.params["next"], "/admin"), "error": "", "username": ""})  # fmt: skip

    @declare(raw_body=FORM, answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Log in: a new session id, then on to ``next`` (a path under /admin)."""
        form = req.context.form
        username = form.get("username", "")[:64]
        target = local_path(form.get("next"), "/admin")
        if not (target == "/admin" or target.startswith("/admin/")):
            target = "/admin"
        client = client_address(req, self.shop.extras["limiter"].trusted)
        context = {"next": target, "username": username}
        try:
            admin = self.shop.extras["admins"].authenticate(
                username, form.get("password", ""), form.get("code", ""), client
            )
        except LoginThrottled as exc:
            self.render(req, resp, "admin/login.html", {
                **context, "error": "Too many failed logins: wait 15 minutes and try again."}, 429)  # fmt: skip
            resp.set_header("Retry-After", str(exc.retry_after))
            return
        except AdminLoginFailed as exc:
            self.render(req, resp, "admin/login.html", {**context, "error": exc.message}, 401)
            return
        sessions = self.shop.extras["admin_sessions"]
        session = req.context.session
        session.set("admin_id", admin["id"])
        req.context.session = sessions.cycle(session)
        audit.record(self.shop.store, Actor(f"admin:{admin['username']}", "web"), "admin.login",
                     admin["username"], after={"address": client})  # fmt: skip
        see_other(resp, target)

    @declare(raw_body=FORM, answers=(SEE_OTHER,), page=True)
    def on_post_logout(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Log out of the admin."""
        sessions = self.shop.extras["admin_sessions"]
        sessions.end(req.context.session)
        req.context.session = sessions.new()
        req.context.session.flash(self.tr(req, "You are logged out."))
        see_other(resp, "/admin/login")


def _hour_counts(tx: Any, since: float) -> dict[int, int]:
    bucket = (
        "FLOOR(created_at / 3600)"
        if tx.dialect == "mysql"
        else "CAST(created_at / 3600 AS INTEGER)"
    )
    rows = tx.query(
        f"SELECT {bucket} AS h, COUNT(*) AS n FROM orders WHERE created_at >= ? GROUP BY h",
        (since,),
    )
    return {int(r["h"]): int(r["n"]) for r in rows}


class Dashboard(AdminPage):
    """``GET /admin``: the day's figures, each linking to the list behind it."""

    def figures(self) -> dict[str, Any]:
        shop, now = self.shop, time.time()
        zone = ZoneInfo(shop.config.timezone)
        local = dt.datetime.fromtimestamp(now, zone)
        today = local.replace(hour=0, minute=0, second=0, microsecond=0)
        week = today - dt.timedelta(days=today.weekday())
        grace = shop.config.reconcile_grace
        sales_sql = ("SELECT COUNT(*) AS n, COALESCE(SUM(paid_amount - refunded_amount), 0) AS s "
                     "FROM orders WHERE created_at >= ? AND status <> 'cancelled'")  # fmt: skip
        with shop.store.read() as tx:
            day = tx.one(sales_sql, (today.timestamp(),))
            wk = tx.one(sales_sql, (week.timestamp(),))
            stale = tx.scalar("SELECT COUNT(*) FROM orders WHERE status = 'pending_payment' "
                              "AND created_at < ?", (now - grace,))  # fmt: skip
            attention = tx.scalar("SELECT COUNT(*) FROM orders WHERE status = 'needs_attention'")
            unapplied = tx.one("SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM payments_journal "
                               "WHERE applied_at IS NULL", ())  # fmt: skip
            slowest = tx.scalar("SELECT MAX(applied_at - received_at) FROM payments_journal "
                                "WHERE received_at >= ? AND applied_at IS NOT NULL", (now - 86400,))  # fmt: skip
            first_hour = int(now // 3600) - HOURS + 1
            hours = _hour_counts(tx, first_hour * 3600)
            last_pass = tx.one("SELECT value, updated_at FROM settings WHERE name = ?",
                               (LAST_PASS,))  # fmt: skip
        try:
            drift: list[dict[str, Any]] | None = shop.stock.audit()
        except Exception:  # the engine is down: the dashboard says so instead of failing
            drift = None
        series = [hours.get(first_hour + i, 0) for i in range(HOURS)]
        top = max(series) or 1
        bars = [{"x": i * 10, "h": round(n / top * 100, 1), "n": n,
                 "label": dt.datetime.fromtimestamp((first_hour + i) * 3600, zone).strftime("%m-%d %H:00")}
                for i, n in enumerate(series)]  # fmt: skip
        state = maintenance.read(shop.store)
        return {
            "today": {"orders": int(day["n"]), "sales": int(day["s"]), "since": today.strftime("%Y-%m-%d")},
            "week": {"orders": int(wk["n"]), "sales": int(wk["s"]), "since": week.strftime("%Y-%m-%d")},
            "stale": int(stale), "attention": int(attention), "grace": grace,
            "unapplied": int(unapplied["n"]),
            "unapplied_age": int(now - float(unapplied["oldest"])) if unapplied["oldest"] else 0,
            "slowest": round(float(slowest), 2) if slowest is not None else None,
            "bars": bars, "top": top, "total_48h": sum(series),
            "drift": drift,
            "last_pass": ({"at": self.when(float(last_pass["updated_at"])),
                           "ago": int(now - float(last_pass["updated_at"])), "report": last_pass["value"]}
                          if last_pass else None),
            "maintenance": state, "currency": shop.config.currency,
            "stale_before": self.when(now - grace),
        }  # fmt: skip

    @declare(answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The dashboard."""
        self.render(req, resp, "admin/dashboard.html", self.figures())


class Maintenance(AdminPage):
    """``GET|POST /admin/maintenance``: the switch, its message and Retry-After."""

    @declare(answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The maintenance switch."""
        self.render(
            req, resp, "admin/maintenance.html", {"state": maintenance.read(self.shop.store)}
        )

    @declare(raw_body=FORM, answers=(SEE_OTHER,), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Turn maintenance on or off (an owner's setting)."""
        require(req.context.admin, "settings")
        form = req.context.form
        text = form.get("retry_after", "300").strip()
        retry_after = int(text) if text.isdigit() and len(text) <= 6 else 300
        before = maintenance.read(self.shop.store)
        state = maintenance.Maintenance(form.get("on") == "1", form.get("message", "").strip()[:500],
                                        max(1, retry_after))  # fmt: skip
        maintenance.write(self.shop.store, state)
        self.audit(req, "maintenance.set", "maintenance", before.__dict__, state.__dict__)
        self.flash(req, "Maintenance is on." if state.on else "Maintenance is off.")
        see_other(resp, "/admin/maintenance")


class Plugins(AdminPage):
    """``GET /admin/plugins``: each plugin and gateway, live or what it lacks."""

    @declare(answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Plugins and gateways with their status, missing settings and test mode."""
        host = self.shop.plugins
        self.render(req, resp, "admin/plugins.html", {
            "plugins": host.plugin_lines(), "gateways": host.gateway_table()})  # fmt: skip


class Members(AdminPage):
    """``GET /admin/members``: the member accounts, newest first."""

    @declare(
        params=(query("q", {"type": "string", "maxLength": 320}),),
        answers=(HTML_ANSWER,),
        page=True,
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Members, searched by email or name."""
        words = (req.context.params["q"] or "").strip()
        sql = ("SELECT m.id, m.email, m.name, m.created_at, "
               "(SELECT COUNT(*) FROM orders o WHERE o.member_id = m.id) AS orders FROM members m")  # fmt: skip
        values: tuple[Any, ...] = ()
        if words:
            sql += " WHERE m.email LIKE ? OR m.name LIKE ?"
            like = "%" + words.replace("%", "").replace("_", "") + "%"
            values = (like, like)
        with self.shop.store.read() as tx:
            rows = [
                dict(r) for r in tx.query(sql + " ORDER BY m.created_at DESC LIMIT 200", values)
            ]
        for row in rows:
            row["joined"] = self.when(float(row["created_at"]))
        self.render(req, resp, "admin/members.html", {"members": rows, "q": words})


AUDIT_PARAMS = (
    query("action", {"type": "string", "maxLength": 64}),
    query("actor", {"type": "string", "maxLength": 100}),
    query("target", {"type": "string", "maxLength": 255}),
    query("via", {"type": "string", "enum": ["", *audit.VIA]}),
    query("before", {"type": "integer", "minimum": 1}),
)


class AuditLog(AdminPage):
    """``GET /admin/audit``: every admin change, newest first, filtered."""

    @declare(params=AUDIT_PARAMS, answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The audit log, filtered by action, actor, target and channel."""
        p = req.context.params
        filters = {k: (p[k] or "") for k in ("action", "actor", "target", "via")}
        rows = audit.search(self.shop.store, action=filters["action"], actor=filters["actor"],
                            target=filters["target"], via=filters["via"], before_id=p["before"],
                            limit=51)  # fmt: skip
        more = rows[50]["id"] + 1 if len(rows) > 50 else None
        for row in rows:
            row["when"] = self.when(float(row["at"]))
        next_page = ("/admin/audit?" + urlencode({**{k: v for k, v in filters.items() if v}, "before": more})
                     if more else None)  # fmt: skip
        self.render(req, resp, "admin/audit.html", {"rows": rows[:50], "filters": filters,
                                                    "next_page": next_page})  # fmt: skip
