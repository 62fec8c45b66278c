from __future__ import annotations

import os
import stat
import threading
import time

import pytest

from ecshop.errors import StoreError
from ecshop.store import DuplicateKey, SchemaTooNew, StoreBusy, open_store

PRODUCT = "INSERT INTO products (sku, name, description, price, currency, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"


def _add(tx, sku, name="n", price=100):
    tx.execute(PRODUCT, (sku, name, "", price, "JPY", time.time(), time.time()))


def test_migrate_is_idempotent(db_url):
    store = open_store(db_url)
    known = [version for version, _ in store.migrations()]
    assert known[0] == 1
    assert store.migrate() == known
    assert store.migrate() == []
    assert store.schema_version() == known[-1]


def test_migrate_refuses_a_newer_schema(store):
    with store.tx() as tx:
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (99, time.time())
        )
    with pytest.raises(SchemaTooNew, match="version 99"):
        store.migrate()


def test_unicode_round_trips_byte_for_byte(store):
    name = "テスト商品 🍵 ①\u200d"
    with store.tx() as tx:
        _add(tx, "TEA", name)
    with store.read() as tx:
        assert (
            tx.scalar("SELECT name FROM products WHERE sku = ?", ("TEA",)).encode() == name.encode()
        )


def test_exception_rolls_back_everything(store):
    with pytest.raises(RuntimeError), store.tx() as tx:
        _add(tx, "A")
        _add(tx, "B")
        raise RuntimeError("boom")
    with store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM products") == 0


def test_duplicate_key_is_translated_and_rolled_back(store):
    with store.tx() as tx:
        _add(tx, "A")
    with pytest.raises(DuplicateKey), store.tx() as tx:
        _add(tx, "B")
        _add(tx, "A")
    with store.read() as tx:
        assert [r["sku"] for r in tx.query("SELECT sku FROM products ORDER BY sku")] == ["A"]


def test_nested_tx_joins_the_outer_one(store):
    with pytest.raises(RuntimeError), store.tx() as outer:
        _add(outer, "A")
        with store.tx() as inner:
            assert inner is outer
            _add(inner, "B")
        raise RuntimeError("after inner")
    with store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM products") == 0


def _defer_add(tx, sku, price=100):
    tx.defer(PRODUCT, (sku, "n", "100%? literal", price, "JPY", time.time(), time.time()))


def test_deferred_writes_commit_and_are_seen_by_later_reads(store):
    with store.tx() as tx:
        _defer_add(tx, "A")
        _defer_add(tx, "B", price=7)
        # A read in the same transaction sends what was queued first.
        assert tx.scalar("SELECT price FROM products WHERE sku = ?", ("B",)) == 7
        _defer_add(tx, "C")
        assert tx.pending == store.pipelined
    with store.read() as tx:
        rows = tx.query("SELECT sku, description FROM products ORDER BY sku")
    assert rows == [{"sku": s, "description": "100%? literal"} for s in "ABC"]


def test_a_failing_deferred_write_fails_the_commit_and_keeps_nothing(store):
    with store.tx() as tx:
        _add(tx, "TAKEN")
    with pytest.raises(DuplicateKey), store.tx() as tx:
        tx.execute("UPDATE products SET price = 1 WHERE sku = 'TAKEN'")
        _defer_add(tx, "NEW")
        _defer_add(tx, "TAKEN")  # duplicate key, found at the latest by the COMMIT
        _defer_add(tx, "AFTER")
    with store.read() as tx:
        assert tx.query("SELECT sku, price FROM products") == [{"sku": "TAKEN", "price": 100}]
    # The connection is still good for the next transaction.
    with store.tx() as tx:
        _defer_add(tx, "NEXT")
    with store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM products") == 2


