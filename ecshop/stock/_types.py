"""What both stock engines share: the levels of a SKU and the engine interface."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ecshop.errors import ValidationError

MAX_DELTA = 1_000_000_000
# The expiry (unix seconds) of a hold taken with ``ttl=None``: it never lapses by itself
# and comes back only through release() (docs/architecture.md, "Holds"). Far enough to
# never come, small enough that its value in ms is an exact double in Redis scores.
NEVER = 4.0e12


@dataclass(frozen=True)
class Levels:
    """Stock of one SKU. ``on_hand = available + held + sold_unshipped`` when consistent."""

    on_hand: int
    available: int
    held: int
    sold_unshipped: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class StockEngine(Protocol):
    """The interface both engines implement (Redis and SQL)."""

    def reserve(
        self, token: str, lines: Iterable[tuple[str, int]], *, ttl: float | None
    ) -> None: ...
    def commit(self, token: str) -> bool: ...
    def release(self, token: str) -> bool: ...
    def restock(self, ref: str, lines: Iterable[tuple[str, int]]) -> None: ...
    def ship(self, token: str, *, actor: str) -> None: ...
    def add_sku(self, sku: str, on_hand: int = 0, *, actor: str) -> None: ...
    def adjust(self, sku: str, delta: int, *, reason: str, actor: str) -> Levels: ...
    def set_on_hand(
        self, sku: str, on_hand: int, *, expected_on_hand: int, actor: str, reason: str
    ) -> Levels: ...
    def import_counts(
        self, rows: Iterable[Mapping[str, Any]], *, dry_run: bool, actor: str
    ) -> list[dict[str, Any]]: ...
    def levels(self, skus: Iterable[str] | None = None) -> dict[str, Levels]: ...
    def available(self, skus: Iterable[str]) -> dict[str, int]: ...
    def sweep(self) -> int: ...
    def orphans(self, older_than: float) -> list[str]: ...
    def audit(self) -> list[dict[str, Any]]: ...
    def rebuild(self) -> None: ...
    def needs_rebuild(self) -> bool: ...
    def close(self) -> None: ...


def check_ttl(ttl: float | None) -> float | None:
    """A hold's time to live in seconds, or None for a hold that lasts until released."""
    if ttl is None:
        return None
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 0 < ttl <= 366 * 86400:
        raise ValidationError("ttl must be a positive number of seconds", field="ttl")
    return float(ttl)


def check_token(token: str) -> str:
    if not isinstance(token, str) or not 0 < len(token) <= 64:
        raise ValidationError("token must be a string of 1 to 64 characters", field="token")
    return token


def check_count(value: Any, name: str, *, signed: bool = False) -> int:
    """An integer count (``signed``: any non-zero delta; else zero or more)."""
    if type(value) is not int or abs(value) > MAX_DELTA:
        raise ValidationError(f"{name} must be an integer", field=name)
    if signed and value == 0:
        raise ValidationError(f"{name} must not be zero", field=name)
    if not signed and value < 0:
        raise ValidationError(f"{name} must be zero or more", field=name)
    return value


def check_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValidationError(
            f"{name} must be a non-empty text of at most 200 characters", field=name
        )
    return value.strip()
