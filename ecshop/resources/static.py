"""``GET /static/{name}``: the storefront's script and style sheet, with cache headers.

Only the files shipped in ``ecshop/static/`` are served, read once at start-up. Their
URLs carry a hash of their content (``?v=``), so browsers may keep them for a day and
still see a new version at once after an upgrade.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import falcon

from ecshop.resources._declare import Answer, declare, path

FOLDER = Path(__file__).resolve().parent.parent / "static"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
CACHE = "public, max-age=86400"


def send_cached(req: falcon.Request, resp: falcon.Response, *, etag: str, media: str,
                body: Callable[[], bytes]) -> None:  # fmt: skip
    """A file the browser may keep for a day, with its ETag: 304 when the client's copy
    is current (``body`` is read only when it is not)."""
    resp.cache_control = [CACHE]
    resp.etag = etag
    resp.set_header("X-Content-Type-Options", "nosniff")
    if req.if_none_match and any(str(tag) == etag for tag in req.if_none_match):
        resp.status = falcon.HTTP_304
        return
    resp.content_type = media
    resp.data = body()


NAME = {"type": "string", "pattern": r"^[a-z0-9_-]{1,64}\.(js|css)$",
        "description": "the name of a shipped script or style sheet"}  # fmt: skip


@dataclass(frozen=True)
class Asset:
    body: bytes
    media: str
    etag: str


def load_assets(folder: Path = FOLDER) -> dict[str, Asset]:
    """Every shipped asset by file name."""
    assets = {}
    for file in sorted(folder.iterdir()):
        if file.suffix in TYPES:
            body = file.read_bytes()
            assets[file.name] = Asset(
                body, TYPES[file.suffix], hashlib.sha256(body).hexdigest()[:16]
            )
    return assets


class StaticFiles:
    """``GET /static/{name}``."""

    def __init__(self, assets: dict[str, Asset] | None = None) -> None:
        self.assets = load_assets() if assets is None else assets

    def url(self, name: str) -> str:
        """The asset's URL with its version, for pages to link."""
        return f"/static/{name}?v={self.assets[name].etag}"

    @declare(params=(path("name", NAME),), answers=(
        Answer(200, "the file", {"type": "string"}, "text/javascript"),
        Answer(200, "the file", {"type": "string"}, "text/css"),
        Answer(304, "not modified since the client's copy (If-None-Match)"),
    ))  # fmt: skip
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """A shipped script or style sheet."""
        asset = self.assets.get(name)
        if asset is None:
            raise falcon.HTTPNotFound(description=f"no static file {name!r}")
        send_cached(req, resp, etag=asset.etag, media=asset.media, body=lambda: asset.body)