def test_query_sent_ahead_answers_after_other_work(store):
    with store.tx() as tx:
        _add(tx, "A", price=5)
    with store.tx() as tx:
        rows = tx.query_soon("SELECT sku, price FROM products WHERE sku = ?", ("A",))
        # Another statement on the transaction first takes the answer off the wire.
        tx.execute("UPDATE products SET price = 6 WHERE sku = ?", ("A",))
        assert rows() == [{"sku": "A", "price": 5}]
        later = tx.query_soon("SELECT price FROM products WHERE sku = ?", ("A",))
        _defer_add(tx, "B")
        assert later() == [{"price": 6}]
        assert tx.query_soon("SELECT sku FROM products WHERE sku = 'NONE'")() == []
    with store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM products") == 2


def test_query_sent_ahead_that_fails_raises_when_read(store):
    with pytest.raises(Exception, match="nope"), store.tx() as tx:
        rows = tx.query_soon("SELECT nope FROM products")
        rows()
    with store.tx() as tx:  # the connection is usable again
        _add(tx, "A")


def test_unread_answer_does_not_block_rollback_or_commit(store):
    with pytest.raises(RuntimeError), store.tx() as tx:
        _add(tx, "GONE")
        tx.query_soon("SELECT sku FROM products")
        raise RuntimeError("the caller gave up before reading")
    with store.tx() as tx:
        _add(tx, "KEPT")
        tx.query_soon("SELECT sku FROM products")
    with store.read() as tx:
        assert [r["sku"] for r in tx.query("SELECT sku FROM products")] == ["KEPT"]


def test_a_caught_deferred_write_error_still_fails_the_commit(store):
    with store.tx() as tx:
        _add(tx, "TAKEN")
    with pytest.raises(StoreError), store.tx() as tx:
        _defer_add(tx, "FIRST")
        try:
            _defer_add(tx, "TAKEN")  # raises here (SQLite) or at the next statement (MySQL)
            _add(tx, "MINE")
        except DuplicateKey:
            pass  # a caller that swallows it must not commit half its transaction
        _add(tx, "AFTER")
    with store.read() as tx:
        assert [r["sku"] for r in tx.query("SELECT sku FROM products")] == ["TAKEN"]


def test_mysql_sends_deferred_writes_with_the_commit(mysql_url):
    store = open_store(mysql_url)
    store.migrate()
    sent = []
    real = store.run_batch

    def spy(cur, batch, then):
        sent.append((len(batch), then))
        real(cur, batch, then)

    store.run_batch = spy  # type: ignore[method-assign]
    with store.tx() as tx:
        for sku in ("A", "B", "C"):
            _defer_add(tx, sku)
    assert sent == [(3, "COMMIT")]
    with open_store(mysql_url).read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM products") == 3


def test_check_constraints_hold(store):
    with pytest.raises(Exception), store.tx() as tx:
        _add(tx, "NEG", price=-1)
    with store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM products") == 0


def test_lock_wait_becomes_store_busy(db_url):
    setup = open_store(db_url)
    setup.migrate()
    with setup.tx() as tx:
        _add(tx, "A")
    holder = open_store(db_url, lock_timeout=1)
    waiter = open_store(db_url, lock_timeout=1)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.tx() as tx:
            tx.execute("UPDATE products SET price = 1 WHERE sku = ?", ("A",))
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(10)
    try:
        with pytest.raises(StoreBusy) as info, waiter.tx() as tx:
            tx.execute("UPDATE products SET price = 2 WHERE sku = ?", ("A",))
        assert info.value.status == 503 and info.value.retry_after
    finally:
        release.set()
        thread.join()
    with waiter.read() as tx:
        assert tx.scalar("SELECT price FROM products WHERE sku = ?", ("A",)) == 1


