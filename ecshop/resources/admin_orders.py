"""The admin's order pages: the list (filters, search, keyset pages) and its CSV, one
order with everything known about it, the confirmation steps of ship, cancel, refund
and mark paid, the packing slip and the receipt. The bulk edit is in
:mod:`ecshop.resources.admin_bulk`.

Every change goes through :class:`ecshop.order_admin.OrderDesk`, the same as the admin
API's, so the rules, the role an action needs and the audit line are the same; a GET
only shows what a POST would do.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import falcon

from ecshop import order_admin, order_search
from ecshop.admins import NotAllowed
from ecshop.errors import BadRequest, GatewayError, IllegalTransition, NotFound, ShopError
from ecshop.money import format_money, to_major, to_minor
from ecshop.order_admin import CANCEL, MARK_PAID, REFUND, SHIP, OrderDesk
from ecshop.order_search import Cursor, OrderFilter
from ecshop.orders import STATUSES, lines_of
from ecshop.outbox import mail_kind
from ecshop.resources._declare import Answer, declare, path, query
from ecshop.resources._page import FORM, HTML_ANSWER, SEE_OTHER, see_other
from ecshop.resources.admin_pages import AdminPage
from ecshop.resources.orders import attention

#: the most orders one bulk edit may touch (each is its own transaction, a cancel of a
#: paid order also a call to its gateway)
BULK_MAX = 100
#: how the admin pages name each status (English message ids)
STATUS_NAMES = {
    "pending_payment": "Awaiting payment", "accepted": "Accepted, unpaid", "paid": "Paid",
    "shipped": "Shipped", "cancelled": "Cancelled", "needs_attention": "Needs attention",
    "refunded": "Refunded",
}  # fmt: skip
#: the page (and URL) of each action
SLUGS = {SHIP: "ship", CANCEL: "cancel", REFUND: "refund", MARK_PAID: "mark-paid"}
#: what a refused action says, per error and action (English message ids)
CANNOT = {
    SHIP: "Order %(number)s is “%(status)s”: only a paid order can be shipped.",
    CANCEL: "Order %(number)s is “%(status)s”: it can no longer be cancelled.",
    MARK_PAID: "Order %(number)s is “%(status)s”: it cannot be marked paid.",
    REFUND: "Nothing is left to refund on order %(number)s.",
}
DONE = {
    SHIP: "Order %(number)s was shipped.",
    CANCEL: "Order %(number)s was cancelled.",
    REFUND: "%(amount)s was refunded on order %(number)s.",
    MARK_PAID: "Order %(number)s was marked paid.",
}
ACTION_NAMES = {SHIP: "Ship", CANCEL: "Cancel order", REFUND: "Refund", MARK_PAID: "Mark paid"}
CONFIRM_TITLES = {SHIP: "Ship this order?", CANCEL: "Cancel this order?",
                  REFUND: "Refund money on this order", MARK_PAID: "Mark this order paid?"}  # fmt: skip
BUTTONS = {SHIP: "Ship the order", CANCEL: "Cancel the order", REFUND: "Refund %(amount)s",
           MARK_PAID: "Mark the order paid"}  # fmt: skip
CANCEL_AND_REFUND = "Cancel the order and refund %(amount)s"
TITLES = {400: "Please check your input", 403: "Not allowed", 404: "Page not found",
          409: "Not possible right now", 502: "The payment provider did not answer"}  # fmt: skip
#: the CSV's columns (English message ids: the header is in the page's language)
CSV_COLUMNS = ("Order number", "Date", "Status", "Name", "Email", "Phone", "Postal code",
               "Address", "Total", "Paid", "Refunded", "Currency", "Payment method")  # fmt: skip
NOT_OWNER = "Only an owner can do this: money would go back to the buyer."
GATEWAY_FAILED = "The payment provider refused or did not answer; nothing was changed."
#: texts the order templates show from variables, for the translation check
SHOWN = (*STATUS_NAMES.values(), *CANNOT.values(), *DONE.values(), *TITLES.values(),
         *ACTION_NAMES.values(), *CONFIRM_TITLES.values(), *BUTTONS.values(), CANCEL_AND_REFUND,
         NOT_OWNER, GATEWAY_FAILED, *CSV_COLUMNS)  # fmt: skip

CSV_ANSWER = Answer(200, "the orders as CSV", {"type": "string"}, "text/csv",
                    ("Content-Disposition",))  # fmt: skip
DAY = {"type": "string", "pattern": r"^(\d{4}-\d{2}-\d{2})?$", "maxLength": 10}
FILTER_PARAMS = (
    query("status", {"type": "string", "enum": ["", *STATUSES]}),
    query("since", DAY, description="the first day, YYYY-MM-DD in the shop's time zone"),
    query("until", DAY, description="the last day, YYYY-MM-DD in the shop's time zone"),
    query("q", {"type": "string", "maxLength": 200}, description="order number, email or name"),
)
LIST_PARAMS = (*FILTER_PARAMS, query("after", {"type": "string", "maxLength": 300}))
NUMBER = (path("number", {"type": "string", "minLength": 1, "maxLength": 64}),)
AMOUNT = query("amount", {"type": "string", "maxLength": 24}, description="refund, major units")
REASON = query("reason", {"type": "string", "maxLength": 500})


def customer_of(order: dict[str, Any]) -> dict[str, Any]:
    """The order's ``customer`` (an empty dict when it is not an object)."""
    try:
        customer = json.loads(order["customer_json"])
    except ValueError:
        return {}
    return customer if isinstance(customer, dict) else {}


