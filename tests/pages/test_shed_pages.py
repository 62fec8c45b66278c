"""A browser's request that queued too long: the shed answer is the shop's own 503 page
(message, Retry-After, the security headers) in the visitor's language, answered from a
stored copy before the app (no access line, no cookie, a request id of its own), and
counted every time."""

from __future__ import annotations

import logging
import time

import pytest

from tests.pages.conftest import PageShop

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def shed_total(shop: PageShop) -> float:
    text = shop.client.simulate_get("/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ecshop_shed_requests_total"))  # fmt: skip


@pytest.fixture
def spiked(make_shop) -> PageShop:
    shop = make_shop(ECSHOP_SHED_QUEUE_MS="500")
    shop.add_product("TEA", 1200, 5)
    return shop


def stale() -> dict[str, str]:
    return {"X-Request-Start": f"t={time.time() - 5:.3f}"}


def test_shed_pages_are_the_shops_503_page_in_the_visitors_language(spiked, caplog):
    caplog.set_level(logging.INFO)
    before = shed_total(spiked)
    answers = [
        spiked.client.simulate_get(path, headers={**BROWSER, **stale(), "Accept-Language": lang})
        for path in ("/", "/products/TEA", "/cart")
        for lang in ("en", "ja")
    ]
    assert shed_total(spiked) == before + len(answers)
    for resp in answers:
        assert resp.status_code == 503 and int(resp.headers["Retry-After"]) > 0
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "set-cookie" not in {k.lower() for k in resp.headers}
        assert "<html" in resp.text and "Traceback" not in resp.text
    english, japanese = answers[2], answers[3]  # /products/TEA, from the stored copies
    assert 'lang="en"' in english.text and 'lang="ja"' in japanese.text
    assert english.text != japanese.text
    ids = {resp.headers["X-Request-Id"] for resp in answers}
    assert len(ids) == len(answers)
    # one access line each for the two requests that made the stored copies, none after
    access = [r for r in caplog.records if r.name == "ecshop.access" and " 503 " in r.getMessage()]
    assert len(access) == 2


def test_api_clients_get_the_json_answer_and_a_fresh_request_is_served(spiked):
    for _ in range(3):
        resp = spiked.client.simulate_get("/api/v1/products", headers=stale())
        assert resp.status_code == 503 and resp.json["error"]["code"] == "overloaded"
        assert resp.headers["Content-Type"].startswith("application/json")
    fresh = {"X-Request-Start": f"t={time.time():.3f}"}
    assert spiked.client.simulate_get("/api/v1/products", headers=fresh).status_code == 200
    # a request id the proxy gave is echoed on a stored answer too
    given = spiked.client.simulate_get("/api/v1/products",
                                       headers={**stale(), "X-Request-Id": "edge-42"})  # fmt: skip
    assert given.headers["X-Request-Id"] == "edge-42"
    odd = spiked.client.simulate_get("/api/v1/products",
                                     headers={**stale(), "X-Request-Id": "<script>"})  # fmt: skip
    assert odd.headers["X-Request-Id"] != "<script>" and len(odd.headers["X-Request-Id"]) == 16
