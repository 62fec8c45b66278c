"""The stock engine: one interface, a Redis backend and a SQL backend.

``open_engine(config, store)`` picks Redis when ``config.redis_url`` is set, else the
SQL engine. Both implement :class:`StockEngine`; see ``DESIGN.md`` ("Stock").
"""

from __future__ import annotations

from ecshop.config import Config
from ecshop.stock._types import Levels, StockEngine
from ecshop.stock.redisengine import RedisStockEngine
from ecshop.stock.sql import SQLStockEngine
from ecshop.store import Store

__all__ = ["Levels", "RedisStockEngine", "SQLStockEngine", "StockEngine", "open_engine"]


def open_engine(config: Config, store: Store) -> RedisStockEngine | SQLStockEngine:
    """The stock engine the configuration asks for.

    Raises:
        ConfigError: the Redis may evict keys or hides its eviction policy.
    """
    if config.redis_url:
        return RedisStockEngine(store, config.redis_url)
    return SQLStockEngine(store)
