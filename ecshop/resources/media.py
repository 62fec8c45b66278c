"""``GET /media/products/{name}``: product pictures from the media folder, with cache
headers (the page links them with a version, so browsers may keep them a day)."""

from __future__ import annotations

import falcon

from ecshop.media import NAME, MediaFolder
from ecshop.resources._declare import Answer, declare, path
from ecshop.resources.static import send_cached

NAME_PARAM = path("name", {"type": "string", "pattern": f"^{NAME.pattern}$",
                           "description": "a SKU and .jpg, .jpeg, .png or .webp"})  # fmt: skip


class ProductPictures:
    """``GET /media/products/{name}``."""

    def __init__(self, media: MediaFolder) -> None:
        self.media = media

    @declare(params=(NAME_PARAM,), answers=(
        Answer(200, "the picture", {"type": "string"}, "image/jpeg"),
        Answer(200, "the picture", {"type": "string"}, "image/png"),
        Answer(200, "the picture", {"type": "string"}, "image/webp"),
        Answer(304, "not modified since the client's copy (If-None-Match)"),
    ))  # fmt: skip
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """A product's picture."""
        picture = self.media.find(name)
        if picture is None:
            raise falcon.HTTPNotFound(description=f"no picture {name!r}")
        send_cached(req, resp, etag=picture.etag, media=picture.media, body=picture.path.read_bytes)
