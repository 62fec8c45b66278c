"""Benchmark fixtures: throwaway servers, like the tests', started once per session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecshop.testing.servers import MariaDBServer, RedisServer


@pytest.fixture(scope="session")
def bench_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def bench_mariadb() -> Iterator[MariaDBServer]:
    server = MariaDBServer().start()
    yield server
    server.cleanup()
