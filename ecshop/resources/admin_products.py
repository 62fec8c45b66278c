"""The admin's product pages: the list (every product, searched and paged), a new
product, a product's page with its picture, and archiving after a confirmation.

They call the catalog's functions, the ones the admin API calls, so the same rules hold,
and write the same audit lines (``product.create``, ``product.update``,
``product.archive``), and ``product.picture`` for an uploaded picture. A field the
catalog refuses gives the form back with a 400 (409 for a SKU that exists), the input
kept and the field named.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import falcon

from ecshop import catalog
from ecshop.admins import require
from ecshop.errors import Conflict, ValidationError
from ecshop.media import check_picture
from ecshop.resources._declare import declare, path, query
from ecshop.resources._page import FORM, HTML_ANSWER, MULTIPART, SEE_OTHER, see_other
from ecshop.resources.admin_pages import AdminPage
from ecshop.schema import SKU

PAGE_SIZE = 50
LIST_PARAMS = (
    query("q", {"type": "string", "maxLength": 100}, description="words in the name or SKU"),
    query("state", {"type": "string", "enum": list(catalog.STATES)}),
    query("after", {"type": "string", "maxLength": 255}, description="the next page's cursor"),
)
SKU_PATH = (path("sku", SKU),)
#: what the product form's other fields may take of a request next to its picture
FORM_ROOM = 64 * 1024
TEXT_FIELDS = ("sku", "name", "description", "price", "tax_class", "max_per_order", "on_hand")


def picture_limit(max_body: int) -> int:
    """The largest picture a form can carry under the body limit (``ECSHOP_MAX_BODY``)."""
    return max(FORM_ROOM, max_body - FORM_ROOM)


def _whole(form: dict[str, str], name: str, *, optional: bool = False) -> int | None:
    text = form.get(name, "").strip().replace(",", "")
    if not text and optional:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 13:
        raise ValidationError(f"{name} must be a whole number of 0 or more", field=name)
    return int(text)


def product_data(form: dict[str, str], *, new: bool) -> dict[str, Any]:
    """The catalog's fields from the product form (numbers checked as numbers).

    Raises:
        ValidationError: a number field holds something else (``field`` names it).
    """
    data: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "description": form.get("description", "").replace("\r\n", "\n"),
        "price": _whole(form, "price"),
        "tax_class": form.get("tax_class", ""),
        "max_per_order": _whole(form, "max_per_order", optional=True),
        "active": form.get("active") == "1",
    }
    if new:
        data["sku"] = form.get("sku", "").strip()
        on_hand = _whole(form, "on_hand", optional=True)
        if on_hand:
            data["on_hand"] = on_hand
    return data


def form_values(row: dict[str, Any]) -> dict[str, Any]:
    """A product row as the form shows it."""
    return {"sku": row["sku"], "name": row["name"], "description": row["description"],
            "price": str(int(row["price"])), "tax_class": row["tax_class"],
            "max_per_order": "" if row["max_per_order"] is None else str(row["max_per_order"]),
            "active": bool(row["active"]), "on_hand": ""}  # fmt: skip


class _ProductPage(AdminPage):
    def media(self) -> Any:
        return self.shop.extras["media"]

    def show_form(self, req: falcon.Request, resp: falcon.Response, values: dict[str, Any], *,
                  new: bool, error: dict[str, Any] | None = None, status: int = 200) -> None:  # fmt: skip
        sku = values.get("sku", "")
        self.render(req, resp, "admin/products_form.html", {
            "new": new, "values": values, "error": error or {},
            "tax_classes": list(self.shop.config.tax_rates),
            "picture": None if new else self.media().url_for(sku),
            "media_on": self.media().root is not None,
            "picture_kib": picture_limit(self.shop.config.max_body) // 1024,
        }, status)  # fmt: skip

    def picture(self, req: falcon.Request) -> tuple[bytes, str] | None:
        """The uploaded picture and its extension, checked, or None when none was sent.

        Raises:
            ValidationError: no media folder, an empty or oversized file, not an image.
        """
        upload = req.context.files.get("picture")
        if upload is None:
            return None
        if self.media().root is None:
            raise ValidationError(
                "pictures need a media folder: set ECSHOP_MEDIA_DIR", field="picture"
            )
        return upload.data, check_picture(upload.data, picture_limit(self.shop.config.max_body))

    def save_picture(self, req: falcon.Request, sku: str, picture: tuple[bytes, str]) -> None:
        stored = self.media().save(sku, *picture)
        self.audit(req, "product.picture", sku, None,
                   {"file": stored.path.name, "bytes": len(picture[0]), "type": stored.media})  # fmt: skip

    def refused(self, req: falcon.Request, resp: falcon.Response, exc: ValidationError | Conflict,
                *, new: bool, sku: str = "") -> None:  # fmt: skip
        values = {name: req.context.form.get(name, "") for name in TEXT_FIELDS}
        values["active"] = req.context.form.get("active") == "1"
        if sku:
            values["sku"] = sku
        # NOTE: the one conflict of a product's form is a SKU that exists
        field = str(exc.details.get("field") or ("sku" if isinstance(exc, Conflict) else ""))
        self.show_form(req, resp, values, new=new, status=exc.status,
                       error={"field": field, "message": exc.message})  # fmt: skip


class Products(_ProductPage):
    """``GET /admin/products``: every product, inactive and archived ones marked."""

    @declare(params=LIST_PARAMS, answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Products searched by name or SKU, narrowed to a state, a page at a time."""
        p = req.context.params
        words, state = (p["q"] or "").strip(), p["state"] or ""
        rows, next_after = catalog.find_products(self.shop.store, query=words, state=state,
                                                 limit=PAGE_SIZE, after=p["after"])  # fmt: skip
        levels = self.shop.stock.levels([r["sku"] for r in rows]) if rows else {}
        products = [{**r, "on_hand": levels[r["sku"]].on_hand if r["sku"] in levels else None,
                     "picture": self.media().url_for(r["sku"]) is not None} for r in rows]  # fmt: skip
        more = ("/admin/products?" + urlencode({"q": words, "state": state, "after": next_after})
                if next_after else None)  # fmt: skip
        self.render(req, resp, "admin/products.html", {
            "products": products, "q": words, "state": state, "states": catalog.STATES,
            "next_page": more, "currency": self.shop.config.currency,
            "error": {}, "bulk": {}})  # fmt: skip


