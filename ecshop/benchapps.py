"""Ceilings for ecshop's checkout: three bare Falcon apps served by the same gunicorn
settings, each answering ``POST /api/v1/checkout`` with the checkout's own body.

- :func:`hello_app`: reads the JSON body and answers 201 — what gunicorn and Falcon
  cost with no database at all;
- :func:`insert_app`: one durable order insert (order row + one line) through the
  shop's store — one commit per checkout, the bound a checkout meets first;
- :func:`for_update_app`: the checkout of EC-CUBE and most PHP shops: in one
  transaction, ``SELECT … FOR UPDATE`` on the product's stock row, the stock check, an
  ``UPDATE`` of the row, the order and its line, one commit.

``ecshop bench`` serves each as ``ecshop.benchapps:<name>()`` next to the shop and
drives them side by side; ``bench/test_checkout_throughput.py`` uses
:func:`insert_app`. Each app also answers ``GET /healthz`` so it is started like a shop.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import falcon

from ecshop.config import load_config
from ecshop.store import Store, open_store

CEILINGS = {
    "bare_falcon": "ecshop.benchapps:hello_app()",
    "durable_insert": "ecshop.benchapps:insert_app()",
    "for_update_checkout": "ecshop.benchapps:for_update_app()",
}
"""Each ceiling's name and its gunicorn app spec, cheapest first."""
HOT_SKU = "BENCH-CEILING"
"""The SKU the FOR UPDATE checkout sells (:func:`seed` makes it)."""
PATH = "/api/v1/checkout"

_ORDER = (
    "INSERT INTO orders (number, access_token, status, stock_state, gateway, currency, "
    "subtotal, shipping, total, customer_json, hold_expires_at, created_at, updated_at) "
    "VALUES (?, ?, 'pending_payment', ?, 'bench', 'JPY', ?, 0, ?, '{}', ?, ?, ?)"
)
_LINE = (
    "INSERT INTO order_lines (order_number, line_no, sku, name, unit_price, qty, line_total) "
    "VALUES (?, 1, ?, 'bench', ?, ?, ?)"
)


def _store() -> Store:
    config = load_config()
    return open_store(config.database_url, lock_timeout=config.db_lock_timeout)


def _insert_order(tx: Any, sku: str, qty: int, price: int, stock_state: str) -> str:
    number = f"BARE-{secrets.token_hex(6)}"
    now = time.time()
    total = price * qty
    tx.execute(_ORDER, (number, secrets.token_hex(16), stock_state, total, total, now + 900,
                        now, now))  # fmt: skip
    tx.execute(_LINE, (number, sku, price, qty, total))
    return number


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"ok": True}


class Hello:
    """Reads the body and answers 201: no database."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.get_media()
        resp.status = falcon.HTTP_201
        resp.media = {"number": "HELLO"}


class InsertOrder:
    """One durable commit of an order row and one line, and nothing else."""

    def __init__(self) -> None:
        self.store = _store()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        line = req.get_media()["lines"][0]
        with self.store.tx() as tx:
            number = _insert_order(tx, line["sku"], int(line["qty"]), 100, "none")
        resp.status = falcon.HTTP_201
        resp.media = {"number": number}


class ForUpdateCheckout:
    """The stock row locked with ``SELECT … FOR UPDATE``, checked, decremented, and the
    order written, in one transaction.

    SQLite has no ``FOR UPDATE``: its write transaction (``BEGIN IMMEDIATE`` behind the
    store's writer lock) already holds the only write lock there is, so the statement
    goes without the clause and the lock is taken as the transaction begins.
    """

    def __init__(self) -> None:
        self.store = _store()
        lock = "" if self.store.dialect == "sqlite" else " FOR UPDATE"
        self.select = f"SELECT available FROM stock WHERE sku = ?{lock}"

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        qty = int(req.get_media()["lines"][0]["qty"])
        with self.store.tx() as tx:
            price = tx.scalar("SELECT price FROM products WHERE sku = ?", (HOT_SKU,))
            row = tx.one(self.select, (HOT_SKU,))
            if price is None or row is None or int(row["available"]) < qty:
                resp.status = falcon.HTTP_409
                resp.media = {"error": {"code": "out_of_stock", "message": "sold out"}}
                return
            tx.execute(
                "UPDATE stock SET available = available - ?, version = version + 1, "
                "updated_at = ? WHERE sku = ?",
                (qty, time.time(), HOT_SKU),
            )
            number = _insert_order(tx, HOT_SKU, qty, int(price), "held")
        resp.status = falcon.HTTP_201
        resp.media = {"number": number}


def _app(resource: object) -> falcon.App:
    app = falcon.App()
    app.add_route(PATH, resource)
    app.add_route("/healthz", Health())
    return app


def hello_app() -> falcon.App:
    return _app(Hello())


def insert_app() -> falcon.App:
    return _app(InsertOrder())


def for_update_app() -> falcon.App:
    return _app(ForUpdateCheckout())


def seed(store: Store, units: int) -> None:
    """Give the FOR UPDATE checkout its product with ``units`` in stock (a migrated,
    shop-less database: straight into the tables, no stock engine)."""
    now = time.time()
    with store.tx() as tx:
        tx.execute(
            "INSERT INTO products (sku, name, description, price, currency, created_at, "
            "updated_at) VALUES (?, 'bench ceiling', '', 1000, 'JPY', ?, ?)",
            (HOT_SKU, now, now),
        )
        tx.execute(
            "INSERT INTO stock (sku, on_hand, available, version, updated_at) "
            "VALUES (?, ?, ?, 0, ?)",
            (HOT_SKU, units, units, now),
        )
