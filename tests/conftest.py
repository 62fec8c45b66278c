"""Shared fixtures: throwaway Redis and MariaDB servers, stores on both dialects.

Servers come from ``ECSHOP_TEST_REDIS_URL`` / ``ECSHOP_TEST_MYSQL_URL`` when set,
otherwise a private ``redis-server`` / ``mariadbd`` is started in a temp dir. Where the
binary is missing the test is skipped with what to install; ``ECSHOP_REQUIRE_SERVICES=1``
turns those skips into failures.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from ecshop.store import Store, open_store
from ecshop.testing.sentinel import SentinelGroup
from ecshop.testing.servers import MariaDBServer, RedisServer, ServerUnavailable

REQUIRE_SERVICES = os.environ.get("ECSHOP_REQUIRE_SERVICES") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (ECSHOP_REQUIRE_SERVICES=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("ECSHOP_REQUIRE_EXTENSION") == "1":
        import ecshop._stockcore as core

        if not str(core.__file__).endswith((".so", ".pyd")):
            raise pytest.UsageError(
                f"ECSHOP_REQUIRE_EXTENSION=1 but ecshop._stockcore is not compiled: {core.__file__}"
            )


# -- Redis ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    """A private redis-server for the session (None when ECSHOP_TEST_REDIS_URL is used)."""
    if os.environ.get("ECSHOP_TEST_REDIS_URL"):
        yield None
        return
    server = RedisServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        server.cleanup()
        _unavailable(str(exc))
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server: RedisServer | None) -> str:
    """A Redis URL with an empty database for this test."""
    import redis

    url = os.environ.get("ECSHOP_TEST_REDIS_URL") or (redis_server.url if redis_server else "")
    if redis_server is not None and redis_server.proc is None:
        redis_server.start()  # a test stopped it
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {url} does not answer: {exc}")
    finally:
        client.close()
    return url


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that stop, restart or break it."""
    server = RedisServer(directory=tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    yield server
    server.cleanup()


def wait_synced(replica: RedisServer, timeout: float = 30) -> None:
    """Wait until the replica's link to its primary is up (the first sync done)."""
    import time

    import redis

    deadline = time.monotonic() + timeout
    with redis.Redis.from_url(replica.url) as client:
        while client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.05)


@pytest.fixture
def redis_pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A redis-server and its replica, of this test's own."""
    primary = RedisServer(directory=tmp_path_factory.mktemp("primary"))
    replica = RedisServer(directory=tmp_path_factory.mktemp("replica"))
    try:
        primary.start()
        replica.extra_args = ("--replicaof", "127.0.0.1", str(primary.port))
        replica.start()
    except ServerUnavailable as exc:
        primary.cleanup()
        replica.cleanup()
        _unavailable(str(exc))
    wait_synced(replica)
    yield primary, replica
    replica.cleanup()
    primary.cleanup()


@pytest.fixture
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SentinelGroup]]:
    """``sentinels(count=3)``: a primary, its replica and ``count`` Sentinels watching
    them (``.url`` is their ``redis+sentinel://`` URL), stopped after the test."""
    import shutil

    groups: list[SentinelGroup] = []

    def start(count: int = 3) -> SentinelGroup:
        if shutil.which("redis-server") is None:  # Sentinel is redis-server --sentinel
            _unavailable("redis-server not found: install it (apt-get install redis-server)")
        group = SentinelGroup(count=count, directory=tmp_path_factory.mktemp("sentinel"))
        groups.append(group)
        return group.start()

    yield start
    for group in groups:
        group.cleanup()


# -- MariaDB -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer | None]:
    if os.environ.get("ECSHOP_TEST_MYSQL_URL"):
        yield None
        return
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        _unavailable(
            "mysqlclient is not installed: pip install 'ecshop[mysql]' (needs libmariadb-dev)"
        )
    server = MariaDBServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        server.cleanup()
        _unavailable(str(exc))
    yield server
    server.cleanup()


def _server_url(base: str, database: str) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


@pytest.fixture
def mysql_url(mariadb_server: MariaDBServer | None) -> Iterator[str]:
    """A URL to a fresh, empty MariaDB database, dropped after the test."""
    import MySQLdb

    base = os.environ.get("ECSHOP_TEST_MYSQL_URL") or (
        mariadb_server.url() if mariadb_server else ""
    )
    name = f"ecshop_t_{uuid.uuid4().hex[:12]}"
    from ecshop.store._mysql import connect_args

    args = connect_args(base)
    args.pop("db")
    try:
        conn = MySQLdb.connect(**args)
    except MySQLdb.Error as exc:
        _unavailable(f"MariaDB at {base} does not answer: {exc}")
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    conn.commit()
    yield _server_url(base, name)
    cur.execute(f"DROP DATABASE IF EXISTS {name}")
    conn.commit()
    conn.close()


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{tmp_path}/shop.db"


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database, once on SQLite and once on MariaDB."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("mysql_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store, once on SQLite and once on MariaDB."""
    s = open_store(db_url)
    s.migrate()
    yield s
    s.close()


# -- metrics -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of ``promtool`` (Prometheus's checker of the metrics text format)."""
    import shutil

    found = shutil.which("promtool")
    if not found:
        _unavailable("promtool is not installed: apt-get install prometheus")
    return str(found)


@pytest.fixture
def counted() -> Callable[..., float]:
    """How much one sample of this process's metrics grew since the test began:
    ``counted("ecshop_stock_holds_total", event="granted")``."""
    from ecshop.metrics import REGISTRY

    def snapshot() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in REGISTRY.collect() for s in family.samples}  # fmt: skip

    start = snapshot()

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return snapshot().get(key, 0.0) - start.get(key, 0.0)

    return grew


# -- CI: a skipped test is a failure when services are required ------------------------
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE_SERVICES and _skipped and exitstatus == 0:
        print(
            f"\nECSHOP_REQUIRE_SERVICES=1: {len(_skipped)} test(s) skipped, which CI counts as failure:"
        )
        for nodeid in _skipped[:20]:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
