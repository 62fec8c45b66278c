"""The storefront's checkout fields and template context, through the plugins' filters."""

from __future__ import annotations

import pytest

from ecshop.errors import InternalError
from ecshop.hooks import HookRegistry
from ecshop.pages import DEFAULT_CHECKOUT_FIELDS, checkout_fields, template_context


def test_checkout_fields_pass_through_the_filter():
    hooks = HookRegistry()
    hooks.add_filter("checkout_fields", lambda fields: [f for f in fields if f["name"] != "phone"])
    hooks.add_filter(
        "checkout_fields",
        lambda fields: [*fields, {"name": "delivery_time", "label": "Delivery time",
                                  "type": "select", "required": False,
                                  "options": ["morning", "evening"]}], 20,
    )  # fmt: skip
    names = [f["name"] for f in checkout_fields(hooks)]
    assert names == [
        "email",
        "name",
        "postal_code",
        "prefecture",
        "city",
        "line1",
        "line2",
        "delivery_time",
    ]
    assert [f["name"] for f in checkout_fields(HookRegistry())] == [
        f["name"] for f in DEFAULT_CHECKOUT_FIELDS
    ]


@pytest.mark.parametrize(
    "returned",
    [None, [{"name": "x"}], [{"name": "Bad Name", "label": "L", "type": "text", "required": True}],
     [{"name": "email", "label": "E", "type": "email", "required": True}] * 2],
)  # fmt: skip
def test_a_bad_field_list_is_an_internal_error(returned):
    hooks = HookRegistry()
    hooks.add_filter("checkout_fields", lambda fields: returned)
    with pytest.raises(InternalError, match="checkout_fields"):
        checkout_fields(hooks)


def test_template_context_passes_the_template_name():
    hooks = HookRegistry()
    hooks.add_filter(
        "storefront_context",
        lambda ctx, template: {**ctx, "banner": "Sale"} if template == "index.html" else ctx,
    )
    assert template_context(hooks, "index.html", {"title": "Shop"}) == {
        "title": "Shop", "banner": "Sale"}  # fmt: skip
    assert template_context(hooks, "cart.html", {"title": "Cart"}) == {"title": "Cart"}
    hooks.add_filter("storefront_context", lambda ctx: ["not", "a", "dict"], accepted_args=1)
    with pytest.raises(InternalError, match="storefront_context"):
        template_context(hooks, "index.html", {})
