"""The baseline for the checkout benchmark: a bare Falcon endpoint that does one durable
order insert (order row + one line) on the same database, and nothing else.

Served by gunicorn as ``bench._bare_app:create_bare_app()``.
"""

from __future__ import annotations

import secrets
import time

import falcon

from ecshop.config import load_config
from ecshop.store import open_store


class BareOrder:
    def __init__(self) -> None:
        config = load_config()
        self.store = open_store(config.database_url, lock_timeout=config.db_lock_timeout)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = req.get_media()
        number = f"BARE-{secrets.token_hex(6)}"
        now = time.time()
        line = body["lines"][0]
        with self.store.tx() as tx:
            tx.execute(
                "INSERT INTO orders (number, access_token, status, stock_state, gateway, currency, subtotal, "
                "shipping, total, customer_json, hold_expires_at, created_at, updated_at) "
                "VALUES (?, ?, 'pending_payment', 'none', 'bench', 'JPY', 100, 0, 100, '{}', ?, ?, ?)",
                (number, secrets.token_hex(16), now + 900, now, now),
            )
            tx.execute(
                "INSERT INTO order_lines (order_number, line_no, sku, name, unit_price, qty, line_total) "
                "VALUES (?, 1, ?, 'bench', 100, ?, 100)",
                (number, line["sku"], line["qty"]),
            )
        resp.status = falcon.HTTP_201
        resp.media = {"number": number}


def create_bare_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/bare", BareOrder())
    return app
