"""Product pictures: files the owner drops into the media folder (``ECSHOP_MEDIA_DIR``),
``products/<SKU>.jpg`` (or ``.jpeg``, ``.png``, ``.webp``). Nothing is uploaded through
the shop; a product without a file simply shows no picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
#: a picture's file name: a SKU and one of the known extensions, never a path
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.(?:jpg|jpeg|png|webp)")


@dataclass(frozen=True)
class Picture:
    path: Path
    media: str
    etag: str


class MediaFolder:
    """The pictures under ``folder`` (none when ``folder`` is empty)."""

    def __init__(self, folder: str) -> None:
        self.root = Path(folder) / "products" if folder else None

    def find(self, name: str) -> Picture | None:
        """The picture called ``name``, or None (a bad name is simply not found)."""
        if self.root is None or not NAME.fullmatch(name):
            return None
        path = self.root / name
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        return Picture(path, TYPES[path.suffix], f"{int(stat.st_mtime_ns):x}-{stat.st_size:x}")

    def url_for(self, sku: str) -> str | None:
        """The URL of ``sku``'s picture, with its version, or None when it has none."""
        for ext in TYPES:
            picture = self.find(sku + ext)
            if picture is not None:
                return f"/media/products/{sku}{ext}?v={picture.etag}"
        return None
