"""The cart preview and the delivery choices over HTTP: the same tax lines and shipping
as checkout, nothing held or written; bad input is a readable 4xx."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from falcon import testing

from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.store import open_store

TOKEN = "t0ken-for-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ADDRESS = {"postal_code": "060-0001", "prefecture": "hokkaido", "city": "札幌市",
           "line1": "北1条西2-1"}  # fmt: skip


@pytest.fixture
def client(db_url, tmp_path):
    config = load_config({"ECSHOP_DATABASE_URL": db_url, "ECSHOP_ADMIN_TOKEN": TOKEN,
                          "ECSHOP_PLUGINS_DIR": str(tmp_path / "no-plugins"),
                          "ECSHOP_PLUGIN_SHIPPING_FEE_ZONES": "hokkaido:1200",
                          "ECSHOP_DELIVERY_SLOTS": "morning,18-20",
                          "ECSHOP_DELIVERY_RANGE_DAYS": "2",
                          "ECSHOP_SECRET_KEY": "k" * 32})  # fmt: skip
    open_store(db_url).migrate()
    app = create_app(config)
    client = testing.TestClient(app)
    for sku, price, tax_class in (("RICE", 2160, "reduced"), ("MUG", 1650, "standard")):
        resp = client.simulate_post("/api/v1/admin/products", headers=ADMIN, json={
            "sku": sku, "name": sku, "price": price, "on_hand": 5, "tax_class": tax_class})  # fmt: skip
        assert resp.status_code == 201, resp.text
    yield client
    app.shop.close()


def test_a_quote_prices_the_cart_as_checkout_does_and_writes_nothing(client):
    body = {"lines": [{"sku": "RICE", "qty": 1}, {"sku": "MUG", "qty": 1}],
            "customer": {"address": ADDRESS}}  # fmt: skip
    quote = client.simulate_post("/api/v1/quote", json=body)
    assert quote.status_code == 200, quote.text
    taxes = [{"tax_class": "standard", "rate": 10, "amount": 1650 + 1200, "tax": 259},
             {"tax_class": "reduced", "rate": 8, "amount": 2160, "tax": 160}]  # fmt: skip
    assert quote.json["taxes"] == taxes
    assert (quote.json["shipping"], quote.json["total"]) == (1200, 2160 + 1650 + 1200)
    shop = client.app.shop
    with shop.store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM orders") == 0
    assert shop.stock.levels(["RICE"])["RICE"].available == 5
    placed = client.simulate_post("/api/v1/checkout", json={
        **body, "customer": {"email": "a@example.com", "address": ADDRESS}, "gateway": "cod"})  # fmt: skip
    assert placed.status_code == 201, placed.text
    assert placed.json["taxes"] == taxes and placed.json["total"] == quote.json["total"]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"lines": []}, 400, "lines"),
    ({"lines": [{"sku": "RICE", "qty": 1}], "customer": {"address": {**ADDRESS, "prefecture": "x"}}},
     400, "customer.address.prefecture must be one of the 47"),
    ({"lines": [{"sku": "NOPE", "qty": 1}]}, 404, "no product with sku 'NOPE'"),
])  # fmt: skip
def test_a_bad_quote_is_a_readable_4xx(client, body, status, message):
    resp = client.simulate_post("/api/v1/quote", json=body)
    assert resp.status_code == status, resp.text
    assert message in resp.json["error"]["message"]


def test_the_delivery_options_are_the_shops_window_and_slots(client):
    today = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date()
    resp = client.simulate_get("/api/v1/delivery-options")
    assert resp.status_code == 200
    assert resp.json["slots"] == ["morning", "18-20"]
    assert resp.json["dates"][0] == (today + dt.timedelta(days=2)).isoformat()
    assert len(resp.json["dates"]) == 3