def filter_of(values: dict[str, Any]) -> OrderFilter:
    """The list's filter from query parameters or a form.

    Raises:
        ValidationError: a bad status or day (a 400 page).
    """
    return OrderFilter(
        *(str(values.get(k) or "").strip() for k in ("status", "since", "until", "q"))
    )


def list_url(f: OrderFilter, **extra: str) -> str:
    """The list's URL with the filter ``f`` (and ``after``, say)."""
    params = {**f.params(), **{k: v for k, v in extra.items() if v}}
    return "/admin/orders" + ("?" + urlencode(params) if params else "")


class OrderPages(AdminPage):
    """What the order pages share: the desk, the actions an order offers, error pages."""

    def __init__(self, shop: Any, renderer: Any) -> None:
        super().__init__(shop, renderer)
        self.desk = OrderDesk(shop.store, shop.orders, shop.flow)

    def role(self, req: falcon.Request) -> str:
        return str(req.context.admin["role"])

    def status_name(self, req: falcon.Request, status: str) -> str:
        return self.tr(req, STATUS_NAMES.get(status, status)) if status in STATUS_NAMES else status

    def gateway_title(self, req: falcon.Request, name: str) -> str:
        gateway = self.shop.plugins.found.get(name) or self.shop.gateways.get(name)
        return self.tr(req, str(getattr(gateway, "title", name))) if gateway else name

    def problem(self, req: falcon.Request, exc: ShopError, action: str, number: str,
                currency: str = "") -> str:  # fmt: skip
        """What went wrong, for a person (translated where the shop knows the case)."""
        currency = currency or self.shop.config.currency
        status = self.status_name(req, str(exc.details.get("status", "")))
        if isinstance(exc, NotAllowed):
            return self.tr(req, NOT_OWNER)
        if isinstance(exc, IllegalTransition) and action in CANNOT:
            return self.tr(req, CANNOT[action], number=number, status=status)
        if isinstance(exc, GatewayError):
            return self.tr(req, GATEWAY_FAILED) + f" ({exc.message})"
        if action == REFUND and exc.details.get("refundable") == 0:
            return self.tr(req, CANNOT[REFUND], number=number)
        if action == REFUND and "refundable" in exc.details:
            most = format_money(int(exc.details["refundable"]), currency)
            return self.tr(req, "Enter an amount from 1 to %(most)s.", most=most)
        return exc.message

    def refuse(self, req: falcon.Request, resp: falcon.Response, exc: ShopError,
               action: str = "", number: str = "", currency: str = "") -> None:  # fmt: skip
        """The admin error page for ``exc``, with a way back to the order."""
        status = exc.status if 400 <= exc.status < 600 else 500
        self.render(req, resp, "admin/error.html", {
            "status": status, "code": exc.code, "title": self.tr(req, TITLES.get(status, "Not possible right now")),
            "message": self.problem(req, exc, action, number, currency),
            "back": f"/admin/orders/{number}" if number and not isinstance(exc, NotFound) else "",
        }, status)  # fmt: skip

    def offers(self, req: falcon.Request, order: dict[str, Any]) -> list[dict[str, Any]]:
        """The actions the order allows now: each with its plan, and whether this
        admin's role may make it."""
        role, out = self.role(req), []
        for action in (MARK_PAID, SHIP, CANCEL, REFUND):
            try:
                plan = order_admin.plan_of(order, action)
            except ShopError:
                continue
            try:
                order_admin.check_role(plan, role)
                allowed = True
            except NotAllowed:
                allowed = False
            out.append({"action": action, "slug": SLUGS[action], "plan": plan, "allowed": allowed})
        return out


