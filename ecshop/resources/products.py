"""Catalog endpoints: the storefront's read API and the admin product API."""

from __future__ import annotations

from typing import Any

import falcon

from ecshop import catalog
from ecshop.resources._declare import PAGING, Answer, declare, ok, page_of, path
from ecshop.resources._http import audit_request, send_json
from ecshop.resources._shapes import PRODUCT, PRODUCT_VIEW
from ecshop.schema import SKU

SKU_PATH = (path("sku", SKU),)


def _available(shop: Any, skus: list[str]) -> dict[str, int]:
    if not skus:
        return {}
    levels = shop.stock.levels(skus)
    return {sku: int(levels[sku].available) for sku in skus if sku in levels}


class ProductList:
    """``GET /api/v1/products``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=PAGING, answers=(ok(page_of(PRODUCT_VIEW), "a page of products"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List active products with what can still be sold."""
        limit, after = req.context.params["limit"], req.context.params["after"]
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

    @declare(params=SKU_PATH, answers=(ok(PRODUCT_VIEW, "the product"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """One active product."""
        row = catalog.get_product(self.shop.store, sku)
        body = catalog.render(row, _available(self.shop, [sku]).get(sku, 0))
        send_json(resp, self.shop.hooks.apply_filters("product_view", body))


class AdminProductList:
    """``GET``/``POST /api/v1/admin/products``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=PAGING, answers=(ok(page_of(PRODUCT), "a page of products"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List every product, inactive ones included."""
        limit, after = req.context.params["limit"], req.context.params["after"]
        rows, next_after = catalog.list_products(
            self.shop.store, limit=limit, after=after, include_inactive=True
        )
        send_json(resp, {"items": [catalog.render(r) for r in rows], "next_after": next_after})

    @declare(body=catalog.NEW_PRODUCT, answers=(ok(PRODUCT, "created", 201),))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a product (and its stock row, ``on_hand`` optional)."""
        data = req.context.body
        row = catalog.create_product(
            self.shop.store,
            self.shop.stock,
            data,
            currency=self.shop.config.currency,
            tax_classes=dict(self.shop.config.tax_rates),
            actor="admin",
        )
        resp.location = f"/api/v1/products/{row['sku']}"
        audit_request(self.shop.store, req, "product.create", row["sku"], None, catalog.render(row))
        send_json(resp, catalog.render(row), falcon.HTTP_201)


class AdminProductItem:
    """``PUT`` / ``DELETE /api/v1/admin/products/{sku}``."""

    def __init__(self, shop: Any) -> None:
        self.shop = shop

    @declare(params=SKU_PATH, answers=(ok(PRODUCT, "the product"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """One product, inactive included."""
        send_json(
            resp, catalog.render(catalog.get_product(self.shop.store, sku, include_inactive=True))
        )

    @declare(params=SKU_PATH, body=catalog.PRODUCT_CHANGE, answers=(ok(PRODUCT, "changed"),))
    def on_put(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """Change name, description, price or active."""
        data = req.context.body
        before = catalog.render(catalog.get_product(self.shop.store, sku, include_inactive=True))
        row = catalog.update_product(self.shop.store, sku, data, currency=self.shop.config.currency,
                                     tax_classes=dict(self.shop.config.tax_rates))  # fmt: skip
        audit_request(self.shop.store, req, "product.update", sku, before, catalog.render(row))
        send_json(resp, catalog.render(row))

    @declare(params=SKU_PATH, answers=(Answer(204, "archived"),))
    def on_delete(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """Archive a product."""
        before = catalog.render(catalog.get_product(self.shop.store, sku, include_inactive=True))
        catalog.delete_product(self.shop.store, sku)
        audit_request(self.shop.store, req, "product.archive", sku, before, None)
        resp.status = falcon.HTTP_204
