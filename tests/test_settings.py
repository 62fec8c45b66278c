"""Declared settings: typed, checked and converted once; problems name the variable
and never show a secret."""

from __future__ import annotations

import pytest

from ecshop.settings import Setting, describe, resolve

PREFIX = "ECSHOP_PLUGIN_GIFT_"
DECLARED = (
    Setting("price", int, default=300, minimum=0),
    Setting("ratio", float, maximum=1),
    Setting("wrap", bool, default=False),
    Setting("hook", "url"),
    Setting("paper", "choice", choices=("plain", "floral"), default="plain"),
    Setting("key", required=True, secret=True, help="the service's key"),
    Setting("note"),
)
KEY = "k" * 32


def test_values_are_converted_to_their_types_and_defaults_fill_the_rest():
    resolved = resolve(DECLARED, {"price": " 250 ", "ratio": "0.5", "wrap": "yes",
                                  "hook": "https://x.example/h", "key": KEY, "extra": "kept"}, PREFIX)  # fmt: skip
    assert resolved.problems == []
    assert resolved.values == {"price": 250, "ratio": 0.5, "wrap": True, "paper": "plain",
                               "hook": "https://x.example/h", "key": KEY, "extra": "kept"}  # fmt: skip
    assert "note" not in resolved.values  # no default: absent, read with .get


@pytest.mark.parametrize(("key", "raw", "problem"), [
    ("price", "abc", "ECSHOP_PLUGIN_GIFT_PRICE='abc': must be a whole number"),
    ("price", "-1", "ECSHOP_PLUGIN_GIFT_PRICE='-1': must be at least 0"),
    ("ratio", "nan", "ECSHOP_PLUGIN_GIFT_RATIO='nan': must be a finite number"),
    ("ratio", "2", "ECSHOP_PLUGIN_GIFT_RATIO='2': must be at most 1"),
    ("wrap", "maybe", "ECSHOP_PLUGIN_GIFT_WRAP='maybe': must be 1/0, true/false, yes/no or on/off"),
    ("hook", "ftp://x", "ECSHOP_PLUGIN_GIFT_HOOK='ftp://x': must be an http:// or https:// URL"),
    ("paper", "gold", "ECSHOP_PLUGIN_GIFT_PAPER='gold': must be one of plain, floral"),
])  # fmt: skip
def test_a_bad_value_is_a_problem_naming_the_variable(key, raw, problem):
    resolved = resolve(DECLARED, {key: raw, "key": KEY}, PREFIX)
    assert resolved.problems == [problem]


def test_a_required_setting_unset_or_blank_is_a_problem():
    for raw in ({}, {"key": "  "}):
        problems = resolve(DECLARED, raw, PREFIX).problems
        assert problems == ["ECSHOP_PLUGIN_GIFT_KEY is not set (a secret of at least 32 bytes)"]


def test_a_short_secret_is_refused_without_showing_it():
    short = "hunter2-hunter2"
    resolved = resolve(DECLARED, {"key": short}, PREFIX)
    assert resolved.problems == ["ECSHOP_PLUGIN_GIFT_KEY is shorter than 32 bytes"]
    line = describe(DECLARED[5], {"key": short}, PREFIX)
    assert short not in line and "set ***" in line


def test_describe_shows_type_state_default_and_help():
    assert describe(DECLARED[0], {}, PREFIX) == "ECSHOP_PLUGIN_GIFT_PRICE  int  unset  default 300"
    assert describe(DECLARED[0], {"price": "9"}, PREFIX).startswith(
        "ECSHOP_PLUGIN_GIFT_PRICE  int  set '9'  default 300")  # fmt: skip
    assert describe(DECLARED[5], {}, PREFIX) == (
        "ECSHOP_PLUGIN_GIFT_KEY  str  required  secret  unset  — the service's key")  # fmt: skip


@pytest.mark.parametrize("kwargs", [{"name": "x", "type": "date"}, {"name": "Bad"},
                                    {"name": "x", "type": "choice"}])  # fmt: skip
def test_a_malformed_declaration_is_refused(kwargs):
    with pytest.raises(ValueError):
        Setting(**kwargs)


def test_options_after_the_type_are_keywords_only():
    with pytest.raises(TypeError):
        Setting("price", int, 300)  # type: ignore[misc]
