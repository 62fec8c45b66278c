from __future__ import annotations

import pytest

from ecshop.config import check_serving, load_config
from ecshop.errors import ConfigError
from ecshop.redact import mask


def test_defaults_are_the_embedded_shop(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ecshop.toml here
    config = load_config({})
    assert config.database_url.startswith("sqlite:///")
    assert config.redis_url == ""
    assert config.hold_ttl == 900
    assert config.reconcile_grace == 120
    assert config.max_body == 1024 * 1024
    assert config.admin_token == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ECSHOP_HOLD_TTL", "soon"),
        ("ECSHOP_HOLD_TTL", "-5"),
        ("ECSHOP_DATABASE_URL", "postgres://x"),
        ("ECSHOP_REDIS_URL", "http://x"),
        ("ECSHOP_REDIS_URL", "redis+sentinel://h1:26379,h2:26379"),
        ("ECSHOP_REDIS_URL", "redis+sentinel://h1:x/shop"),
        ("ECSHOP_REDIS_URL", "redis+sentinel://h1,/shop"),
        ("ECSHOP_REDIS_URL", "redis+sentinel://h1/shop/zero"),
        ("ECSHOP_REDIS_URL", "redis+sentinel://h1/shop/0/1"),
        ("ECSHOP_REDIS_URL", "redis+sentinel://h1/shop?socket_timeout=1"),
        ("ECSHOP_REDIS_URL", "redis://cache:6379/zero"),
        ("ECSHOP_CURRENCY", "yen"),
        ("ECSHOP_PLUGINS_STRICT", "maybe"),
        ("ECSHOP_MAX_BODY", "0"),
    ],
)
def test_bad_setting_fails_with_one_line_naming_it(name, value):
    with pytest.raises(ConfigError) as info:
        load_config({name: value})
    message = str(info.value)
    assert message.startswith(name)
    assert "\n" not in message


def test_gateway_settings_are_grouped_by_name():
    config = load_config(
        {"ECSHOP_GATEWAY_SANDBOX_URL": "http://127.0.0.1:9", "ECSHOP_GATEWAY_SANDBOX_SECRET": "s3"}
    )
    assert config.gateway_settings("sandbox") == {"url": "http://127.0.0.1:9", "secret": "s3"}
    assert config.gateway_settings("other") == {}


def test_toml_file_sets_keys_and_environment_wins(tmp_path):
    path = tmp_path / "ecshop.toml"
    path.write_text(
        'hold_ttl = 60\nadmin_token = "from-file"\n[gateway.sandbox]\nsecret = "gw"\n',
        encoding="utf-8",
    )
    config = load_config({"ECSHOP_ADMIN_TOKEN": "from-env"}, toml_path=path)
    assert config.hold_ttl == 60
    assert config.admin_token == "from-env"
    assert config.gateway_settings("sandbox")["secret"] == "gw"


def test_missing_named_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="ECSHOP_CONFIG"):
        load_config({"ECSHOP_CONFIG": str(tmp_path / "missing.toml")})


def test_served_by_threads_with_a_body_deadline_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config({})
    assert config.threads >= 4 and config.body_timeout == 20
    assert config.group_commit_on  # SQLite served with threads: checkouts share commits
    assert load_config({"ECSHOP_BODY_TIMEOUT": "2.5"}).body_timeout == 2.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(ConfigError, match=r"^ECSHOP_BODY_TIMEOUT"):
            load_config({"ECSHOP_BODY_TIMEOUT": bad})


GOOD_KEY = "k" * 32


def test_serving_needs_a_secret_key_of_32_bytes():
    check_serving(load_config({"ECSHOP_SECRET_KEY": GOOD_KEY}))
    check_serving(load_config({"ECSHOP_SECRET_KEY": "é" * 16}))  # 32 bytes in UTF-8
    for key in ("", "k" * 31):
        with pytest.raises(ConfigError) as info:
            check_serving(load_config({"ECSHOP_SECRET_KEY": key}))
        message = str(info.value)
        assert message.startswith("ECSHOP_SECRET_KEY") and "\n" not in message
        assert not key or key not in message


def test_serving_refuses_a_short_admin_token_but_not_a_missing_one():
    check_serving(load_config({"ECSHOP_SECRET_KEY": GOOD_KEY, "ECSHOP_ADMIN_TOKEN": ""}))
    check_serving(load_config({"ECSHOP_SECRET_KEY": GOOD_KEY, "ECSHOP_ADMIN_TOKEN": "t" * 32}))
    with pytest.raises(ConfigError) as info:
        check_serving(load_config({"ECSHOP_SECRET_KEY": GOOD_KEY, "ECSHOP_ADMIN_TOKEN": "t0ken-31-characters-long-xxxxxx"}))  # fmt: skip
    message = str(info.value)
    assert message.startswith("ECSHOP_ADMIN_TOKEN") and "\n" not in message
    assert "t0ken" not in message


