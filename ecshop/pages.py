"""What the storefront's pages are built from, through the plugins' filters: the
checkout form's fields (``checkout_fields``) and each template's context
(``storefront_context``). The page renderer calls these; they know nothing of HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ecshop.errors import InternalError, ValidationError
from ecshop.schema import Schema, obj, validate

FIELD_TYPES = ("text", "email", "tel", "textarea", "select", "checkbox")
#: One checkout form field: ``name`` (the key in the checkout's ``customer``), ``label``,
#: ``type``, ``required``, and for a ``select`` its ``options``.
FIELD: Schema = obj(
    {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$",
                 "description": "a field name: a-z, 0-9 and _, from a letter"},
        "label": {"type": "string", "minLength": 1, "maxLength": 200,
                  "description": "a label of 1 to 200 characters"},
        "type": {"type": "string", "enum": list(FIELD_TYPES)},
        "required": {"type": "boolean"},
    },
    {"options": {"type": "array", "items": {"type": "string"}}},
    closed=False,
)  # fmt: skip
FIELDS: Schema = {"type": "array", "maxItems": 100, "items": FIELD,
                  "description": "a list of checkout fields"}  # fmt: skip

#: The 47 prefectures of Japan, in the order of their JIS X 0401 codes.
PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県",
    "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県",
    "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府",
    "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県",
    "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県",
    "鹿児島県", "沖縄県",
)  # fmt: skip
#: Fields that go into the checkout's ``customer.address`` (API.md), not ``customer``.
ADDRESS_FIELDS = ("postal_code", "prefecture", "city", "line1", "line2")

#: The checkout form before plugins change it; ``email`` is what the checkout requires.
DEFAULT_CHECKOUT_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "email", "label": "Email", "type": "email", "required": True},
    {"name": "name", "label": "Name", "type": "text", "required": True},
    {"name": "phone", "label": "Phone", "type": "tel", "required": True},
    {"name": "postal_code", "label": "Postal code", "type": "text", "required": True},
    {"name": "prefecture", "label": "Prefecture", "type": "select", "required": True,
     "options": list(PREFECTURES)},
    {"name": "city", "label": "City", "type": "text", "required": True},
    {"name": "line1", "label": "Address", "type": "text", "required": True},
    {"name": "line2", "label": "Building, room", "type": "text", "required": False},
)  # fmt: skip


def _bad(hook: str, what: str) -> InternalError:
    return InternalError(f"{hook} returned {what}", hook=hook)


def checkout_fields(hooks: Any) -> list[dict[str, Any]]:
    """The checkout form's fields after the ``checkout_fields`` filter.

    Raises:
        InternalError: a filter returned something that is not a list of fields, or two
            fields of one name.
    """
    value = hooks.apply_filters("checkout_fields", [dict(f) for f in DEFAULT_CHECKOUT_FIELDS])
    try:
        validate(value, FIELDS, "fields")
    except ValidationError as exc:
        raise _bad("checkout_fields", f"a bad field list: {exc.message}") from exc
    names = [f["name"] for f in value]
    if len(set(names)) != len(names):
        raise _bad("checkout_fields", "two fields of one name")
    return [dict(f) for f in value]


def template_context(hooks: Any, template: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The context ``template`` is rendered with, after the ``storefront_context`` filter.

    Raises:
        InternalError: a filter returned something that is not a dict.
    """
    value = hooks.apply_filters("storefront_context", dict(context), template)
    if not isinstance(value, dict):
        raise _bad("storefront_context", f"{type(value).__name__}, not a dict")
    return value


#: What the order's page says of each status (English message ids).
ORDER_MESSAGES = {
    "paid": "Thank you: your payment was received.",
    "accepted": "Thank you: your order was accepted.",
    "pending_payment": "Your payment is being processed. This page refreshes by itself.",
    "cancelled": "This order was cancelled; nothing was charged.",
    "needs_attention": "Your payment was received; we will contact you about your order.",
    "shipped": "Your order has shipped.",
    "refunded": "This order was refunded.",
}
#: A status in a list of orders (English message ids).
STATUS_LABELS = {
    "pending_payment": "Awaiting payment", "accepted": "Accepted", "paid": "Paid",
    "shipped": "Shipped", "cancelled": "Cancelled", "refunded": "Refunded",
    "needs_attention": "Being checked",
}  # fmt: skip
POSTAL_CODE = re.compile(r"[0-9]{3}-?[0-9]{4}")
EMAIL_SHAPE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")
MAX_VALUE = 200


def _field_error(field: Mapping[str, Any], value: str) -> str | None:
    """What is wrong with one value of the checkout form (an English message id)."""
    if not value:
        return "This field is required." if field["required"] else None
    if len(value) > MAX_VALUE:
        return "This is too long."
    if field["type"] == "email" and not EMAIL_SHAPE.fullmatch(value):
        return "Enter an email address such as name@example.com."
    if field["name"] == "postal_code" and not POSTAL_CODE.fullmatch(value):
        return "Enter a postal code such as 100-0001."
    if field["type"] == "select" and value not in field.get("options", ()):
        return "Choose one of the options."
    return None


def check_form(fields: list[dict[str, Any]], form: Mapping[str, str]) -> dict[str, str]:
    """The checkout form's errors by field name (empty when it is fine)."""
    errors = {}
    for field in fields:
        value = str(form.get(field["name"], "")).strip()
        if field["type"] == "checkbox":
            continue
        problem = _field_error(field, value)
        if problem:
            errors[field["name"]] = problem
    return errors


def customer_of(fields: list[dict[str, Any]], form: Mapping[str, str]) -> dict[str, Any]:
    """The checkout's ``customer`` from the form: the address fields under ``address``."""
    customer: dict[str, Any] = {}
    address: dict[str, Any] = {}
    for field in fields:
        value = str(form.get(field["name"], "")).strip()
        if field["type"] == "checkbox":
            value = "1" if value else ""
        (address if field["name"] in ADDRESS_FIELDS else customer)[field["name"]] = value
    if address:
        customer["address"] = address
    return customer
