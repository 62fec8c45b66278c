"""What every row of an export must hold before ``ecshop import`` writes it.

Each table's columns are checked with the field rules the API uses
(:mod:`ecshop.schema`, the catalog's and the checkout's declarations, the order
statuses), plus the few rules that tie a row's fields together (``available <=
on_hand``) and its keys to earlier tables. A bad row is one line naming the table, the
row number and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecshop.catalog import MAX_PER_ORDER, TAX_CLASS
from ecshop.checkout import CUSTOMER_STORED
from ecshop.delivery import DELIVERY
from ecshop.errors import BadRequest, ShopError, ValidationError
from ecshop.orders import STATUSES
from ecshop.schema import (
    COUNT,
    CURRENCY,
    DELTA,
    DESCRIPTION,
    EMAIL,
    MAX_PRICE,
    MONEY,
    NAME,
    POSITIVE_MONEY,
    PRICE,
    SKU,
    TIME,
    TOKEN,
    Schema,
    nullable,
    obj,
    validate,
)

ID: Schema = {"type": "integer", "minimum": 1, "description": "a positive integer"}
POSITIVE: Schema = {"type": "integer", "minimum": 1, "maximum": 10_000,
                    "description": "a positive integer of at most 10000"}  # fmt: skip
ACTIVE: Schema = {"type": "integer", "enum": [0, 1], "description": "0 or 1"}
FEE_AMOUNT: Schema = {"type": "integer", "minimum": -MAX_PRICE, "maximum": MAX_PRICE,
                      "description": "an integer in minor units (negative: a discount)"}  # fmt: skip
TEXT: Schema = {**TOKEN, "maxLength": 10_000, "description": "a non-empty string"}
ANY_TEXT: Schema = {"type": "string", "maxLength": 1_000_000, "description": "a string"}
STATUS: Schema = {"type": "string", "enum": list(STATUSES)}
STOCK_STATES: Schema = {
    "type": "string",
    "enum": ["held", "committed", "released", "shipped", "none"],
}
HOLD_STATES: Schema = {"type": "string", "enum": ["held", "committed"]}
CUSTOMER: Schema = CUSTOMER_STORED
RATE: Schema = {"type": "integer", "minimum": 0, "maximum": 100, "description": "0 to 100"}
MEMBER_ID: Schema = {"type": "string", "pattern": "^[0-9a-f]{32}$",
                     "description": "32 hexadecimal digits"}  # fmt: skip
MAIL_STATUS: Schema = {"type": "string", "enum": ["pending", "sent", "failed", "stopped"]}

Check = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Table:
    """A table's row rules: its columns, its key, what it refers to, cross-field checks."""

    columns: Schema
    key: tuple[str, ...]
    refers: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (table, its key)
    checks: tuple[Check, ...] = ()


def _not_above(small: str, big: str) -> Check:
    def check(row: dict[str, Any]) -> None:
        if row[small] > row[big]:
            raise ValidationError(f"{small} must not be more than {big}", field=small)

    return check


def _line_total(row: dict[str, Any]) -> None:
    if row["line_total"] != row["unit_price"] * row["qty"]:
        raise ValidationError("line_total must be unit_price times qty", field="line_total")


def _json_text(column: str, schema: Schema | None = None) -> Check:
    def check(row: dict[str, Any]) -> None:
        if row[column] is None:
            return
        try:
            value = json.loads(row[column])
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"{column} must be JSON text", field=column) from exc
        if schema is not None:
            try:
                validate(value, schema)
            except ValidationError as exc:
                raise ValidationError(f"{column}: {exc.message}", field=column) from exc

    return check


