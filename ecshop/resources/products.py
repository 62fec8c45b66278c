"""Catalog endpoints: the storefront's read API and the admin product API."""

from __future__ import annotations

from typing import Any

import falcon

from ecshop import catalog
from ecshop.resources._http import paging, read_json, send_json


def _available(shop: Any, skus: list[str]) -> dict[str, int]:
    if not skus:
        return {}
    levels = shop.stock.levels(skus)
    return {sku: int(levels[sku].available) for sku in skus if sku in levels}


class ProductList:
    """``GET /api/v1/products``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List active products with what can still be sold."""
        limit, after = paging(req)
        rows, next_after = catalog.list_products(self.shop.store, limit=limit, after=after)
        available = _available(self.shop, [r["sku"] for r in rows])
        items = [
            self.shop.hooks.apply_filters(
                "product_view", catalog.render(r, available.get(r["sku"], 0))
            )
            for r in rows
        ]
        send_json(resp, {"items": items, "next_after": next_after})


class ProductItem:
    """``GET /api/v1/products/{sku}``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    def on_get(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """One active product."""
        row = catalog.get_product(self.shop.store, sku)
        body = catalog.render(row, _available(self.shop, [sku]).get(sku, 0))
        send_json(resp, self.shop.hooks.apply_filters("product_view", body))


class AdminProductList:
    """``POST /api/v1/admin/products``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List every product, inactive ones included."""
        limit, after = paging(req)
        rows, next_after = catalog.list_products(
            self.shop.store, limit=limit, after=after, include_inactive=True
        )
        send_json(resp, {"items": [catalog.render(r) for r in rows], "next_after": next_after})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a product (and its stock row, ``on_hand`` optional)."""
        data = read_json(req, self.shop.config.max_body)
        row = catalog.create_product(
            self.shop.store,
            self.shop.stock,
            data,
            currency=self.shop.config.currency,
            actor="admin",
        )
        resp.location = f"/api/v1/products/{row['sku']}"
        send_json(resp, catalog.render(row), falcon.HTTP_201)


class AdminProductItem:
    """``PUT`` / ``DELETE /api/v1/admin/products/{sku}``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    def on_get(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """One product, inactive included."""
        send_json(
            resp, catalog.render(catalog.get_product(self.shop.store, sku, include_inactive=True))
        )

    def on_put(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """Change name, description, price or active."""
        data = read_json(req, self.shop.config.max_body)
        row = catalog.update_product(self.shop.store, sku, data, currency=self.shop.config.currency)
        send_json(resp, catalog.render(row))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """Archive a product."""
        catalog.delete_product(self.shop.store, sku)
        resp.status = falcon.HTTP_204
