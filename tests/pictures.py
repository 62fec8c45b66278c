"""Real pictures for upload tests, made here: PNGs and a baseline JPEG."""

from __future__ import annotations

import struct
import zlib


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A solid-colour RGB PNG."""
    return _png(width, height, b"".join(b"\x00" + bytes(rgb) * width for _ in range(height)))


def _png(width: int, height: int, rows: bytes) -> bytes:
    """An 8-bit RGB PNG of ``rows`` (each a filter byte, then its pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


def photo(width: int = 480, height: int = 320) -> bytes:
    """A PNG that looks like something at a product's size: a green field with a pale
    disc (a tea cup seen from above)."""
    rows = []
    cx, cy, r2 = width / 2, height / 2, (min(width, height) / 3) ** 2
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            inside = (x - cx) ** 2 + (y - cy) ** 2 < r2
            row += bytes(
                (236, 232, 214) if inside else (70 + y * 60 // height, 120 + x * 60 // width, 60)
            )
        rows.append(bytes(row))
    return _png(width, height, b"".join(rows))


def _segment(marker: int, data: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(data) + 2) + data


def jpeg() -> bytes:
    """An 8×8 mid-grey baseline JPEG: one block whose coefficients are all 0, coded with
    one-symbol Huffman tables (DC category 0, AC end-of-block), so the scan is one byte."""
    one_code = bytes([1] + [0] * 15)  # one code of length 1
    return b"".join((
        b"\xff\xd8",  # SOI
        _segment(0xDB, b"\x00" + bytes([1] * 64)),  # DQT: table 0, all 1
        _segment(0xC0, b"\x08" + struct.pack(">HH", 8, 8) + b"\x01" + b"\x01\x11\x00"),  # SOF0
        _segment(0xC4, b"\x00" + one_code + b"\x00"),  # DHT: DC table 0, symbol 0
        _segment(0xC4, b"\x10" + one_code + b"\x00"),  # DHT: AC table 0, symbol EOB
        _segment(0xDA, b"\x01" + b"\x01\x00" + b"\x00\x3f\x00"),  # SOS
        b"\x3f",  # DC "0", EOB "0", padded with ones
        b"\xff\xd9",  # EOI
    ))  # fmt: skip