TABLES: dict[str, Table] = {
    "settings": Table(obj({"name": TOKEN, "value": ANY_TEXT, "updated_at": TIME}), ("name",)),
    "products": Table(obj({
        "sku": SKU, "name": NAME, "description": DESCRIPTION, "price": PRICE,
        "currency": CURRENCY, "active": ACTIVE, "deleted_at": nullable(TIME),
        "created_at": TIME, "updated_at": TIME, "max_per_order": MAX_PER_ORDER,
        "tax_class": TAX_CLASS}), ("sku",)),
    "stock": Table(obj({
        "sku": SKU, "on_hand": COUNT, "available": COUNT, "version": COUNT,
        "updated_at": TIME}), ("sku",), {"sku": ("products", "sku")},
        (_not_above("available", "on_hand"),)),
    "stock_changes": Table(obj({
        "id": ID, "sku": SKU, "delta": DELTA, "on_hand_after": COUNT, "reason": TEXT,
        "actor": TOKEN, "ref": nullable(TOKEN), "created_at": TIME}), ("id",),
        {"sku": ("stock", "sku")}),
    "stock_holds": Table(obj({
        "token": {**TOKEN, "maxLength": 64}, "sku": SKU, "qty": POSITIVE, "state": HOLD_STATES,
        "expires_at": TIME, "created_at": TIME}), ("token", "sku"), {"sku": ("stock", "sku")}),
    "members": Table(obj({
        "id": MEMBER_ID, "email": EMAIL, "password_hash": {**TOKEN, "maxLength": 255},
        "name": {"type": "string", "maxLength": 200}, "address_json": nullable(ANY_TEXT),
        "created_at": TIME, "updated_at": TIME}), ("id",), checks=(_json_text("address_json"),)),
    "orders": Table(obj({
        "number": TOKEN, "access_token": TOKEN, "status": STATUS, "stock_state": STOCK_STATES,
        "gateway": TOKEN, "currency": CURRENCY, "subtotal": MONEY, "shipping": MONEY,
        "total": MONEY, "customer_json": TEXT, "hold_expires_at": nullable(TIME),
        "payment_id": nullable(TOKEN), "paid_amount": MONEY, "refunded_amount": MONEY,
        "version": COUNT, "created_at": TIME, "updated_at": TIME,
        "delivery_json": nullable(ANY_TEXT), "member_id": nullable(MEMBER_ID)}), ("number",),
        {"member_id": ("members", "id")}, checks=(_not_above("refunded_amount", "paid_amount"),
                _json_text("customer_json", CUSTOMER), _json_text("delivery_json", DELIVERY))),
    "order_lines": Table(obj({
        "order_number": TOKEN, "line_no": ID, "sku": SKU, "name": NAME, "unit_price": PRICE,
        "qty": POSITIVE, "line_total": MONEY, "tax_class": TAX_CLASS}),
        ("order_number", "line_no"), {"order_number": ("orders", "number")}, (_line_total,)),
    "order_taxes": Table(obj({
        "order_number": TOKEN, "tax_class": TAX_CLASS, "rate": RATE, "amount": MONEY,
        "tax": MONEY}), ("order_number", "tax_class"), {"order_number": ("orders", "number")},
        (_not_above("tax", "amount"),)),
    "order_fees": Table(obj({
        "order_number": TOKEN, "line_no": ID, "name": NAME, "amount": FEE_AMOUNT,
        "taxable": ACTIVE}), ("order_number", "line_no"), {"order_number": ("orders", "number")}),
    "order_events": Table(obj({
        "id": ID, "order_number": TOKEN, "from_status": nullable(STATUS), "to_status": STATUS,
        "actor": TOKEN, "reason": TEXT, "data_json": nullable(ANY_TEXT), "created_at": TIME}),
        ("id",), {"order_number": ("orders", "number")}, (_json_text("data_json"),)),
    "payments_journal": Table(obj({
        "id": ID, "gateway": TOKEN, "event_id": TOKEN, "order_number": TOKEN, "type": TOKEN,
        "amount": MONEY, "currency": CURRENCY, "payment_id": nullable(TOKEN),
        "payload_json": ANY_TEXT, "outcome": nullable(TOKEN), "received_at": TIME,
        "applied_at": nullable(TIME), "refund_id": nullable(TOKEN)}), ("id",),
        checks=(_json_text("payload_json"),)),
    "order_refunds": Table(obj({
        "gateway": TOKEN, "refund_id": TOKEN, "order_number": TOKEN, "amount": POSITIVE_MONEY,
        "origin": TOKEN, "created_at": TIME}), ("gateway", "refund_id"),
        {"order_number": ("orders", "number")}),
    "outbox": Table(obj({
        "id": ID, "kind": TOKEN, "order_number": nullable(TOKEN), "recipient": TOKEN,
        "data_json": nullable(ANY_TEXT), "status": MAIL_STATUS, "attempts": COUNT,
        "next_attempt_at": TIME, "last_error": nullable(ANY_TEXT), "created_at": TIME,
        "sent_at": nullable(TIME)}), ("id",), {"order_number": ("orders", "number")},
        (_json_text("data_json"),)),
    "admin_users": Table(obj({
        "id": MEMBER_ID, "username": {**TOKEN, "maxLength": 64},
        "password_hash": {**TOKEN, "maxLength": 255},
        "role": {"type": "string", "enum": ["owner", "staff"]},
        "totp_secret": nullable({**TOKEN, "maxLength": 64}), "created_at": TIME,
        "updated_at": TIME, "disabled_at": nullable(TIME),
        "totp_last_step": nullable(ID)}), ("id",)),
    "audit_log": Table(obj({
        "id": ID, "at": TIME, "actor": {**TOKEN, "maxLength": 100},
        "via": {"type": "string", "enum": ["web", "api", "cli"]}, "action": {**TOKEN, "maxLength": 64},
        "target": {"type": "string", "maxLength": 255}, "before_json": nullable(ANY_TEXT),
        "after_json": nullable(ANY_TEXT)}), ("id",),
        checks=(_json_text("before_json"), _json_text("after_json"))),
    "idempotency_keys": Table(obj({
        "scope": TOKEN, "key": TOKEN, "request_hash": TOKEN, "ref": TOKEN, "created_at": TIME,
        "expires_at": TIME}), ("scope", "key")),
}  # fmt: skip


