"""Small HTTP helpers shared by the resources: bounded JSON bodies, paging, money."""

from __future__ import annotations

import json
from typing import Any

import falcon

from ecshop.errors import BadRequest, PayloadTooLarge

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def read_json(req: falcon.Request, max_body: int) -> dict[str, Any]:
    """The request body as a JSON object, read with a hard size bound.

    Raises:
        PayloadTooLarge: the body is larger than ``max_body`` bytes.
        BadRequest: the body is empty, not UTF-8, not JSON or not an object.
    """
    if req.content_length is not None and req.content_length > max_body:
        raise PayloadTooLarge(f"request body is over the limit of {max_body} bytes", limit=max_body)
    raw = req.bounded_stream.read(max_body + 1)
    if len(raw) > max_body:
        raise PayloadTooLarge(f"request body is over the limit of {max_body} bytes", limit=max_body)
    if not raw.strip():
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    return data


def paging(req: falcon.Request) -> tuple[int, str | None]:
    """``limit`` (1..500, default 50) and ``after`` from the query string."""
    raw = req.get_param("limit")
    if raw is None:
        limit = DEFAULT_LIMIT
    else:
        try:
            limit = int(raw)
        except ValueError as exc:
            raise BadRequest("limit must be an integer", param="limit") from exc
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}", param="limit")
    return limit, req.get_param("after") or None


def send_json(resp: falcon.Response, body: Any, status: str | int = falcon.HTTP_200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