def test_sqlite_is_durable_and_in_wal_mode(sqlite_url):
    store = open_store(sqlite_url)
    store.migrate()
    conn = store.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_mysql_session_is_strict_and_read_committed(mysql_url):
    store = open_store(mysql_url)
    store.migrate()
    with store.read() as tx:
        mode = tx.scalar("SELECT @@SESSION.sql_mode")
        isolation = tx.scalar("SELECT @@SESSION.tx_isolation")
        engines = {
            r["engine"]
            for r in tx.query(
                "SELECT engine FROM information_schema.tables WHERE table_schema = DATABASE()"
            )
        }
        charsets = {
            r["c"]
            for r in tx.query(
                "SELECT DISTINCT character_set_name AS c FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND character_set_name IS NOT NULL"
            )
        }
    assert "STRICT_ALL_TABLES" in mode
    assert isolation == "READ-COMMITTED"
    assert engines == {"InnoDB"}
    assert charsets == {"utf8mb4"}


def _grouped_writers(store, count, work_for):
    """Start ``count`` threads each submitting ``work_for(i)``; the first holds the leader
    role until every other thread has queued, so they all land in one later batch."""
    results, errors = {}, {}
    queued = threading.Event()

    def first(tx):
        deadline = time.monotonic() + 10
        while len(store.group._queue) < count - 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        queued.set()
        return work_for(0)(tx)

    def run(i):
        try:
            results[i] = store.grouped(first if i == 0 else work_for(i))
        except Exception as exc:
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(0,))]
    threads[0].start()
    while store.group is not None and not store.group._leading:
        time.sleep(0.001)
    threads += [threading.Thread(target=run, args=(i,)) for i in range(1, count)]
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(30)
    assert queued.is_set()
    return results, errors


def test_group_commit_shares_commits_and_each_write_is_durable_on_return(db_url):
    store = open_store(db_url, group_commit=True)
    store.migrate()
    durable_at_return = {}
    other = open_store(db_url)

    def work_for(i):
        def work(tx):
            _add(tx, f"G{i}", price=100 + i)
            return i

        return work

    results, errors = _grouped_writers(store, 12, work_for)
    assert errors == {} and results == {i: i for i in range(12)}
    # Two commits for twelve writes: the leader's own batch, then everyone queued behind it.
    assert (store.group.batches, store.group.items) == (2, 12)
    with other.read() as tx:
        for i in range(12):
            durable_at_return[i] = tx.scalar("SELECT price FROM products WHERE sku = ?", (f"G{i}",))
    assert durable_at_return == {i: 100 + i for i in range(12)}


@pytest.fixture
def grouped_store(db_url):
    """A store with group commit on and one product, TAKEN, already there."""
    store = open_store(db_url, group_commit=True)
    store.migrate()
    with store.tx() as tx:
        _add(tx, "TAKEN")
    return store


def test_group_commit_rolls_back_only_the_piece_that_failed(grouped_store, db_url):
    store = grouped_store

    def work_for(i):
        def work(tx):
            _add(tx, f"OK{i}")
            if i % 3 == 1:
                tx.execute("UPDATE products SET price = 1 WHERE sku = 'TAKEN'")
                _add(tx, "TAKEN")  # duplicate key: this piece fails after writing
            if i % 3 == 2:
                _defer_add(tx, f"LATE{i}")
                _defer_add(tx, "TAKEN")  # the same, from a deferred write
            return i

        return work

    results, errors = _grouped_writers(store, 9, work_for)
    assert set(errors) == {1, 2, 4, 5, 7, 8}
    assert all(isinstance(e, DuplicateKey) for e in errors.values())
    assert set(results) == {0, 3, 6}
    with open_store(db_url).read() as tx:
        skus = {r["sku"] for r in tx.query("SELECT sku FROM products")}
        assert tx.scalar("SELECT price FROM products WHERE sku = 'TAKEN'") == 100
    assert skus == {"TAKEN"} | {f"OK{i}" for i in (0, 3, 6)}


