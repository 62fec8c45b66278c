"""The order store: one small interface over SQLite and MySQL/MariaDB.

SQL in ecshop is written once with ``?`` placeholders; the MySQL dialect rewrites them.
Rows come back as dicts. Every write happens inside :meth:`Store.tx`, which commits on
success and rolls back on any exception, so a failure never leaves half a change.

Example::

    store = open_store("sqlite:///shop.db")
    store.migrate()
    with store.tx() as tx:
        tx.execute("UPDATE stock SET on_hand = on_hand + ? WHERE sku = ?", (5, "TEA"))
"""

from __future__ import annotations

from ecshop.redact import mask
from ecshop.store._base import DuplicateKey, SchemaTooNew, Store, StoreBusy, Tx

__all__ = ["DuplicateKey", "SchemaTooNew", "Store", "StoreBusy", "Tx", "open_store"]


def open_store(url: str, *, lock_timeout: int = 5, group_commit: bool = False) -> Store:
    """Open the store named by ``url`` (``sqlite:///path`` or ``mysql://user:pw@host/db``).

    Connections are opened lazily, one per thread and process, so a store made before
    gunicorn forks its workers is safe to use in each of them. ``group_commit`` makes
    :meth:`Store.grouped` share one commit between concurrent threads.
    """
    if url.startswith("sqlite:///"):
        from ecshop.store._sqlite import SQLiteStore

        return SQLiteStore(url, lock_timeout=lock_timeout, group_commit=group_commit)
    if url.startswith(("mysql://", "mariadb://")):
        from ecshop.store._mysql import MySQLStore

        return MySQLStore(url, lock_timeout=lock_timeout, group_commit=group_commit)
    raise ValueError(mask(f"unsupported database URL: {url!r}"))
