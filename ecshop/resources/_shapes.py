"""What the API answers, as JSON-Schema dicts: the declarations' answers and the
OpenAPI document's. Open objects (plugins may add fields through ``product_view``)."""

from __future__ import annotations

from ecshop.orders import STATUSES
from ecshop.schema import Schema

INT: Schema = {"type": "integer"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
STR_OR_NULL: Schema = {"type": ["string", "null"]}


def shape(**properties: Schema) -> Schema:
    """An open object whose listed properties are all present."""
    return {"type": "object", "required": list(properties), "properties": properties}


PRODUCT = shape(
    sku=STR,
    name=STR,
    description=STR,
    price=INT,
    currency=STR,
    active=BOOL,
    max_per_order={"type": ["integer", "null"]},
    tax_class=STR,
)
PRODUCT_VIEW: Schema = {**PRODUCT, "properties": {**PRODUCT["properties"], "available": INT}}

LINE = shape(sku=STR, name=STR, unit_price=INT, qty=INT, line_total=INT, tax_class=STR)
#: The consumption tax an order's tax-inclusive prices contain, per rate: ``amount``
#: (tax included) was taxed at ``rate`` percent and contains ``tax`` (ecshop.tax).
TAX = shape(tax_class=STR, rate=INT, amount=INT, tax=INT)
#: The buyer's delivery choice, or null.
DELIVERY: Schema = {"type": ["object", "null"],
                    "properties": {"date": STR, "slot": STR}}  # fmt: skip
#: A fee line a plugin added (``amount`` < 0 is a discount); total = subtotal +
#: shipping + the fee lines' amounts.
FEE = shape(name=STR, amount=INT, taxable=BOOL)
ORDER = shape(
    number=STR, status={"type": "string", "enum": list(STATUSES)}, gateway=STR, currency=STR,
    subtotal=INT, shipping=INT, total=INT, paid_amount=INT, refunded_amount=INT,
    expires_at=STR_OR_NULL, created_at=STR_OR_NULL, lines={"type": "array", "items": LINE},
    fees={"type": "array", "items": FEE}, taxes={"type": "array", "items": TAX},
    delivery=DELIVERY,
)  # fmt: skip
QUOTE = shape(
    currency=STR, subtotal=INT, shipping=INT, total=INT, fees={"type": "array", "items": FEE},
    taxes={"type": "array", "items": TAX}, lines={"type": "array", "items": LINE},
)  # fmt: skip
DELIVERY_OPTIONS = shape(dates={"type": "array", "items": STR},
                         slots={"type": "array", "items": STR})  # fmt: skip
PLACED: Schema = {
    **ORDER,
    "required": [*ORDER["required"], "access_token", "payment"],
    "properties": {**ORDER["properties"], "access_token": STR, "payment": {"type": "object"}},
}
ORDER_DETAIL: Schema = {
    **ORDER,
    "required": [
        *ORDER["required"],
        "customer",
        "payment_id",
        "events",
        "payments",
        "attention",
        "mail",
    ],
    "properties": {
        **ORDER["properties"],
        "customer": {"type": "object"},
        "attention": {"type": ["object", "null"]},
        "payment_id": STR_OR_NULL,
        "events": {"type": "array", "items": {"type": "object"}},
        "payments": {"type": "array", "items": {"type": "object"}},
        # the outbox's rows of this order: kind, recipient, status, attempts, last_error
        "mail": {"type": "array", "items": {"type": "object"}},
    },
}

STOCK_ITEM = shape(sku=STR, on_hand=INT, available=INT, held=INT, sold_unshipped=INT)
IMPORT_DIFF = shape(
    dry_run=BOOL, applied=BOOL, items={"type": "array", "items": {"type": "object"}}
)
AUDIT = shape(
    items={"type": "array", "items": {"type": "object"}}, next_after={"type": "null"},
    consistent=BOOL,
)  # fmt: skip
REBUILT = shape(rebuilt=BOOL, drift={"type": "array"}, consistent=BOOL)
GATEWAY = shape(name=STR, title=STR, live=BOOL, test_mode=BOOL, offline=BOOL,
                problems={"type": "array", "items": STR})  # fmt: skip
MAINTENANCE = shape(on=BOOL, message=STR, retry_after=INT)
HEALTH = shape(ok=BOOL, parts={"type": "object"})
RECEIVED = shape(received=BOOL, event=STR, outcome=STR_OR_NULL)
RETURNED = shape(number=STR, status=STR, test_mode=BOOL)
OPENAPI = shape(openapi=STR, info={"type": "object"}, paths={"type": "object"})
