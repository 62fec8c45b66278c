"""``GET /api/openapi.json``: an OpenAPI 3.1 document made from the routes themselves.

Every route added through :class:`ecshop.app.ShopApp` is recorded with its resource, so
the document lists exactly the paths and methods the app answers; each operation is
written from the responder's ``@declare`` declaration, the same one that checks its
requests (``ecshop.resources._declare``).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import falcon

from ecshop import __version__
from ecshop.resources._declare import Answer, Operation, Param, declare, ok, operation_of
from ecshop.resources._shapes import OPENAPI

METHODS = ("get", "post", "put", "patch", "delete")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            },
        }
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _parameter(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.where, "required": param.required,
                           "schema": param.schema}  # fmt: skip
    if param.description:
        out["description"] = param.description
    return out


def _parameters(path: str, op: Operation) -> list[dict[str, Any]]:
    declared = [_parameter(p) for p in op.params]
    named = {p.name for p in op.params if p.where == "path"}
    for name in re.findall(r"{(\w+)}", path):
        if name not in named:
            schema = {"type": "string", "minLength": 1}
            declared.append({"name": name, "in": "path", "required": True, "schema": schema})
    return declared


def _answer(answer: Answer) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    if answer.schema is not None:
        out["content"] = {answer.media: {"schema": answer.schema}}
    return out


def _responses(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for answer in op.answers:
        status = str(answer.status)
        if status in responses and answer.schema is not None:
            content = responses[status].setdefault("content", {})
            content[answer.media] = {"schema": answer.schema}
        else:
            responses[status] = _answer(answer)
    responses["default"] = {
        "description": "an error",
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    return responses


def _request_body(op: Operation) -> dict[str, Any] | None:
    if op.body is not None:
        return {"required": op.body_required,
                "content": {"application/json": {"schema": op.body}}}  # fmt: skip
    if op.raw_body is not None:
        media = (op.raw_body,) if isinstance(op.raw_body, str) else op.raw_body
        return {"required": False, "content": {
            m: {"schema": {"type": "string" if m.startswith("text/") else "object"}} for m in media
        }}  # fmt: skip
    return None


def _operation(path: str, method: str, responder: Any) -> dict[str, Any]:
    # NOTE: a responder without @declare is still listed (with no parameters, body or
    # answers), so the document never fails; the tests require every one declared.
    op = operation_of(responder) or Operation()
    doc = inspect.getdoc(responder) or ""
    out: dict[str, Any] = {
        "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
        "summary": doc.splitlines()[0] if doc else f"{method.upper()} {path}",
        "responses": _responses(op),
    }
    parameters = _parameters(path, op)
    if parameters:
        out["parameters"] = parameters
    if path.startswith("/api/v1/admin"):
        out["security"] = [{"adminToken": []}]
    elif path == "/metrics":  # the token, or an allowed address without one
        out["security"] = [{"metricsToken": []}, {}]
    body = _request_body(op)
    if body is not None:
        out["requestBody"] = body
    return out


def build_document(routes: list[tuple[str, Any, str | None]]) -> dict[str, Any]:
    """The OpenAPI document of ``routes`` (the app's ``route_table``)."""
    paths: dict[str, Any] = {}
    for path, resource, suffix in routes:
        item = paths.get(path, {})
        for method in METHODS:
            name = f"on_{method}" + (f"_{suffix}" if suffix else "")
            responder = getattr(resource, name, None)
            op = operation_of(responder)
            if responder is not None and not (op is not None and op.page):
                item[method] = _operation(path, method, responder)
        if item:
            paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "ecshop", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer"},
                "metricsToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }


class OpenAPIResource:
    def __init__(self, routes: list[tuple[str, Any, str | None]]) -> None:
        self.routes = routes
        self._document: dict[str, Any] | None = None

    @declare(answers=(ok(OPENAPI, "this document"),))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """This document."""
        if self._document is None:  # the routes are all added before the first request
            self._document = build_document(self.routes)
        resp.media = self._document