class OrderList(OrderPages):
    """``GET /admin/orders``, ``GET /admin/orders.csv``."""

    @declare(params=LIST_PARAMS, answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Orders newest first, filtered, searched, 50 a page."""
        f = filter_of(req.context.params)
        after = req.context.params["after"]
        cursor = Cursor.parse(after) if after else None
        rows, more = order_search.page(self.shop.store, f, zone=self.shop.config.timezone,
                                       after=cursor)  # fmt: skip
        for row in rows:
            row["status_name"] = self.status_name(req, row["status"])
        self.render(req, resp, "admin/orders.html", {
            "rows": rows, "filter": f, "statuses": [(s, self.status_name(req, s)) for s in STATUSES],
            "next_page": list_url(f, after=str(more)) if more else None,
            "first_page": list_url(f) if cursor else None,
            "csv_url": "/admin/orders.csv" + ("?" + urlencode(f.params()) if f.params() else ""),
            "bulk_max": BULK_MAX,
        })  # fmt: skip

    @declare(params=FILTER_PARAMS, answers=(CSV_ANSWER,), page=True)
    def on_get_csv(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The same orders as a CSV file (UTF-8 with a BOM, for Excel)."""
        f = filter_of(req.context.params)
        zone = ZoneInfo(self.shop.config.timezone)
        stamp = dt.datetime.now(zone).strftime("%Y%m%d-%H%M")
        resp.content_type = "text/csv; charset=utf-8"
        resp.cache_control = ["no-store"]
        resp.set_header("Content-Disposition", f'attachment; filename="orders-{stamp}.csv"')
        resp.set_header("X-Content-Type-Options", "nosniff")
        header = [self.tr(req, t) for t in CSV_COLUMNS]
        names = {s: self.status_name(req, s) for s in STATUSES}
        rows = order_search.each(self.shop.store, f, zone=self.shop.config.timezone)
        resp.stream = csv_chunks(header, (csv_row(r, zone, names) for r in rows))


#: a cell starting with one of these is a formula to a spreadsheet
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: a leading ``'`` before ``= + - @``
    (and tab, carriage return), as OWASP's CSV injection advice has it. Numbers pass."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_row(row: dict[str, Any], zone: ZoneInfo, names: dict[str, str]) -> list[Any]:
    customer, currency = row["customer"], str(row["currency"])
    address = customer.get("address") if isinstance(customer.get("address"), dict) else {}
    where = " ".join(str(address.get(k) or "") for k in ("prefecture", "city", "line1", "line2"))
    when = dt.datetime.fromtimestamp(row["created_at"], zone).strftime("%Y-%m-%d %H:%M")
    return [row["number"], when, names.get(row["status"], row["status"]), row["name"],
            row["email"], str(customer.get("phone") or ""), str(address.get("postal_code") or ""),
            where.strip(), to_major(row["total"], currency), to_major(row["paid_amount"], currency),
            to_major(row["refunded_amount"], currency), currency, row["gateway"]]  # fmt: skip


def csv_chunks(header: list[str], rows: Iterator[list[Any]], every: int = 200) -> Iterator[bytes]:
    """The CSV file in pieces: a BOM (Excel reads the file as UTF-8 then), the header,
    the rows, every cell through :func:`safe_cell`."""
    buffer = io.StringIO()
    out = csv.writer(buffer)
    buffer.write("\ufeff")
    out.writerow([safe_cell(c) for c in header])
    for i, row in enumerate(rows, 1):
        out.writerow([safe_cell(c) for c in row])
        if i % every == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


class OrderDetail(OrderPages):
    """``GET /admin/orders/{number}``, its ``/slip`` and ``/receipt``."""

    def _record(self, req: falcon.Request, number: str) -> dict[str, Any]:
        with self.shop.store.read() as tx:
            record = order_admin.record_of(tx, number)
        order = record["order"]
        record["status_name"] = self.status_name(req, order["status"])
        record["outstanding"] = order_admin.outstanding_of(order)
        record["currency"] = order["currency"]
        rates = {t["tax_class"]: t["rate"] for t in record["taxes"]}
        standard = rates.get("standard", max(rates.values(), default=0))
        record["standard_rate"] = standard
        for line in record["lines"]:
            rate = rates.get(str(line.get("tax_class") or "standard"))
            line["rate"] = rate
            line["reduced"] = rate is not None and rate < standard
        for event in record["events"]:
            event["to_name"] = self.status_name(req, event["to_status"])
            event["from_name"] = self.status_name(req, event["from_status"] or "")
            data = event["data"] if isinstance(event["data"], dict) else {}
            event["refund"] = int(data["refund"]) if isinstance(data.get("refund"), int) else 0
        record["attention"] = attention(order, record["events"])
        record["gateway_title"] = self.gateway_title(req, str(order["gateway"]))
        record["extra_fields"] = [(k, v) for k, v in record["customer"].items()
                                  if k not in ("name", "email", "phone", "address") and v]  # fmt: skip
        record["action_names"] = ACTION_NAMES
        return record

    @declare(params=NUMBER, answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """One order: lines, fees, tax, totals, buyer, delivery, history, payments,
        refunds and mail, with the actions it allows now."""
        record = self._record(req, number)
        self.render(req, resp, "admin/orders_detail.html",
                    {**record, "offers": self.offers(req, record["order"])})  # fmt: skip

    @declare(params=NUMBER, answers=(HTML_ANSWER,), page=True)
    def on_get_slip(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """The packing slip: what goes in the parcel and where it goes, no prices."""
        self.render(req, resp, "admin/orders_slip.html", {
            **self._record(req, number), "shop_name": self.shop.config.shop_name})  # fmt: skip

    @declare(params=NUMBER, answers=(HTML_ANSWER,), page=True)
    def on_get_receipt(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """The receipt: the amount per tax rate and the tax it contains, reduced-rate
        lines marked ※, the shop's invoice registration number."""
        record = self._record(req, number)
        if int(record["order"]["paid_amount"]) <= 0:
            self.render(req, resp, "admin/error.html", {
                "status": 409, "code": "not_paid", "title": self.tr(req, TITLES[409]),
                "message": self.tr(req, "Order %(number)s is not paid: it has no receipt yet.", number=number),
                "back": f"/admin/orders/{number}"}, 409)  # fmt: skip
            return
        zone = ZoneInfo(self.shop.config.timezone)
        self.render(req, resp, "admin/orders_receipt.html", {
            **record, "shop_name": self.shop.config.shop_name,
            "invoice_number": self.shop.config.invoice_number,
            "issued": dt.datetime.now(zone).strftime("%Y-%m-%d"),
        })  # fmt: skip


class OrderAction(OrderPages):
    """``GET|POST /admin/orders/{number}/{ship|cancel|refund|mark-paid}``: the GET says
    what will happen, the POST does it and goes back to the order."""

    def _confirm(self, req: falcon.Request, resp: falcon.Response, number: str, action: str,
                 amount: int | None = None, status: int = 200, **extra: Any) -> None:  # fmt: skip
        try:
            order = self.desk.load(number)
            plan = order_admin.plan_of(order, action, amount)
            order_admin.check_role(plan, self.role(req))
        except ShopError as exc:
            self.refuse(req, resp, exc, action, number)
            return
        currency, action = str(order["currency"]), plan.action
        money = format_money(plan.refund, currency)
        button = CANCEL_AND_REFUND if action == CANCEL and plan.refund else BUTTONS[action]
        gateway = self.shop.gateways.get(order["gateway"])
        with self.shop.store.read() as tx:
            lines = lines_of(tx, number)
        self.render(req, resp, "admin/orders_confirm.html", {
            "order": order, "plan": plan, "slug": SLUGS[action], "currency": currency,
            "customer": customer_of(order), "lines": lines,
            "title": self.tr(req, CONFIRM_TITLES[action]), "button": self.tr(req, button, amount=money),
            "status_name": self.status_name(req, plan.status), "to_name": self.status_name(req, plan.to),
            "gateway_title": self.gateway_title(req, str(order["gateway"])),
            "offline": bool(getattr(gateway, "offline", False)),
            "mail": self.mails(order, plan),
            "outstanding_major": to_major(plan.outstanding, currency),
            "amount_major": to_major(plan.refund, currency), **extra}, status)  # fmt: skip

    def mails(self, order: dict[str, Any], plan: order_admin.Plan) -> bool:
        """Whether the action writes the customer a mail (mail on, and the move has one)."""
        if not self.shop.orders.mail or not customer_of(order).get("email"):
            return False
        if plan.action == REFUND:
            return True
        move = {SHIP: "ship", CANCEL: "admin_cancel", MARK_PAID: "mark_paid"}[plan.action]
        return mail_kind(move, plan.status) is not None

    def _do(self, req: falcon.Request, resp: falcon.Response, number: str, action: str,
            amount: int | None = None, reason: str = "", currency: str = "") -> None:  # fmt: skip
        try:
            self.desk.do(action, number, actor=req.context.actor, role=self.role(req),
                         amount=amount, reason=reason)  # fmt: skip
        except ShopError as exc:
            self.refuse(req, resp, exc, action, number, currency)
            return
        values = {"number": number}
        if action == REFUND and amount is not None:
            values["amount"] = format_money(amount, currency or self.shop.config.currency)
        self.flash(req, DONE[action], **values)
        see_other(resp, f"/admin/orders/{number}")

    @declare(params=NUMBER, answers=(HTML_ANSWER,), page=True)
    def on_get_ship(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """What shipping the order does."""
        self._confirm(req, resp, number, SHIP)

    @declare(params=NUMBER, raw_body=FORM, answers=(SEE_OTHER, HTML_ANSWER), page=True)
    def on_post_ship(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """Ship the order."""
        self._do(req, resp, number, SHIP)

    @declare(params=NUMBER, answers=(HTML_ANSWER,), page=True)
    def on_get_cancel(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """What cancelling the order does (a paid one is refunded)."""
        self._confirm(req, resp, number, CANCEL)

    @declare(params=NUMBER, raw_body=FORM, answers=(SEE_OTHER, HTML_ANSWER), page=True)
    def on_post_cancel(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """Cancel the order."""
        self._do(req, resp, number, CANCEL)

    @declare(params=NUMBER, answers=(HTML_ANSWER,), page=True)
    def on_get_mark_paid(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """What marking the order paid records."""
        self._confirm(req, resp, number, MARK_PAID)

    @declare(params=NUMBER, raw_body=FORM, answers=(SEE_OTHER, HTML_ANSWER), page=True)
    def on_post_mark_paid(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """Mark the order paid."""
        self._do(req, resp, number, MARK_PAID)

    @declare(params=(*NUMBER, AMOUNT, REASON), answers=(HTML_ANSWER,), page=True)
    def on_get_refund(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """Without an amount: the refund form. With one: what refunding it does."""
        text, reason = req.context.params["amount"], req.context.params["reason"] or ""
        if text is None:  # the form, the whole outstanding amount filled in
            self._confirm(req, resp, number, REFUND, reason=reason, asked=False)
            return
        try:
            order = self.desk.load(number)
        except NotFound as exc:
            self.refuse(req, resp, exc, REFUND, number)
            return
        try:
            amount = self._amount(text, order)
            order_admin.plan_of(order, REFUND, amount)
        except BadRequest as exc:  # the form again (nothing left to refund: a refusal)
            error = self.problem(req, exc, REFUND, number, str(order["currency"]))
            self._confirm(req, resp, number, REFUND, reason=reason, asked=False, typed=text,
                          error=error, status=400)  # fmt: skip
            return
        self._confirm(req, resp, number, REFUND, amount=amount, reason=reason, asked=True)

    @declare(params=NUMBER, raw_body=FORM, answers=(SEE_OTHER, HTML_ANSWER), page=True)
    def on_post_refund(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        """Refund the amount confirmed."""
        form = req.context.form
        try:
            order = self.desk.load(number)
            amount = self._amount(form.get("amount", ""), order)
        except ShopError as exc:
            self.refuse(req, resp, exc, REFUND, number)
            return
        self._do(req, resp, number, REFUND, amount=amount,
                 reason=form.get("reason", "").strip()[:500], currency=str(order["currency"]))  # fmt: skip

    def _amount(self, text: str, order: dict[str, Any]) -> int:
        """The refund typed (major units, ``1,000`` too) in minor units.

        Raises:
            BadRequest: not an amount of the order's currency, or under 1.
        """
        currency, left = str(order["currency"]), order_admin.outstanding_of(order)
        try:
            amount = to_minor(text.replace(",", "").strip(), currency)
        except BadRequest:
            amount = 0
        if amount < 1:
            raise BadRequest(f"{text!r} is not a refund of 1 or more", field="amount",
                             refundable=left, currency=currency)  # fmt: skip
        return amount
