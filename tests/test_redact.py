"""Passwords and tokens never reach what the shop prints or logs."""

from __future__ import annotations

import logging

import pytest

from ecshop.logconf import configure_logging
from ecshop.redact import MaskingFilter, install_filter, mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mysql://u:p@ss@host/db", "mysql://u:***@host/db"),
        ("mariadb://shop:pw@db.internal:3306/shop", "mariadb://shop:***@db.internal:3306/shop"),
        ("redis://:s3cr@t@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:pw@h", "rediss://user:***@h"),
        ("redis://h:6379/0?password=hunter2&db=1", "redis://h:6379/0?password=***&db=1"),
        ("unix:///run/redis.sock?db=0&password=p@ss", "unix:///run/redis.sock?db=0&password=***"),
        ("mysql://u:pa/ss@h/db", "mysql://u:***@h/db"),
        (
            "redis+sentinel://:s3cr@t@h1:26379,h2:26379/shop/0",
            "redis+sentinel://:***@h1:26379,h2:26379/shop/0",
        ),
        (
            "redis+sentinel://h1,h2/shop?sentinel_password=p@ss",
            "redis+sentinel://h1,h2/shop?sentinel_password=***",
        ),
        ("mysql://u:pw@[::1]:3306/db", "mysql://u:***@[::1]:3306/db"),
        ("/api/v1/orders/A1?token=abcdef&x=1", "/api/v1/orders/A1?token=***&x=1"),
    ],
)
def test_mask_hides_every_url_password(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:///var/lib/ecshop/shop.db",
        "mysql://root@localhost/shop",
        "redis://127.0.0.1:6379/0",
        "GET http://shop.example:8000/search?email=a@b.example",
        "plain text with user:pw@host but no scheme",
    ],
)
def test_mask_leaves_urls_without_passwords_alone(text):
    assert mask(text) == text


def test_mask_finds_urls_inside_messages():
    message = (
        "ECSHOP_DATABASE_URL='mysql://u:p@ss@db/shop': cannot connect; "
        "stock at redis://:s3cr@t@cache:6379/0 (rediss://user:pw@h)"
    )
    masked = mask(message)
    for secret in ("p@ss", "s3cr@t", ":pw@"):
        assert secret not in masked
    assert "mysql://u:***@db/shop" in masked and "redis://:***@cache:6379/0" in masked


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("ecshop.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_filter_masks_arguments_and_tracebacks():
    try:
        raise ConnectionError("cannot reach mysql://u:p@ss@db/shop")
    except ConnectionError as exc:
        record = _record("Redis at %s is down", "redis://:s3cr@t@cache:6379/0", exc=exc)
    assert MaskingFilter().filter(record) is True
    line = logging.Formatter().format(record)
    assert "s3cr@t" not in line and "p@ss" not in line
    assert "redis://:***@cache:6379/0" in line and "mysql://u:***@db/shop" in line


def test_logging_setup_puts_the_filter_on_every_handler(monkeypatch):
    logger = logging.getLogger("ecshop")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    configure_logging()
    [handler] = logger.handlers
    assert any(isinstance(f, MaskingFilter) for f in handler.filters)
    install_filter(logger)  # idempotent
    assert sum(isinstance(f, MaskingFilter) for f in handler.filters) == 1