class RowChecker:
    """Checks an export's rows table by table and remembers their keys (for duplicates
    and references to earlier tables)."""

    def __init__(self) -> None:
        self.keys: dict[str, set[tuple[Any, ...]]] = {}
        self.absent: dict[str, list[str]] = {}

    def columns(self, table: str, columns: Sequence[str]) -> None:
        """Every column of ``table`` must be in the export, once.

        Raises:
            BadRequest: a column is missing.
        """
        properties = TABLES[table].columns["properties"]
        missing = [c for c in properties if c not in columns]
        # NOTE: a column that may be null was added by a later schema version: an export
        # of an older shop leaves it out, and the database's default (NULL) fills it.
        required = [c for c in missing if "null" not in properties[c].get("type", ())]
        if required:
            raise BadRequest(f"table {table} in the export has no column {required[0]!r}")
        self.absent[table] = missing

    def row(self, table: str, columns: Sequence[str], values: Any, number: int) -> None:
        """Check row ``number`` (from 1) of ``table``.

        Raises:
            BadRequest: one line naming the table, the row and the field.
        """
        rules = TABLES[table]
        where = f"table {table}, row {number}"
        if not isinstance(values, list) or len(values) != len(columns):
            raise BadRequest(f"{where}: expected a list of {len(columns)} values", table=table,
                             row=number)  # fmt: skip
        row = dict(zip(columns, values, strict=True))
        row.update(dict.fromkeys(self.absent.get(table, ()), None))
        try:
            validate(row, rules.columns)
            for check in rules.checks:
                check(row)
            self._keys(table, rules, row)
        except ShopError as exc:
            found = exc.details.get("field")
            raise BadRequest(f"{where}: {exc.message}", table=table, row=number,
                             field=found) from exc  # fmt: skip

    def _keys(self, table: str, rules: Table, row: dict[str, Any]) -> None:
        for column, (other, _) in rules.refers.items():
            if row[column] is not None and (row[column],) not in self.keys.get(other, ()):
                raise ValidationError(f"{column} names no row of {other}", field=column)
        key = tuple(row[c] for c in rules.key)
        seen = self.keys.setdefault(table, set())
        if key in seen:
            raise ValidationError(f"{', '.join(rules.key)} repeats an earlier row",
                                  field=rules.key[0])  # fmt: skip
        seen.add(key)
