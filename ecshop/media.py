"""Product pictures in the media folder (``ECSHOP_MEDIA_DIR``): ``products/<SKU>.jpg``
(or ``.jpeg``, ``.png``, ``.webp``). The owner drops files there, or uploads one on the
product's admin page (:meth:`MediaFolder.save`); a product without a file simply shows
no picture.

An upload is taken for what its first bytes say it is (JPEG, PNG or WebP), never for
its name or the type the browser claims, and it must fit under a size limit.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ecshop.errors import ValidationError

TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
#: a picture's file name: a SKU and one of the known extensions, never a path
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.(?:jpg|jpeg|png|webp)")
STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Picture:
    path: Path
    media: str
    etag: str


def sniff(data: bytes) -> str | None:
    """The extension the content's first bytes call for (``.jpg``, ``.png``, ``.webp``),
    or None when they are none of these."""
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return None


def check_picture(data: bytes, limit: int) -> str:
    """The extension of an uploaded picture.

    Raises:
        ValidationError: (``field="picture"``) empty, over ``limit`` bytes, or not a
            JPEG, PNG or WebP by its content.
    """
    if not data:
        raise ValidationError("the picture file is empty", field="picture")
    if len(data) > limit:
        raise ValidationError(f"the picture is over the limit of {limit // 1024} KiB",
                              field="picture", limit=limit)  # fmt: skip
    ext = sniff(data)
    if ext is None:
        raise ValidationError("the picture must be a JPEG, PNG or WebP image", field="picture")
    return ext


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

    def save(self, sku: str, data: bytes, ext: str) -> Picture:
        """Make ``data`` (checked by :func:`check_picture`) the picture of ``sku``: it
        replaces the SKU's other pictures, and a reader sees the old file or the new one,
        never half of one.

        Raises:
            ValidationError: no media folder is set, or the SKU cannot name a file.
        """
        if self.root is None:
            raise ValidationError(
                "pictures need a media folder: set ECSHOP_MEDIA_DIR", field="picture"
            )
        if not STEM.fullmatch(sku) or ext not in TYPES:
            raise ValidationError(f"no picture can be stored for sku {sku!r}", field="picture")
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / (sku + ext)
        part = self.root / f".{sku}.{secrets.token_hex(8)}.part"
        try:
            part.write_bytes(data)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        for other in TYPES:
            if other != ext:
                (self.root / (sku + other)).unlink(missing_ok=True)
        stat = target.stat()
        return Picture(target, TYPES[ext], f"{int(stat.st_mtime_ns):x}-{stat.st_size:x}")
