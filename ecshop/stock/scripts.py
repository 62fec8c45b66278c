"""The Lua sources of the Redis engine, each prefixed with the shared helpers."""

from __future__ import annotations

from functools import cache
from importlib import resources

NAMES = ("reserve", "commit", "release", "ship", "adjust", "sweep", "verify", "seal", "fence")


def _read(name: str) -> str:
    return (resources.files("ecshop.stock") / "lua" / f"{name}.lua").read_text("utf-8")


@cache
def load_scripts() -> dict[str, str]:
    """Every stock script by name, ready for ``SCRIPT LOAD`` (``lib.lua`` + the script)."""
    lib = _read("lib")
    return {name: f"{lib}\n{_read(name)}" for name in NAMES}
