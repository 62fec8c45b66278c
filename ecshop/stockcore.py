"""Picks the stock core: the compiled ``_stockcore`` unless missing or switched off.

``ECSHOP_PUREPYTHON=1`` forces the pure-Python twin (``_stockcore_py``).
"""

from __future__ import annotations

from types import ModuleType

from ecshop import _stockcore_py
from ecshop.config import purepython_forced


def _load() -> ModuleType:
    if purepython_forced():
        return _stockcore_py
    try:
        from ecshop import _stockcore  # type: ignore[attr-defined]
    except ImportError:
        return _stockcore_py
    return _stockcore


core: ModuleType = _load()
"""The live stock core module."""


def describe() -> str:
    """Which core is live, for ``ecshop info``."""
    kind = "compiled" if getattr(core, "COMPILED", False) else "pure-python"
    return f"{core.__name__} ({kind}) from {core.__file__}"
