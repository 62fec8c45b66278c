"""The shop's input rules, written once as JSON-Schema dicts, and a small validator.

The HTTP layer declares every body and parameter with these schemas (and serves them in
its OpenAPI document); the catalog and the import of an export check values with the
same ones, so a rule lives in one place.

Only the subset of JSON Schema the shop uses is understood: ``type`` (a name or a list
of names), ``properties``, ``required``, ``additionalProperties`` (false or a schema),
``items``, ``minItems``, ``maxItems``, ``minLength``, ``maxLength``, ``pattern``,
``minimum``, ``maximum``, ``exclusiveMinimum`` and ``enum``. A schema's ``description``
completes its error message: ``"<field> must be <description>"``.

NOTE: a hundred lines of our own rather than the ``jsonschema`` package: the shop runs
on small hosts with few dependencies, needs only this subset, wants messages that name
the field for a customer, and must read ``pattern`` as JSON Schema does (anchors at the
very end), which Python's ``re`` does not by itself.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from ecshop.errors import ValidationError

Schema = dict[str, Any]

_TYPES: dict[str, str] = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return type(value) is int
    if kind == "number":
        return type(value) in (int, float) and math.isfinite(value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    return value is None


@lru_cache(maxsize=256)
def compiled(pattern: str) -> re.Pattern[str]:
    """A schema ``pattern`` (ECMA-262, as JSON Schema means it) for Python's ``re.search``.

    NOTE: in ECMA-262 ``$`` matches only at the very end; Python's ``$`` also matches
    before a trailing newline, so ``"SKU-1\\n"`` would pass ``^...$``. A final ``$`` is
    therefore compiled as ``\\Z``.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def matches(value: str, pattern: str) -> bool:
    """Whether ``value`` matches the schema ``pattern`` (anchored as JSON Schema means it)."""
    return compiled(pattern).search(value) is not None


def _fail(schema: Schema, where: str, fallback: str) -> ValidationError:
    name = where or "the body"
    description = schema.get("description")
    message = f"{name} must be {description}" if description else f"{name} {fallback}"
    return ValidationError(message, **({"field": where} if where else {}))


def _type_ok(value: Any, schema: Schema, where: str) -> None:
    kinds = schema.get("type")
    if kinds is None:
        return
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if not any(_is(value, k) for k in kinds):
        words = " or ".join(_TYPES[k] for k in kinds)
        raise _fail(schema, where, f"must be {words}")


def _scalar(value: Any, schema: Schema, where: str) -> None:
    if "enum" in schema and not any(type(value) is type(e) and value == e for e in schema["enum"]):
        raise _fail(schema, where, "must be one of " + ", ".join(map(str, schema["enum"])))
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise _fail(schema, where, f"must be at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise _fail(schema, where, f"must be at most {schema['maxLength']} characters")
        if "pattern" in schema and not matches(value, schema["pattern"]):
            raise _fail(schema, where, "is not in the expected form")
    elif type(value) in (int, float):
        if "minimum" in schema and value < schema["minimum"]:
            raise _fail(schema, where, f"must be {schema['minimum']} or more")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise _fail(schema, where, f"must be more than {schema['exclusiveMinimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise _fail(schema, where, f"must be {schema['maximum']} or less")


def _object(value: dict[str, Any], schema: Schema, where: str) -> None:
    properties: dict[str, Schema] = schema.get("properties", {})
    prefix = f"{where}." if where else ""
    for name in schema.get("required", ()):
        if name not in value:
            raise ValidationError(f"{prefix}{name} is missing", field=prefix + name)
    extra = schema.get("additionalProperties", True)
    for name in sorted(value, key=str):
        sub = properties.get(name)
        if sub is None:
            if extra is False:
                raise ValidationError(f"unknown field: {prefix}{name}", field=prefix + name)
            sub = extra if isinstance(extra, dict) else {}
        validate(value[name], sub, prefix + name)


def _array(value: list[Any], schema: Schema, where: str) -> None:
    if len(value) < schema.get("minItems", 0):
        raise _fail(schema, where, f"must have at least {schema['minItems']} item(s)")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise _fail(schema, where, f"must have at most {schema['maxItems']} items")
    items = schema.get("items")
    if items is not None:
        for i, item in enumerate(value):
            validate(item, items, f"{where}[{i}]")


def validate(value: Any, schema: Schema, where: str = "") -> Any:
    """Check ``value`` against ``schema``; return it unchanged.

    Raises:
        ValidationError: naming the first offending field (``field`` is its path, such as
            ``customer.email`` or ``lines[0].qty``).
    """
    _type_ok(value, schema, where)
    if isinstance(value, dict):
        _object(value, schema, where)
    elif isinstance(value, list):
        _array(value, schema, where)
    else:
        _scalar(value, schema, where)
    return value


def nullable(schema: Schema) -> Schema:
    """The same schema that also accepts null."""
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    out = {**schema, "type": [*kinds, "null"]}
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, *,
        closed: bool = True) -> Schema:  # fmt: skip
    """An object schema: ``required`` and ``optional`` properties, no others if ``closed``."""
    out: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    return out


# -- the shop's field rules ----------------------------------------------------------
MAX_COUNT = 1_000_000_000  # largest stock count or delta (ecshop.stock._types.MAX_DELTA)
MAX_PRICE = 10**12
MAX_NAME = 255
MAX_DESCRIPTION = 20_000

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SKU: Schema = {
    "type": "string",
    "pattern": SKU_PATTERN,
    "description": "1 to 64 characters: letters, digits, '.', '_' or '-'",
}
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}$"
EMAIL: Schema = {
    "type": "string",
    "maxLength": 320,
    "pattern": EMAIL_PATTERN,
    "description": "an email address",
}
NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME,
    "description": f"a non-empty string of at most {MAX_NAME} characters",
}
DESCRIPTION: Schema = {
    "type": "string",
    "maxLength": MAX_DESCRIPTION,
    "description": f"a string of at most {MAX_DESCRIPTION} characters",
}
PRICE: Schema = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_PRICE,
    "description": "a non-negative integer in minor units",
}
MONEY = PRICE
POSITIVE_MONEY: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_PRICE,
    "description": "a positive integer in minor units",
}
COUNT: Schema = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_COUNT,
    "description": "a non-negative integer",
}
DELTA: Schema = {
    "type": "integer",
    "minimum": -MAX_COUNT,
    "maximum": MAX_COUNT,
    "description": "an integer",
}
QTY: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": 10_000,
    "description": "a positive integer of at most 10000",
}
CURRENCY: Schema = {
    "type": "string",
    "pattern": "^[A-Z]{3}$",
    "description": "an ISO 4217 code such as JPY",
}
TOKEN: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "description": "a non-empty string of at most 255 characters",
}
TEXT: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "description": "a non-empty text of at most 200 characters",
}
TIME: Schema = {"type": "number", "minimum": 0, "description": "a unix time in seconds"}
FLAG: Schema = {"type": "boolean"}


def check(value: Any, schema: Schema, name: str) -> Any:
    """``validate`` for one named value (the catalog's and the importer's checks)."""
    return validate(value, schema, name)
