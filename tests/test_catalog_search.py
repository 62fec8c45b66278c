"""Catalog search on both dialects: by name or SKU, paged, wildcards taken literally."""

from __future__ import annotations

import time

import pytest

from ecshop.catalog import search_products
from ecshop.store import open_store


@pytest.fixture
def store(db_url):
    store = open_store(db_url)
    store.migrate()
    names = {"TEA-1": "Green tea", "TEA-2": "Roasted tea 100%", "MUG-1": "Blue mug",
             "CUP_9": "Tea cup", "OLD-1": "Old tea"}  # fmt: skip
    with store.tx() as tx:
        for sku, name in names.items():
            tx.execute(
                "INSERT INTO products (sku, name, description, price, currency, active, "
                "created_at, updated_at) VALUES (?, ?, '', 100, 'JPY', ?, ?, ?)",
                (sku, name, 0 if sku == "OLD-1" else 1, time.time(), time.time()),
            )
    yield store
    store.close()


def test_search_matches_names_and_skus_and_pages(store):
    rows, after = search_products(store, query="tea", limit=2, after=None)
    assert [r["sku"] for r in rows] == ["CUP_9", "TEA-1"] and after == "TEA-1"
    rows, after = search_products(store, query="tea", limit=2, after=after)
    assert [r["sku"] for r in rows] == ["TEA-2"] and after is None  # the inactive one is hidden
    assert [r["sku"] for r in search_products(store, query="mug-", limit=5, after=None)[0]] == [
        "MUG-1"
    ]


@pytest.mark.parametrize("words", ["GREEN tea", "green TEA", "Green Tea", "tea-1", "TeA-1"])
def test_case_does_not_matter(store, words):
    assert [r["sku"] for r in search_products(store, query=words, limit=10, after=None)[0]] == [
        "TEA-1"
    ]


@pytest.mark.parametrize(("words", "found"), [("100%", ["TEA-2"]), ("%", ["TEA-2"]),
                                              ("_", ["CUP_9"]), ("!", []), ("'", [])])  # fmt: skip
def test_wildcards_are_literal(store, words, found):
    assert [r["sku"] for r in search_products(store, query=words, limit=10, after=None)[0]] == found
