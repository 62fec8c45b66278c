"""The text of the buyer's order mail: plain-text templates in Japanese and English.

A template is ``<lang>/<kind>.txt`` (``ja/order_received.txt``): a first line
``Subject: ...``, an empty line, then the body, with ``$name`` / ``${name}`` fields
(Python's :class:`string.Template`). The shop's own are in ``ecshop/mail_templates``;
a file of the same name in ``ECSHOP_MAIL_TEMPLATES`` replaces one. The fields:

``shop_name``, ``number``, ``name`` (the customer's name, else the address),
``created`` (the order's date), ``lines`` (one line per product, ``※`` marking the
reduced rate), ``shipping``, ``fees``, ``total``, ``taxes`` (per rate: the amount and
the tax it contains, as the invoice system asks), ``invoice_number``, ``delivery``,
``instructions`` and ``pay_by`` (an offline payment's), ``refund`` and
``refunded_amount``. Amounts are formatted (``1,100円``, ``1,100 JPY``).

A mail about a member's account has no order: ``password_reset`` has the fields
``shop_name``, ``name`` and ``link``.
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from zoneinfo import ZoneInfo

from ecshop.money import format_money
from ecshop.orders import fees_of, lines_of, load, taxes_of
from ecshop.store import Store

LANGS = ("ja", "en")
_LABELS = {
    "ja": {"shipping": "送料", "taxes": "{rate}%対象 {amount} (内消費税 {tax})",
           "reduced": "※は軽減税率対象", "invoice": "登録番号: {number}",
           "delivery": "お届け希望: {text}", "none": "指定なし"},
    "en": {"shipping": "Shipping", "taxes": "Subject to {rate}%: {amount} (tax included: {tax})",
           "reduced": "※ reduced tax rate", "invoice": "Registration number: {number}",
           "delivery": "Delivery: {text}", "none": "not specified"},
}  # fmt: skip


def money(amount: int, currency: str, lang: str) -> str:
    """``1,100円`` in Japanese for yen, else ``1,100 JPY`` / ``12.50 USD``."""
    if lang == "ja" and currency == "JPY":
        return f"{int(amount):,}円"
    return format_money(int(amount), currency)


class MailRenderer:
    """Builds the message of an outbox row from its order and a template."""

    def __init__(self, store: Store, *, shop_name: str = "ecshop", lang: str = "ja",
                 timezone: str = "Asia/Tokyo", templates: str = "", invoice_number: str = "",
                 reduced: frozenset[str] = frozenset({"reduced"})) -> None:  # fmt: skip
        self.store = store
        self.shop_name = shop_name
        self.lang = lang
        self.zone = ZoneInfo(timezone)
        self.templates = Path(templates) if templates else None
        self.invoice_number = invoice_number
        self.reduced = reduced

    def template(self, lang: str, kind: str) -> str:
        """The text of template ``kind`` in ``lang``: the owner's, else the shop's."""
        if self.templates is not None:
            own = self.templates / lang / f"{kind}.txt"
            if own.is_file():
                return own.read_text("utf-8")
        return (resources.files("ecshop") / "mail_templates" / lang / f"{kind}.txt").read_text(
            "utf-8"
        )

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        """The message (``ecshop.mail.MESSAGE``) of outbox ``row``."""
        number = row["order_number"]
        if number is None:
            return self.account_mail(row)
        with self.store.read() as tx:
            order = load(tx, number)
            lines, fees, taxes = lines_of(tx, number), fees_of(tx, number), taxes_of(tx, number)
        customer = json.loads(order["customer_json"])
        lang = customer.get("lang") if customer.get("lang") in LANGS else self.lang
        data = json.loads(row["data_json"] or "null") or {}
        fields = self.fields(order, customer, lines, fees, taxes, data, lang)
        head, _, body = (
            Template(self.template(lang, row["kind"])).safe_substitute(fields).partition("\n\n")
        )
        subject = head.removeprefix("Subject:").strip()
        return {"to": [row["recipient"]], "subject": subject, "body": body, "kind": row["kind"],
                "headers": {"Message-ID": f"<outbox-{row['id']}.{number}@ecshop>"}}  # fmt: skip

    def account_mail(self, row: dict[str, Any]) -> dict[str, Any]:
        """A mail about a member's account (no order): its ``data_json`` holds the
        fields (``name``, ``link``, ``lang``)."""
        data = json.loads(row["data_json"] or "null") or {}
        lang = str(data["lang"]) if data.get("lang") in LANGS else self.lang
        fields = {"shop_name": self.shop_name, "name": str(data.get("name", "")),
                  "link": str(data.get("link", ""))}  # fmt: skip
        head, _, body = (
            Template(self.template(lang, row["kind"])).safe_substitute(fields).partition("\n\n")
        )
        return {"to": [row["recipient"]], "subject": head.removeprefix("Subject:").strip(),
                "body": body, "kind": row["kind"],
                "headers": {"Message-ID": f"<outbox-{row['id']}.account@ecshop>"}}  # fmt: skip

    def fields(self, order: dict[str, Any], customer: dict[str, Any], lines: list[dict[str, Any]],
               fees: list[dict[str, Any]], taxes: list[dict[str, Any]], data: dict[str, Any],
               lang: str) -> dict[str, str]:  # fmt: skip
        """The template's fields for this order."""
        cur, labels = order["currency"], _LABELS[lang]

        def fmt(amount: Any) -> str:
            return money(int(amount), cur, lang)

        marked = any(ln["tax_class"] in self.reduced for ln in lines)
        items = [f"{'※' if ln['tax_class'] in self.reduced else ''}{ln['name']} ({ln['sku']}) "
                 f"x{ln['qty']}  {fmt(ln['line_total'])}" for ln in lines]  # fmt: skip
        tax_text = [labels["taxes"].format(rate=t["rate"], amount=fmt(t["amount"]), tax=fmt(t["tax"]))
                    for t in taxes]  # fmt: skip
        if marked:
            tax_text.append(labels["reduced"])
        return {
            "shop_name": self.shop_name, "number": order["number"],
            "name": str(customer.get("name") or customer.get("email", "")),
            "created": self._date(order["created_at"]), "lines": "\n".join(items),
            "shipping": fmt(order["shipping"]), "total": fmt(order["total"]),
            "fees": "\n".join(f"{f['name']}  {fmt(f['amount'])}" for f in fees),
            "taxes": "\n".join(tax_text),
            "invoice_number": labels["invoice"].format(number=self.invoice_number)
            if self.invoice_number else "",
            "delivery": labels["delivery"].format(text=self._delivery(order, labels["none"])),
            "instructions": str(data.get("instructions") or ""),
            "pay_by": self._date(order["hold_expires_at"], with_time=True),
            "refund": fmt(data.get("refund", order["refunded_amount"])),
            "refunded_amount": fmt(order["refunded_amount"]),
        }  # fmt: skip

    def _date(self, ts: Any, *, with_time: bool = False) -> str:
        if ts is None:
            return ""
        moment = dt.datetime.fromtimestamp(float(ts), self.zone)
        return moment.strftime("%Y-%m-%d %H:%M %Z" if with_time else "%Y-%m-%d")

    @staticmethod
    def _delivery(order: dict[str, Any], none: str) -> str:
        chosen = json.loads(order.get("delivery_json") or "null") or {}
        return " ".join(str(chosen[k]) for k in ("date", "slot") if k in chosen) or none