def test_a_malformed_url_is_named_without_its_password():
    with pytest.raises(ConfigError) as info:
        load_config({"ECSHOP_DATABASE_URL": "postgres://shop:p@ss@db/shop"})
    assert str(info.value).startswith("ECSHOP_DATABASE_URL") and "p@ss" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config({"ECSHOP_REDIS_URL": "http://:s3cr@t@cache:6379/0"})
    assert str(info.value).startswith("ECSHOP_REDIS_URL") and "s3cr@t" not in str(info.value)


def test_the_repr_of_a_config_shows_no_secret():
    config = load_config({
        "ECSHOP_ADMIN_TOKEN": "admin-" + "a" * 32, "ECSHOP_SECRET_KEY": "key-" + "k" * 32,
        "ECSHOP_GATEWAY_SANDBOX_SECRET": "gw-secret-value",
        "ECSHOP_DATABASE_URL": "mysql://shop:p@ss@db/shop",
    })  # fmt: skip
    shown = mask(repr(config))
    for secret in ("admin-", "key-", "gw-secret-value", "p@ss"):
        assert secret not in shown
    assert "mysql://shop:***@db/shop" in shown


def test_plugin_settings_are_grouped_by_name_and_overlapping_names_end_with_two_underscores():
    config = load_config({
        "ECSHOP_PLUGIN_GIFT_WRAP_PRICE": "250", "ECSHOP_PLUGIN_GIFT__WRAP_PAPER": "floral",
        "ECSHOP_PLUGINS_DIR": "elsewhere",
    })  # fmt: skip
    assert config.plugin_settings("gift_wrap") == {"price": "250"}
    assert config.plugin_settings("gift")["wrap_paper"] == "floral"
    assert config.plugins_dir == "elsewhere"


def test_toml_tables_of_plugins_and_gateways_lose_to_the_environment(tmp_path):
    path = tmp_path / "ecshop.toml"
    path.write_text(
        "[plugin.shipping_fee]\nfee = 700\nfree_over = 0\n"
        '[gateway.bank]\ntransfer_account = "for bank"\n[gateway.bank_transfer]\naccount = "A"\n',
        encoding="utf-8",
    )
    config = load_config({"ECSHOP_PLUGIN_SHIPPING_FEE_FEE": "800"}, toml_path=path)
    assert config.plugin_settings("shipping_fee") == {"fee": "800", "free_over": "0"}
    # a table belongs to its own name only, even where two names overlap
    assert config.gateway_settings("bank_transfer") == {"account": "A"}
    assert config.gateway_settings("bank") == {"transfer_account": "for bank"}


def test_the_unreachable_gateway_settings_are_the_shops_own():
    config = load_config({"ECSHOP_GATEWAY_UNREACHABLE_AFTER": "3600",
                          "ECSHOP_GATEWAY_UNREACHABLE_RELEASE": "1"})  # fmt: skip
    assert (config.gateway_unreachable_after, config.gateway_unreachable_release) == (3600, True)
    assert config.gateway_settings("unreachable") == {}
    assert load_config({}).gateway_unreachable_after == 86400
    with pytest.raises(ConfigError, match="ECSHOP_GATEWAY_UNREACHABLE_AFTER"):
        load_config({"ECSHOP_GATEWAY_UNREACHABLE_AFTER": "-1"})


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_db():
    from ecshop._redisurl import parse

    url = "redis+sentinel://app:pw@10.0.0.1,10.0.0.2:26380,[::1]/shop-stock/2?sentinel_password=sp"
    assert load_config({"ECSHOP_REDIS_URL": url}).redis_url == url
    address = parse(url)
    assert address.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26379))
    assert (address.service, address.db) == ("shop-stock", 2)
    assert (address.username, address.password, address.sentinel_password) == ("app", "pw", "sp")
    assert "pw" not in repr(address) and "sp" not in repr(address)
    assert parse("redis+sentinel://h/shop").db == 0


def test_a_bad_sentinel_url_hides_its_passwords():
    url = "redis+sentinel://:s3cr@t@h1/shop?sentinel_password=s3nt&nope=1"
    with pytest.raises(ConfigError) as info:
        load_config({"ECSHOP_REDIS_URL": url})
    message = str(info.value)
    assert message.startswith("ECSHOP_REDIS_URL") and "'nope'" in message
    assert "s3cr@t" not in message and "s3nt" not in message
