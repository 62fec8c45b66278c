"""The per-client checkout limit (ecshop.resources.ratelimit)."""

from __future__ import annotations

from falcon import testing

from ecshop.app import create_app
from ecshop.config import load_config
from ecshop.store import open_store

TOKEN = "a" * 32
BODY = {"lines": [{"sku": "NONE", "qty": 1}], "customer": {"email": "a@example.com"},
        "gateway": "sandbox"}  # fmt: skip


def test_the_admin_token_is_not_limited_and_the_others_are(sqlite_url, tmp_path):
    open_store(sqlite_url).migrate()
    app = create_app(load_config({
        "ECSHOP_DATABASE_URL": sqlite_url, "ECSHOP_PLUGINS_DIR": str(tmp_path / "no-plugins"),
        "ECSHOP_ADMIN_TOKEN": TOKEN, "ECSHOP_CHECKOUT_RATE_LIMIT": "1/600"}))  # fmt: skip
    client = testing.TestClient(app)
    try:
        post = client.simulate_post
        assert post("/api/v1/checkout", json=BODY).status_code != 429
        assert post("/api/v1/checkout", json=BODY).status_code == 429
        wrong = {"Authorization": f"Bearer {'b' * 32}"}
        assert post("/api/v1/checkout", json=BODY, headers=wrong).status_code == 429
        owner = {"Authorization": f"Bearer {TOKEN}"}
        assert all(post("/api/v1/checkout", json=BODY, headers=owner).status_code != 429
                   for _ in range(5))  # fmt: skip
    finally:
        app.shop.close()