class NewProduct(_ProductPage):
    """``GET|POST /admin/products/new``."""

    @declare(answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The form for a new product."""
        values: dict[str, Any] = {name: "" for name in TEXT_FIELDS}
        values.update(tax_class=self.shop.config.tax_rates[0][0], active=True)
        self.show_form(req, resp, values, new=True)

    @declare(raw_body=(FORM, MULTIPART), answers=(HTML_ANSWER, SEE_OTHER), page=True)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create the product (and its stock), with its picture if one was sent."""
        require(req.context.admin, "products")
        try:
            picture = self.picture(req)
            row = catalog.create_product(
                self.shop.store, self.shop.stock, product_data(req.context.form, new=True),
                currency=self.shop.config.currency,
                tax_classes=dict(self.shop.config.tax_rates), actor=req.context.actor.name,
            )  # fmt: skip
        except (ValidationError, Conflict) as exc:
            self.refused(req, resp, exc, new=True)
            return
        self.audit(req, "product.create", row["sku"], None, catalog.render(row))
        if picture is not None:
            self.save_picture(req, row["sku"], picture)
        self.flash(req, self.tr(req, "%(sku)s was created.", sku=row["sku"]))
        see_other(resp, f"/admin/products/{row['sku']}")


class ProductItem(_ProductPage):
    """``GET|POST /admin/products/{sku}``, ``GET|POST /admin/products/{sku}/archive``."""

    @declare(params=SKU_PATH, answers=(HTML_ANSWER,), page=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """The product's form, with its picture."""
        row = catalog.get_product(self.shop.store, sku, include_inactive=True)
        self.show_form(req, resp, form_values(row), new=False)

    @declare(params=SKU_PATH, raw_body=(FORM, MULTIPART), answers=(HTML_ANSWER, SEE_OTHER),
             page=True)  # fmt: skip
    def on_post(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """Save the product's fields, and its new picture if one was sent."""
        require(req.context.admin, "products")
        before = catalog.render(catalog.get_product(self.shop.store, sku, include_inactive=True))
        try:
            picture = self.picture(req)
            row = catalog.update_product(
                self.shop.store, sku, product_data(req.context.form, new=False),
                currency=self.shop.config.currency, tax_classes=dict(self.shop.config.tax_rates),
            )  # fmt: skip
        except (ValidationError, Conflict) as exc:
            self.refused(req, resp, exc, new=False, sku=sku)
            return
        after = catalog.render(row)
        if after != before:
            self.audit(req, "product.update", sku, before, after)
        if picture is not None:
            self.save_picture(req, sku, picture)
        self.flash(req, self.tr(req, "%(sku)s was saved.", sku=sku))
        see_other(resp, f"/admin/products/{sku}")

    @declare(params=SKU_PATH, answers=(HTML_ANSWER,), page=True)
    def on_get_archive(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """Ask before archiving the product."""
        row = catalog.get_product(self.shop.store, sku, include_inactive=True)
        self.render(req, resp, "admin/products_archive.html", {"product": row})

    @declare(params=SKU_PATH, raw_body=FORM, answers=(SEE_OTHER,), page=True)
    def on_post_archive(self, req: falcon.Request, resp: falcon.Response, sku: str) -> None:
        """Archive the product: gone from the shop, kept for its orders."""
        require(req.context.admin, "products")
        before = catalog.render(catalog.get_product(self.shop.store, sku, include_inactive=True))
        catalog.delete_product(self.shop.store, sku)
        self.audit(req, "product.archive", sku, before, None)
        self.flash(req, self.tr(req, "%(sku)s was archived.", sku=sku))
        see_other(resp, "/admin/products")


def add_routes(app: falcon.App, shop: Any, renderer: Any) -> None:
    """The product pages (``/admin/products/new`` before the SKU's routes)."""
    app.add_route("/admin/products", Products(shop, renderer))
    app.add_route("/admin/products/new", NewProduct(shop, renderer))
    item = ProductItem(shop, renderer)
    app.add_route("/admin/products/{sku}", item)
    app.add_route("/admin/products/{sku}/archive", item, suffix="archive")
