"""Checkout: validate, reserve, write the order durably, and only then hand out the
gateway's redirect (DESIGN.md, "Orders: the write-ahead record").
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ecshop import metrics
from ecshop.delivery import DELIVERY, DeliveryPolicy
from ecshop.errors import (
    GatewayUnavailable,
    IdempotencyMismatch,
    InsufficientStock,
    InternalError,
    NotFound,
    ShopError,
    Unavailable,
    ValidationError,
)
from ecshop.orders import PENDING, OrderService, fees_of, lines_of, load, taxes_of
from ecshop.prefectures import code_of
from ecshop.schema import EMAIL, QTY, SKU, obj, validate
from ecshop.stockcore import core
from ecshop.store import DuplicateKey, Store, Tx
from ecshop.tax import TaxPolicy, tax_lines
from ecshop.totals import Totals, compute

MAX_CUSTOMER_JSON = 4096
MAX_LINES = 100
_NAME = {"type": "string", "maxLength": 255, "description": "a string of at most 255 characters"}
_LINE = {"type": "string", "minLength": 1, "maxLength": 255,
         "description": "a non-empty string of at most 255 characters"}  # fmt: skip
#: A Japanese delivery address; ``prefecture`` is one of the 47 by JIS code (01-47),
#: kanji or romaji name (:mod:`ecshop.prefectures`).
ADDRESS = obj({
    "postal_code": {"type": "string", "pattern": r"^\d{3}-\d{4}$",
                    "description": "a postal code as NNN-NNNN"},
    "prefecture": {"type": "string", "minLength": 1, "maxLength": 16,
                   "description": "one of the 47 prefectures (name or JIS code 01-47)"},
    "city": _LINE,
    "line1": _LINE,
}, {
    "line2": {**_LINE, "minLength": 0, "description": "a string of at most 255 characters"},
    "phone": {"type": "string", "pattern": r"^\+?[0-9][0-9-]{8,15}$",
              "description": "a phone number of digits and hyphens, e.g. 03-1234-5678"},
})  # fmt: skip
#: The customer as orders keep it (exports are checked with it): open, for orders
#: placed before the address had rules.
CUSTOMER_STORED = obj({"email": EMAIL}, {"name": _NAME}, closed=False)
_LANG = {"type": "string", "enum": ["ja", "en"]}
#: The customer of a cart preview: what the buyer has typed so far (no email yet).
CUSTOMER_SO_FAR = obj({}, {"email": EMAIL, "name": _NAME, "address": ADDRESS, "lang": _LANG},
                      closed=False)  # fmt: skip
#: The checkout body (``POST /api/v1/checkout`` declares and documents it).
CART = obj({
    "lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES,
              "items": obj({"sku": SKU, "qty": QTY}),
              "description": f"a list of 1 to {MAX_LINES} {{sku, qty}}"},
    "customer": obj({"email": EMAIL}, {"name": _NAME, "address": ADDRESS, "lang": _LANG},
                    closed=False),
    "gateway": {"type": "string", "minLength": 1, "maxLength": 64,
                "description": "the name of a payment gateway"},
}, {"delivery": DELIVERY})  # fmt: skip
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
SCOPE = "checkout"


def new_order_number(now: float | None = None) -> str:
    """A readable order number: the UTC date and 8 random base32 characters (40 bits)."""
    day = time.strftime("%Y%m%d", time.gmtime(now))
    bits = int.from_bytes(secrets.token_bytes(5), "big")
    return f"{day}-{''.join(_ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))}"


@dataclass(frozen=True)
class Cart:
    """A checkout body, checked: merged, sorted lines, the customer and the gateway."""

    lines: list[tuple[str, int]]
    customer: dict[str, Any]
    customer_json: str
    gateway: str
    delivery: dict[str, Any] | None = None


@dataclass(frozen=True)
class CheckoutResult:
    order: dict[str, Any]
    lines: list[dict[str, Any]]
    created: bool  # False when an Idempotency-Key replayed an earlier order
    fees: list[dict[str, Any]]
    taxes: list[dict[str, Any]]


@dataclass(frozen=True)
class Quote:
    """What a cart would cost, computed as checkout does, with nothing written: its
    priced lines (each with its ``tax_class``), totals and tax lines."""

    lines: list[dict[str, Any]]
    totals: Totals
    taxes: list[dict[str, Any]]


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def check_prefecture(customer: dict[str, Any]) -> None:
    """A customer's address names one of the 47 prefectures (the schema checked the rest).

    Raises:
        ValidationError: it names none (400).
    """
    address = customer.get("address")
    if address is not None and code_of(address["prefecture"]) is None:
        raise ValidationError(
            "customer.address.prefecture must be one of the 47 prefectures (name or JIS code 01-47)",
            field="customer.address.prefecture",
        )


def parse_cart(body: dict[str, Any]) -> Cart:
    """The cart of a checkout body, or a ValidationError naming the first bad field."""
    validate(body, CART)
    lines = core.canonicalize_lines([(line["sku"], line["qty"]) for line in body["lines"]])
    customer = body["customer"]
    check_prefecture(customer)
    customer_json = json.dumps(customer, ensure_ascii=False)
    if len(customer_json) > MAX_CUSTOMER_JSON:
        raise ValidationError(f"customer is over {MAX_CUSTOMER_JSON} characters", field="customer")
    gateway = body["gateway"]
    return Cart(lines, customer, customer_json, gateway, body.get("delivery"))


class CheckoutService:
    def __init__(self, store: Store, stock: Any, hooks: Any, orders: OrderService, *,
                 currency: str, hold_ttl: int, idempotency_ttl: int, max_lines: int = 50,
                 max_qty: int = 100, tax: TaxPolicy | None = None,
                 delivery: DeliveryPolicy | None = None) -> None:  # fmt: skip
        self.store = store
        self.stock = stock
        self.hooks = hooks
        self.orders = orders
        self.currency = currency
        self.hold_ttl = hold_ttl
        self.idempotency_ttl = idempotency_ttl
        self.max_lines = max_lines
        self.max_qty = max_qty
        self.tax = tax or TaxPolicy()
        self.delivery = delivery or DeliveryPolicy()

    @staticmethod
    def _ask_prices(tx: Tx, lines: list[tuple[str, int]]) -> Callable[[], list[dict[str, Any]]]:
        skus = [sku for sku, _ in lines]
        marks = ", ".join("?" for _ in skus)
        return tx.query_soon(
            f"SELECT sku, name, price, max_per_order, tax_class FROM products WHERE sku IN ({marks}) "
            "AND deleted_at IS NULL AND active = 1",
            skus,
        )

    @staticmethod
    def _priced(rows: list[dict[str, Any]], lines: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """The cart's lines at the database's prices; NotFound for an unknown SKU."""
        prices = {r["sku"]: r for r in rows}
        priced = []
        for line_no, (sku, qty) in enumerate(lines, start=1):
            product = prices.get(sku)
            if product is None:
                raise NotFound(f"no product with sku {sku!r}", sku=sku)
            unit = int(product["price"])
            priced.append({"line_no": line_no, "sku": sku, "name": product["name"],
                           "unit_price": unit, "qty": qty, "line_total": unit * qty,
                           "max_per_order": product["max_per_order"],
                           "tax_class": product["tax_class"]})  # fmt: skip
        return priced

    def _check_caps(self, lines: list[tuple[str, int]]) -> None:
        """One client holds only so much: lines per order and units per line."""
        if len(lines) > self.max_lines:
            raise ValidationError(
                f"an order may have at most {self.max_lines} lines",
                field="lines",
                limit=self.max_lines,
            )
        for sku, qty in lines:
            if qty > self.max_qty:
                raise ValidationError(
                    f"at most {self.max_qty} units of {sku} per order", field="lines", sku=sku,
                    limit=self.max_qty,
                )  # fmt: skip

    @staticmethod
    def _check_product_caps(priced: list[dict[str, Any]]) -> None:
        for line in priced:
            cap = line.pop("max_per_order", None)
            if cap is not None and line["qty"] > int(cap):
                raise ValidationError(
                    f"at most {int(cap)} units of {line['sku']} per order", field="lines",
                    sku=line["sku"], limit=int(cap),
                )  # fmt: skip

    def _replay(self, key: str, digest: str) -> CheckoutResult | None:
        with self.store.read() as tx:
            row = tx.one(
                # NOTE: `key` is reserved in MySQL; SQLite accepts the same backquotes.
                "SELECT request_hash, ref, expires_at FROM idempotency_keys WHERE scope = ? AND `key` = ?",
                (SCOPE, key),
            )
            if row is None or float(row["expires_at"]) < time.time():
                return None
            if row["request_hash"] != digest:
                raise IdempotencyMismatch(
                    "this Idempotency-Key was used with a different request body", key=key
                )

            ref = row["ref"]
            return CheckoutResult(load(tx, ref), lines_of(tx, ref), False, fees_of(tx, ref),
                                  taxes_of(tx, ref))  # fmt: skip

    def place(
        self, body: dict[str, Any], *, gateways: dict[str, Any], idempotency_key: str | None,
        unavailable: Mapping[str, list[str]] | None = None, member_id: str | None = None,
    ) -> CheckoutResult:  # fmt: skip
        """Place an order: the returned order is committed durably before this returns.
        ``member_id`` names the logged-in member placing it (from the session, never
        from the body). Timed by result (``ecshop_checkout_duration_seconds``).

        Raises:
            ValidationError / NotFound: bad cart, unknown SKU or gateway (nothing written).
            InsufficientStock: 409, nothing written, nothing held.
            IdempotencyMismatch: the key was used with another body (422).
            Unavailable: the order could not be written; its hold was released (503).
        """
        started = time.perf_counter()
        result = "failed"
        try:
            placed = self._place(body, gateways=gateways, idempotency_key=idempotency_key,
                                 unavailable=unavailable, member_id=member_id)  # fmt: skip
            result = "placed" if placed.created else "replayed"
            return placed
        except InsufficientStock:
            result = "out_of_stock"
            raise
        except ShopError as exc:
            result = "refused" if exc.status < 500 else "failed"
            raise
        finally:
            metrics.CHECKOUT_TIMES[result].observe(time.perf_counter() - started)

    def _place(
        self, body: dict[str, Any], *, gateways: dict[str, Any], idempotency_key: str | None,
        unavailable: Mapping[str, list[str]] | None, member_id: str | None,
    ) -> CheckoutResult:  # fmt: skip
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
            raise ValidationError(
                "Idempotency-Key must be 1 to 255 characters", field="Idempotency-Key"
            )
        digest = request_hash(body) if idempotency_key else ""
        if idempotency_key:
            replay = self._replay(idempotency_key, digest)
            if replay:
                return replay
        cart = parse_cart(body)
        lines, gateway = cart.lines, cart.gateway
        delivery = self.delivery.check(cart.delivery)
        if gateway not in gateways:
            if unavailable and gateway in unavailable:
                raise GatewayUnavailable(
                    f"the payment method {gateway!r} is not available in this shop right now; "
                    "please choose another", gateway=gateway,
                )  # fmt: skip
            raise NotFound(f"no payment gateway {gateway!r}", gateway=gateway)
        self._check_caps(lines)
        # An offline method holds for its pay window; a gateway's order holds until the
        # gateway has said it is not paid (None), shown to the buyer as the hold time.
        hold = gateways[gateway].hold_seconds()
        deadline = self.hold_ttl if hold is None else hold
        number = new_order_number()
        token = secrets.token_hex(16)
        reserved = False
        try:
            # PERF: one transaction reads the prices, reserves and writes the order (on
            # the SQL engine the reservation joins it; on Redis it is one script call
            # inside it), and with group commit it shares its commit with concurrent
            # checkouts. Either way it is durable before this returns. On MySQL the
            # price query is on the server while Redis takes the hold.
            def write(tx: Tx) -> tuple[list[dict[str, Any]], Totals, list[dict[str, Any]], float,
                                       float]:  # fmt: skip
                nonlocal reserved
                now = time.time()
                expires_at = now + deadline
                prices = self._ask_prices(tx, lines)
                try:
                    self.stock.reserve(number, lines, ttl=hold)
                except ShopError as exc:
                    reserved = exc.status >= 500  # a timeout may have left a hold
                    self._priced(prices(), lines)  # an unknown SKU is a 404 before a 409
                    raise
                reserved = True
                priced = self._priced(prices(), lines)
                self._check_product_caps(priced)
                totals = self._totals(priced, cart.customer, gateway)
                taxes = tax_lines(self.tax, priced, totals.shipping, totals.fees)
                self._write(
                    tx, number, token, priced, cart, totals, now, expires_at, delivery, member_id
                )
                self._write_taxes(tx, number, taxes)
                if idempotency_key:
                    self._remember(tx, idempotency_key, digest, number, now)
                return priced, totals, taxes, now, expires_at

            priced, totals, taxes, now, expires_at = self.store.grouped(write)
        except DuplicateKey as exc:
            self.stock.release(number)
            if idempotency_key:
                replay = self._replay(idempotency_key, digest)
                if replay:
                    return replay
            raise Unavailable("the order could not be written, try again", retry_after=1) from exc
        except ShopError as exc:
            if reserved or exc.status >= 500:
                self.stock.release(number)
            raise
        except Exception as exc:
            self.stock.release(number)
            raise Unavailable(
                "the order could not be written, try again shortly", retry_after=2
            ) from exc
        # PERF: the order is built from what was just committed instead of read back.
        order = {
            "number": number, "access_token": token, "status": PENDING, "stock_state": "held",
            "gateway": gateway, "currency": self.currency, "subtotal": totals.subtotal,
            "shipping": totals.shipping, "total": totals.total, "customer_json": cart.customer_json,
            "hold_expires_at": expires_at, "payment_id": None, "paid_amount": 0, "refunded_amount": 0,
            "version": 0, "created_at": now, "updated_at": now,
            "delivery_json": json.dumps(delivery) if delivery else None, "member_id": member_id,
        }  # fmt: skip
        result = CheckoutResult(order, priced, True, totals.fees, taxes)
        self.hooks.do_action("order_created", result.order)
        return result

    def quote_body(self, body: dict[str, Any]) -> Quote:
        """What a checkout ``body`` would be placed with (the same prices, caps,
        validation, ``cart_totals`` filters and tax lines as :meth:`place`), holding no
        stock: the review page's preview.

        Raises:
            ValidationError / NotFound: as :meth:`place`.
        """
        cart = parse_cart(body)
        self._check_caps(cart.lines)
        with self.store.read() as tx:
            priced = self._priced(self._ask_prices(tx, cart.lines)(), cart.lines)
        self._check_product_caps(priced)
        totals = self._totals(priced, cart.customer, cart.gateway)
        return Quote(priced, totals, tax_lines(self.tax, priced, totals.shipping, totals.fees))

    def _totals(
        self, priced: list[dict[str, Any]], customer: dict[str, Any], gateway: str
    ) -> Totals:
        """The order's totals after the plugins' validation and totals filters."""
        subtotal = sum(line["line_total"] for line in priced)
        cart = {"lines": priced, "customer": customer, "gateway": gateway}
        errors = self.hooks.apply_filters("checkout_validate", [], cart)
        if not isinstance(errors, list):
            raise InternalError("checkout_validate did not return a list", hook="checkout_validate")
        if errors:
            raise ValidationError(str(errors[0]), errors=[str(e) for e in errors])
        return compute(self.hooks, cart, subtotal, self.currency)

    def quote(self, lines: list[tuple[str, int]], customer: dict[str, Any],
              gateway: str) -> Quote:  # fmt: skip
        """What ``lines`` would cost for ``customer`` paying through ``gateway``: the
        same prices, ``checkout_validate`` and ``cart_totals`` filters and tax lines as
        :meth:`place`, for a cart page's preview. Nothing is written or held.

        Raises:
            NotFound: an unknown SKU. ValidationError: a plugin refused the cart.
        """
        lines = core.canonicalize_lines(lines)
        with self.store.read() as tx:
            priced = self._priced(self._ask_prices(tx, lines)(), lines)
        for line in priced:
            line.pop("max_per_order", None)
        totals = self._totals(priced, customer, gateway)
        return Quote(priced, totals, tax_lines(self.tax, priced, totals.shipping, totals.fees))

    @staticmethod
    def _write_taxes(tx: Tx, number: str, taxes: list[dict[str, Any]]) -> None:
        """The order's tax lines, in the checkout's transaction."""
        for t in taxes:
            tx.defer(
                "INSERT INTO order_taxes (order_number, tax_class, rate, amount, tax) VALUES (?, ?, ?, ?, ?)",
                (number, t["tax_class"], t["rate"], t["amount"], t["tax"]),
            )

    def _write(self, tx: Tx, number: str, token: str, priced: list[dict[str, Any]], cart: Cart,
               totals: Totals, now: float, expires_at: float,
               delivery: dict[str, Any] | None, member_id: str | None) -> None:  # fmt: skip
        customer_json, gateway = cart.customer_json, cart.gateway
        delivery_json = json.dumps(delivery) if delivery else None
        # PERF: deferred, the three writes go with the COMMIT in one round trip on MySQL.
        tx.defer(
            "INSERT INTO orders (number, access_token, status, stock_state, gateway, currency, subtotal, "
            "shipping, total, customer_json, hold_expires_at, created_at, updated_at, delivery_json, "
            "member_id) VALUES (?, ?, ?, 'held', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (number, token, PENDING, gateway, self.currency, totals.subtotal, totals.shipping,
             totals.total, customer_json, expires_at, now, now, delivery_json, member_id),
        )  # fmt: skip
        for ln in priced:
            tx.defer(
                "INSERT INTO order_lines (order_number, line_no, sku, name, unit_price, qty, line_total, "
                "tax_class) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (number, ln["line_no"], ln["sku"], ln["name"], ln["unit_price"], ln["qty"], ln["line_total"],
                 ln["tax_class"]),
            )  # fmt: skip
        for line_no, fee in enumerate(totals.fees, start=1):
            tx.defer(
                "INSERT INTO order_fees (order_number, line_no, name, amount, taxable) VALUES (?, ?, ?, ?, ?)",
                (number, line_no, fee["name"], fee["amount"], int(fee["taxable"])),
            )
        tx.defer(
            "INSERT INTO order_events (order_number, from_status, to_status, actor, reason, created_at) "
            "VALUES (?, NULL, ?, 'customer', 'checkout', ?)",
            (number, PENDING, now),
        )

    def _remember(self, tx: Tx, key: str, digest: str, number: str, now: float) -> None:
        tx.defer(
            "DELETE FROM idempotency_keys WHERE scope = ? AND `key` = ? AND expires_at < ?",
            (SCOPE, key, now),
        )
        tx.defer(
            "INSERT INTO idempotency_keys (scope, `key`, request_hash, ref, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (SCOPE, key, digest, number, now, now + self.idempotency_ttl),
        )
