"""The storefront's checkout fields and template context, through the plugins' filters."""

from __future__ import annotations

import jinja2
import pytest
from markupsafe import Markup

from ecshop.errors import InternalError
from ecshop.hooks import HookRegistry
from ecshop.pages import DEFAULT_CHECKOUT_FIELDS, checkout_fields, template_context
from ecshop.render import Renderer, load_translations


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


PAGE_SOURCE = (
    '{{ _("%(name)s was added to your cart.", name=who) }}|{{ _("%(n)s left", n=3) }}|'
    '{{ _("Add to cart") }}|{{ _("100%% sure") }}|{{ _(label) }}|'
    '{% autoescape false %}{{ _("%(name)s was added to your cart.", name=who) }}{% endautoescape %}|'
    "{{ row.name }}|{{ row.items is callable }}|{{ row.nope }}|{{ obj.real }}|"
    "{{ row.sku|urlencode }}|{{ who|urlencode }}|{{ 123456|money('USD') }}|"
    "{{ none }}|{{ -7 }}|{{ 1.5 }}|{{ flag }}|{{ html }}|{{ who|e }}|{{ [who] }}"
)  # fmt: skip
PAGE_VALUES = {"who": '<b>"Tea" & 100%</b>/ü', "label": "Cart", "obj": 5, "none": None,
               "flag": True, "html": Markup("<em>ok</em>"),
               "row": {"name": "<i>", "items": 1, "sku": "A.b_c-~9"}}  # fmt: skip


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_templates_render_as_plain_jinja_would(tmp_path, lang):
    """The renderer's quicker gettext, dict fields and urlencode give Jinja's text."""
    (tmp_path / "t.html").write_text(PAGE_SOURCE, "utf-8")
    renderer = Renderer(HookRegistry(), theme_dir=str(tmp_path))
    shown = renderer.render("t.html", PAGE_VALUES, lang)
    assert renderer.render("t.html", PAGE_VALUES, lang) == shown  # from what was looked up
    plain = jinja2.Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
    plain.install_gettext_translations(load_translations(lang), newstyle=True)  # type: ignore[attr-defined]
    plain.filters["money"] = lambda amount, currency: f"{amount / 100:,.2f} {currency}"
    assert shown == plain.from_string(PAGE_SOURCE).render(PAGE_VALUES)
    assert "&lt;b&gt;&#34;Tea&#34; &amp; 100%&lt;/b&gt;/ü" in shown
    assert "|&lt;i&gt;|True||5|A.b_c-~9|%3Cb%3E%22Tea%22%20%26%20100%25%3C/b%3E/%C3%BC|" in shown
