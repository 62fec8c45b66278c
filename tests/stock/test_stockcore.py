"""Parity of the compiled stock core and its pure-Python twin, on a real Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import redis

from ecshop import _stockcore_py, stockcore
from ecshop.errors import ConfigError, ValidationError
from ecshop.stock.scripts import load_scripts

try:
    from ecshop import _stockcore  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - only without a compiler
    _stockcore = None

MODULES = [pytest.param(_stockcore_py, id="py")]
if _stockcore is not None:
    MODULES.append(pytest.param(_stockcore, id="compiled"))
EPOCH = "p:{stock}:" + _stockcore_py.EPOCH_KEY


@pytest.fixture(params=MODULES)
def mod(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def link(mod: ModuleType, redis_url: str) -> Iterator[Any]:
    lk = mod.StockLink(redis_url, "p:{stock}:", load_scripts(), timeout=5.0)
    yield lk
    lk.close()


def test_the_live_core_follows_the_switch() -> None:
    forced = os.environ.get("ECSHOP_PUREPYTHON") == "1"
    if forced or _stockcore is None:
        assert stockcore.core is _stockcore_py
    else:
        assert stockcore.core is _stockcore
        assert stockcore.core.COMPILED is True
    assert "stockcore" in stockcore.describe()


def test_compiled_core_takes_its_constants_from_the_twin() -> None:
    if _stockcore is None:
        pytest.skip("the compiled core is not built")
    for name in ("EPOCH_KEY", "MAX_LINES", "MAX_QTY", "MAX_SKU_LEN", "ReplyError", "LinkError"):
        assert getattr(_stockcore, name) is getattr(_stockcore_py, name)


GOOD = [
    [("B", 1), ("A", 2), ("B", 3)],
    [("Z", 10_000)],
    [(f"S{i:03}", 1) for i in range(100)],
    (("x", 1), ("w", 2)),
]
BAD = [
    [],
    [("A", 0)],
    [("A", -1)],
    [("A", 1.5)],
    [("A", True)],
    [("A", "1")],
    [("", 1)],
    [("A" * 65, 1)],
    [(b"A", 1)],
    [("A", 10_001)],
    [("A", 6000), ("A", 6000)],
    [(f"S{i:03}", 1) for i in range(101)],
]


@pytest.mark.parametrize("lines", GOOD)
def test_canonicalize_same_result(mod: ModuleType, lines: Any) -> None:
    lines = list(lines)
    assert mod.canonicalize_lines(lines) == _stockcore_py.canonicalize_lines(lines)


@pytest.mark.parametrize("lines", BAD)
def test_canonicalize_same_errors(mod: ModuleType, lines: Any) -> None:
    with pytest.raises(ValidationError) as got:
        mod.canonicalize_lines(lines)
    with pytest.raises(ValidationError) as want:
        _stockcore_py.canonicalize_lines(lines)
    assert got.value.message == want.value.message


def test_canonicalize_refuses_a_str_subclass(mod: ModuleType) -> None:
    class Sku(str):
        pass

    with pytest.raises(ValidationError):
        mod.canonicalize_lines([(Sku("A"), 1)])


def test_encode_command(mod: ModuleType) -> None:
    encoded = mod.encode_command([b"SET", "ключ", 42])
    assert encoded == b"*3\r\n$3\r\nSET\r\n$8\r\n\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\r\n$2\r\n42\r\n"


def test_replies_have_the_same_shape(link: Any, redis_url: str) -> None:
    assert link.command("SET", "k", "v") == b"OK"
    assert link.command("GET", "k") == b"v"
    assert link.command("GET", "missing") is None
    assert link.command("INCRBY", "n", -5) == -5
    assert link.command("HSET", "h", "", "x", "a", "1") == 2
    assert sorted(link.command("HGETALL", "h")) == [b"", b"1", b"a", b"x"]
    assert link.command("LRANGE", "missing", 0, -1) == []
    big = "x" * 200_000
    link.command("SET", "big", big)
    assert link.command("GET", "big") == big.encode()
    with pytest.raises(_stockcore_py.ReplyError, match="WRONGTYPE"):
        link.command("HGET", "k", "f")
    assert link.command("PING") == b"PONG"  # the connection survived the error


def test_scripts_reload_after_script_flush(link: Any) -> None:
    keys = [EPOCH, "p:{stock}:s:A"]
    assert link.script("adjust", keys, [5, 1]) == [2]  # no epoch yet
    link.command("SET", EPOCH, "1")
    assert link.script("adjust", keys, [5, 1]) == [0, 5]
    link.command("SCRIPT", "FLUSH")
    assert link.script("adjust", keys, [-2, 0]) == [0, 3]
    with pytest.raises(_stockcore_py.ReplyError):
        link.script("adjust", [EPOCH, EPOCH], [1, 0])


def test_reserve_and_hold_calls_agree(mod: ModuleType, redis_url: str) -> None:
    """Both cores drive the same scripts to the same replies and the same data."""
    dumps = []
    for core in (_stockcore_py, mod):
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        lk = core.StockLink(redis_url, "p:{stock}:", load_scripts())
        lk.command("SET", EPOCH, "1")
        for sku, n in (("A", 3), ("B", 1)):
            lk.script("adjust", [EPOCH, f"p:{{stock}}:s:{sku}"], [n, 1])
        replies = [
            lk.reserve("t1", [("B", 1), ("A", 2)], 60_000),
            lk.reserve("t1", [("B", 1), ("A", 2)], 60_000),
            lk.reserve("t2", [("A", 2), ("B", 1)], 60_000),
            lk.reserve("t3", [("C", 1)], 60_000),
            lk.hold_call("commit", "t1"),
            lk.hold_call("release", "t1", "h"),
            lk.hold_call("ship", "t1"),
            lk.hold_call("commit", "nope"),
        ]
        dumps.append((replies, sorted(k for k in client.keys("*"))))
        lk.close()
        client.close()
    assert dumps[0] == dumps[1]
    assert dumps[0][0][:4] == [[0, 0, 1], [0, 0, 0], [1, 0, b"A", 2, 1, b"B", 1, 0], [3, b"C"]]


def test_link_errors(mod: ModuleType) -> None:
    with pytest.raises(ConfigError):
        mod.StockLink("http://localhost", "p:", load_scripts())
    lk = mod.StockLink("redis://127.0.0.1:1/0", "p:", load_scripts(), timeout=0.5)
    with pytest.raises(_stockcore_py.LinkError):
        lk.command("PING")


def test_unix_socket_and_db_number(mod: ModuleType, redis_server: Any) -> None:
    if redis_server is None:
        pytest.skip("ECSHOP_TEST_REDIS_URL is set: no private socket to use")
    url = redis_server.unix_url.replace("db=0", "db=3")
    lk = mod.StockLink(url, "p:", load_scripts())
    lk.command("SET", "where", "db3")
    lk.close()
    assert redis.Redis.from_url(url).get("where") == b"db3"
    assert redis.Redis.from_url(redis_server.url).get("where") is None


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("redis://127.0.0.1:7000/2", dict(host="127.0.0.1", port=7000, db=2)),
        ("redis://:pw@h", dict(host="h", port=6379, password="pw")),
        ("rediss://u:p@h:1/0", dict(username="u", password="p", tls=True)),
        ("unix:///run/r.sock?db=4", dict(path="/run/r.sock", db=4)),
    ],
)
def test_parse_redis_url(url: str, want: dict[str, Any]) -> None:
    got = _stockcore_py.parse_redis_url(url)
    for key, value in want.items():
        assert getattr(got, key) == value


def test_fork_reconnects(mod: ModuleType, redis_url: str) -> None:
    lk = mod.StockLink(redis_url, "p:", load_scripts())
    lk.command("SET", "k", "parent")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            ok = lk.command("INCR", "forked") == 1
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lk.command("GET", "k") == b"parent"
    lk.close()


@pytest.mark.parametrize("lines", [[("B", 2), ("A", 1), ("B", 1)], [("Ü-1", 10_000)]])
def test_reserve_request_bytes_are_the_same(mod: ModuleType, lines: Any) -> None:
    args = ("tök", lines, 900_000)
    ours = mod.StockLink("redis://127.0.0.1:1/0", "p:{s}:", load_scripts()).reserve_request(*args)
    twin = _stockcore_py.StockLink("redis://127.0.0.1:1/0", "p:{s}:", load_scripts())
    assert ours == twin.reserve_request(*args)
    parts = 9 + 3 * len(mod.canonicalize_lines(lines))
    assert ours.startswith(b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n" % parts)
