"""What the storefront's pages are built from, through the plugins' filters: the
checkout form's fields (``checkout_fields``) and each template's context
(``storefront_context``). The page renderer calls these; they know nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecshop.errors import InternalError, ValidationError
from ecshop.schema import Schema, obj, validate

FIELD_TYPES = ("text", "email", "tel", "textarea", "select", "checkbox")
#: One checkout form field: ``name`` (the key in the checkout's ``customer``), ``label``,
#: ``type``, ``required``, and for a ``select`` its ``options``.
FIELD: Schema = obj(
    {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$",
                 "description": "a field name: a-z, 0-9 and _, from a letter"},
        "label": {"type": "string", "minLength": 1, "maxLength": 200,
                  "description": "a label of 1 to 200 characters"},
        "type": {"type": "string", "enum": list(FIELD_TYPES)},
        "required": {"type": "boolean"},
    },
    {"options": {"type": "array", "items": {"type": "string"}}},
    closed=False,
)  # fmt: skip
FIELDS: Schema = {"type": "array", "maxItems": 100, "items": FIELD,
                  "description": "a list of checkout fields"}  # fmt: skip

#: The checkout form before plugins change it; ``email`` is what the checkout requires.
DEFAULT_CHECKOUT_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "email", "label": "Email", "type": "email", "required": True},
    {"name": "name", "label": "Name", "type": "text", "required": False},
    {"name": "phone", "label": "Phone", "type": "tel", "required": False},
    {"name": "postal_code", "label": "Postal code", "type": "text", "required": False},
    {"name": "address", "label": "Address", "type": "textarea", "required": False},
)


def _bad(hook: str, what: str) -> InternalError:
    return InternalError(f"{hook} returned {what}", hook=hook)


def checkout_fields(hooks: Any) -> list[dict[str, Any]]:
    """The checkout form's fields after the ``checkout_fields`` filter.

    Raises:
        InternalError: a filter returned something that is not a list of fields, or two
            fields of one name.
    """
    value = hooks.apply_filters("checkout_fields", [dict(f) for f in DEFAULT_CHECKOUT_FIELDS])
    try:
        validate(value, FIELDS, "fields")
    except ValidationError as exc:
        raise _bad("checkout_fields", f"a bad field list: {exc.message}") from exc
    names = [f["name"] for f in value]
    if len(set(names)) != len(names):
        raise _bad("checkout_fields", "two fields of one name")
    return [dict(f) for f in value]


def template_context(hooks: Any, template: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The context ``template`` is rendered with, after the ``storefront_context`` filter.

    Raises:
        InternalError: a filter returned something that is not a dict.
    """
    value = hooks.apply_filters("storefront_context", dict(context), template)
    if not isinstance(value, dict):
        raise _bad("storefront_context", f"{type(value).__name__}, not a dict")
    return value
