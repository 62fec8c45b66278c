"""``GET /api/openapi.json``: an OpenAPI 3.1 document made from the routes themselves.

Every route added through :class:`ecshop.app.ShopApp` is recorded with its resource,
so the document lists exactly the paths and methods the app answers.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import falcon

from ecshop import __version__

METHODS = ("get", "post", "put", "patch", "delete")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def _operation(path: str, method: str, responder: Any) -> dict[str, Any]:
    doc = inspect.getdoc(responder) or ""
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    op: dict[str, Any] = {
        "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
        "summary": doc.splitlines()[0] if doc else f"{method.upper()} {path}",
        "responses": {
            "default": {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            "2XX": {"description": "success"},
        },
    }
    if params:
        op["parameters"] = params
    if path.startswith("/api/v1/admin"):
        op["security"] = [{"adminToken": []}]
    if method in ("post", "put", "patch"):
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    return op


def build_document(routes: list[tuple[str, Any, str | None]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, resource, suffix in routes:
        item = paths.setdefault(path, {})
        for method in METHODS:
            name = f"on_{method}" + (f"_{suffix}" if suffix else "")
            responder = getattr(resource, name, None)
            if responder is not None:
                item[method] = _operation(path, method, responder)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ecshop", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }


class OpenAPIResource:
    def __init__(self, routes: list[tuple[str, Any, str | None]]) -> None:
        self.routes = routes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """This document."""
        resp.media = build_document(self.routes)
