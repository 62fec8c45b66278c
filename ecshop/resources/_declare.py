"""One declaration per endpoint: its parameters, body and answers.

``@declare(...)`` on a responder both checks each request against the declaration
(before the responder runs) and is what ``ecshop.resources.openapi`` writes into the
OpenAPI document, so the two cannot drift apart. The schemas are JSON-Schema dicts from
:mod:`ecshop.schema`.

A responder sees the checked values in ``req.context.params`` (query and header
parameters, typed, defaults filled in) and ``req.context.body`` (the JSON body).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import falcon

from ecshop.errors import ValidationError
from ecshop.resources._http import (
    DEFAULT_MAX_BODY,
    has_body,
    is_json,
    parse_json,
    read_body,
    require_json,
)
from ecshop.schema import Schema, validate

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


@dataclass(frozen=True)
class Param:
    """A parameter in the path, the query string or a header."""

    name: str
    where: str  # "path" | "query" | "header"
    schema: Schema
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Answer:
    """A documented response: its status, what it means and its body."""

    status: int
    description: str
    schema: Schema | None = None
    media: str = "application/json"
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    """What one responder takes and answers."""

    params: tuple[Param, ...] = ()
    body: Schema | None = None
    body_required: bool = True
    # media type(s) of a body the responder reads itself
    raw_body: str | tuple[str, ...] | None = None
    answers: tuple[Answer, ...] = ()
    #: an HTML page for browsers (a form, a page of the shop): checked like the rest,
    #: but left out of the OpenAPI document, which describes the API
    page: bool = False

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


def _coerce(param: Param, raw: str) -> Any:
    kind = param.schema.get("type")
    if kind == "integer":
        if not _INTEGER.fullmatch(raw):
            raise ValidationError(f"{param.name} must be an integer", field=param.name)
        return int(raw)
    if kind == "boolean":
        if raw.lower() not in _TRUE | _FALSE:
            raise ValidationError(f"{param.name} must be true or false", field=param.name)
        return raw.lower() in _TRUE
    return raw


def _raw(req: falcon.Request, param: Param, path: dict[str, Any]) -> str | None:
    if param.where == "path":
        return path.get(param.name)
    if param.where == "header":
        return req.get_header(param.name)
    return req.get_param(param.name)


def check_params(op: Operation, req: falcon.Request, path: dict[str, Any]) -> dict[str, Any]:
    """The declared parameters of ``req``, typed and checked (defaults filled in).

    Raises:
        ValidationError: a parameter is missing or malformed (``field`` names it).
    """
    values: dict[str, Any] = {}
    for param in op.params:
        raw = _raw(req, param, path)
        if raw is None:
            if param.required:
                raise ValidationError(f"{param.name} is missing", field=param.name)
            values[param.name] = param.schema.get("default")
            continue
        values[param.name] = validate(_coerce(param, raw), param.schema, param.name)
    return values


def check_body(op: Operation, req: falcon.Request) -> Any:
    """The request's JSON body, checked against the declaration (None when absent and
    optional). A write to an endpoint without a JSON body still refuses a non-JSON
    Content-Type, so a cross-site form cannot post to it.

    Raises:
        UnsupportedMediaType, PayloadTooLarge, BadRequest, ValidationError.
    """
    if req.method not in WRITES or op.raw_body is not None:
        return None
    if op.body is None or (not op.body_required and not has_body(req)):
        if req.content_type and not is_json(req.content_type):
            require_json(req)
        return None
    require_json(req)
    limit = int(getattr(req.context, "max_body", DEFAULT_MAX_BODY))
    return validate(parse_json(read_body(req, limit)), op.body)


Responder = Callable[..., None]


def declare(
    *,
    params: tuple[Param, ...] = (),
    body: Schema | None = None,
    body_required: bool = True,
    raw_body: str | tuple[str, ...] | None = None,
    answers: tuple[Answer, ...] = (),
    page: bool = False,
) -> Callable[[Responder], Responder]:
    """Declare a responder's parameters, body and answers; requests are checked
    against them before it runs (see the module's docstring). ``page=True`` marks an
    HTML page for browsers, which the OpenAPI document leaves out."""
    op = Operation(params, body, body_required, raw_body, answers, page)

    def wrap(responder: Responder) -> Responder:
        @functools.wraps(responder)
        def checked(resource: Any, req: falcon.Request, resp: falcon.Response, **path: Any) -> None:
            req.context.params = check_params(op, req, path)
            req.context.body = check_body(op, req)
            responder(resource, req, resp, **path)

        checked.operation = op  # type: ignore[attr-defined]
        return checked

    return wrap


def operation_of(responder: Any) -> Operation | None:
    """The declaration of a responder, if it has one."""
    op = getattr(responder, "operation", None)
    return op if isinstance(op, Operation) else None


# -- building blocks shared by the resources ----------------------------------------
def path(name: str, schema: Schema) -> Param:
    return Param(name, "path", schema, required=True)


def query(name: str, schema: Schema, *, required: bool = False, description: str = "") -> Param:
    return Param(name, "query", schema, required=required, description=description)


def header(name: str, schema: Schema, *, description: str = "") -> Param:
    return Param(name, "header", schema, description=description)


DEFAULT_LIMIT = 50
MAX_LIMIT = 500
LIMIT: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
PAGING = (
    query("limit", LIMIT, description=f"page size (1 to {MAX_LIMIT}, default {DEFAULT_LIMIT})"),
    query("after", {"type": "string", "minLength": 1, "maxLength": 255},
          description="the next_after cursor of the previous page"),
)  # fmt: skip


def page_of(item: Schema) -> Schema:
    """A list answer: ``{"items": [...], "next_after": cursor or null}``."""
    return {
        "type": "object",
        "required": ["items", "next_after"],
        "properties": {
            "items": {"type": "array", "items": item},
            "next_after": {"type": ["string", "null"]},
        },
    }


def ok(schema: Schema, description: str = "done", status: int = 200) -> Answer:
    return Answer(status, description, schema)