def test_group_commit_piece_that_fails_after_deferring_a_bad_write_fails_alone(
    grouped_store, db_url
):
    store = grouped_store

    def work_for(i):
        def work(tx):
            _add(tx, f"OK{i}")
            if i == 1:
                try:
                    _defer_add(tx, "TAKEN")  # queued on MySQL, raised at once on SQLite
                except DuplicateKey:
                    pass
                raise ValueError("this piece gives up")
            return i

        return work

    results, errors = _grouped_writers(store, 3, work_for)
    assert results == {0: 0, 2: 2} and list(errors) == [1]
    assert isinstance(errors[1], ValueError)
    with open_store(db_url).read() as tx:
        skus = {r["sku"] for r in tx.query("SELECT sku FROM products")}
    assert skus == {"TAKEN", "OK0", "OK2"}


def test_sqlite_writer_lock_is_freed_when_its_holder_is_killed(sqlite_url):
    import signal
    import subprocess
    import sys

    store = open_store(sqlite_url, lock_timeout=5)
    store.migrate()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom ecshop.store import open_store\n"
         "s = open_store(sys.argv[1])\n"
         "with s.tx() as tx:\n"
         "    tx.execute(\"INSERT INTO settings (name, value, updated_at) VALUES ('x', 'held', 0)\")\n"
         "    print('locked', flush=True)\n"
         "    time.sleep(60)\n", sqlite_url],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = open_store(sqlite_url, lock_timeout=1)
        with pytest.raises(StoreBusy), busy.tx() as tx:
            _add(tx, "WAIT")
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with store.tx() as tx:
            _add(tx, "AFTER")
    finally:
        holder.kill()
        holder.wait()
    with store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM products WHERE sku = 'AFTER'") == 1
        assert tx.scalar("SELECT COUNT(*) FROM settings WHERE name = 'x'") == 0


def test_sqlite_files_and_folder_are_private(tmp_path):
    old = os.umask(0o022)
    try:
        store = open_store(f"sqlite:///{tmp_path}/data/shop.db")
        store.migrate()
        with store.tx() as tx:
            _add(tx, "TEA")
        names = ("shop.db", "shop.db-wal", "shop.db-shm")
        modes = {name: stat.S_IMODE(os.stat(tmp_path / "data" / name).st_mode) for name in names}
        assert modes == dict.fromkeys(names, 0o600)
        assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700
        store.close()
    finally:
        os.umask(old)


def test_a_connection_error_does_not_show_the_password():
    pytest.importorskip("MySQLdb")
    from ecshop.testing.servers import free_port

    store = open_store(f"mysql://shop:p@ss:w0rd@127.0.0.1:{free_port()}/shop")
    assert store.describe() == f"mysql://shop:***@127.0.0.1:{store.args['port']}/shop"
    with pytest.raises(StoreBusy) as info:
        store.server_version()
    assert "p@ss" not in str(info.value) and "w0rd" not in str(info.value)
    assert "shop:***@127.0.0.1" in str(info.value)


def _locked_by_another_process(path: str) -> bool:
    """Whether some process holds SQLite's shared lock on the database file."""
    import subprocess
    import sys

    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n"
        "    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002)\n"
        "except OSError:\n"
        "    sys.exit(3)\n"
    )
    return subprocess.run([sys.executable, "-c", probe, path]).returncode == 3


def test_a_second_connection_keeps_the_first_ones_lock(sqlite_url):
    """Opening the database file for another connection of the same process must not
    drop SQLite's locks (closing any descriptor of a file drops all of a process's
    POSIX locks on it): a process that then took itself for the last user would remove
    the WAL under the others and leave them reading an old snapshot."""
    path = sqlite_url[len("sqlite:///") :]
    store = open_store(sqlite_url)
    store.migrate()
    assert store.schema_version() > 0  # this thread's connection, holding its lock
    assert _locked_by_another_process(path)
    thread = threading.Thread(target=store.schema_version)  # a connection of its own
    thread.start()
    thread.join()
    assert _locked_by_another_process(path)
    store.close()
