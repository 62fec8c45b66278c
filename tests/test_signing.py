"""Short-lived signed values: valid for their subject and purpose until they expire."""

from __future__ import annotations

import pytest

from ecshop.errors import ConfigError
from ecshop.signing import RETURN_LINK_MARGIN, Signer, return_links

KEY = "k" * 32


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_value_is_valid_for_its_subject_until_it_expires():
    clock = Clock()
    signer = Signer(KEY, purpose="test", ttl=60, clock=clock)
    value = signer.sign("ORDER-1")
    assert signer.verify("ORDER-1", value)
    clock.now += 59
    assert signer.verify("ORDER-1", value)
    clock.now += 1
    assert not signer.verify("ORDER-1", value)


def test_another_subject_purpose_or_key_is_refused():
    clock = Clock()
    value = Signer(KEY, purpose="test", ttl=60, clock=clock).sign("ORDER-1")
    assert not Signer(KEY, purpose="test", ttl=60, clock=clock).verify("ORDER-2", value)
    assert not Signer(KEY, purpose="other", ttl=60, clock=clock).verify("ORDER-1", value)
    assert not Signer("x" * 32, purpose="test", ttl=60, clock=clock).verify("ORDER-1", value)


def test_tampered_and_malformed_values_are_refused():
    clock = Clock()
    signer = Signer(KEY, purpose="test", ttl=60, clock=clock)
    value = signer.sign("ORDER-1")
    expires, _, mac = value.partition(".")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    later = f"{int(expires) + 3600}.{mac}"
    for bad in (f"{expires}.{flipped}", later, "", ".", mac, f"{expires}.", "²." + mac,
                "9" * 5000 + "." + mac, f"{expires}.{mac}é"):  # fmt: skip
        assert not signer.verify("ORDER-1", bad), bad


def test_without_a_key_nothing_is_signed_or_accepted():
    signer = Signer("", purpose="test", ttl=60)
    with pytest.raises(ConfigError, match="ECSHOP_SECRET_KEY"):
        signer.sign("ORDER-1")
    forged = Signer("", purpose="test", ttl=60)._mac("ORDER-1", 2_000_000_000)
    assert not signer.verify("ORDER-1", f"2000000000.{forged}")


def test_return_links_last_the_hold_time_and_a_day():
    clock = Clock()
    signer = return_links(KEY, 900, clock=clock)
    value = signer.sign("ORDER-1")
    assert int(value.partition(".")[0]) == int(clock.now) + 900 + RETURN_LINK_MARGIN
    clock.now += 900 + RETURN_LINK_MARGIN - 1
    assert signer.verify("ORDER-1", value)
    clock.now += 1
    assert not signer.verify("ORDER-1", value)


def test_an_explicit_expiry_gives_the_same_value_every_time():
    clock = Clock()
    signer = Signer(KEY, purpose="test", ttl=60, clock=clock)
    value = signer.sign("ORDER-1", expires=clock.now + 3600)
    clock.now += 10
    assert signer.sign("ORDER-1", expires=clock.now - 10 + 3600) == value
    assert signer.verify("ORDER-1", value)
    clock.now += 3600
    assert not signer.verify("ORDER-1", value)
