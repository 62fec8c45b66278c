"""Server-side sessions: signed ids, expiry, the CSRF token, cycling at login, sweeping."""

from __future__ import annotations

import pytest

from ecshop.sessions import SessionStore
from ecshop.store import open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sessions(db_url):
    store = open_store(db_url)
    store.migrate()
    clock = Clock()
    yield SessionStore(store, "s" * 32, ttl=3600, clock=clock), clock
    store.close()


def test_a_saved_session_comes_back_by_its_signed_cookie_only(sessions):
    store, _ = sessions
    session = store.new()
    assert len(session.id) == 32 and int(session.id, 16) >= 0  # 128 random bits
    session.set("cart", {"TEA": 2})
    store.save(session)
    cookie = store.cookie_value(session)
    loaded = store.load(cookie)
    assert loaded is not None and loaded.get("cart") == {"TEA": 2}
    assert loaded.csrf_token == session.csrf_token and not loaded.new
    sid, _, mac = cookie.partition(".")
    forged = [f"{sid}.{'0' * 64}", sid, f"{'f' * 32}.{mac}", "", "x" * 500, f"{sid}.{mac}.x"]
    assert [store.load(value) for value in forged] == [None] * len(forged)
    other_key = SessionStore(store.store, "t" * 32, ttl=3600)
    assert other_key.load(cookie) is None


def test_sessions_expire_and_are_swept(sessions):
    store, clock = sessions
    session = store.new()
    store.save(session)
    cookie = store.cookie_value(session)
    clock.now += 3599
    assert store.load(cookie) is not None
    clock.now += 2
    expired = store.load(cookie)
    assert expired is not None and expired.new and expired.data == {}  # it starts empty
    assert store.sweep() == 1


def test_the_csrf_token_is_the_sessions_own(sessions):
    store, _ = sessions
    one, two = store.new(), store.new()
    assert one.csrf_ok(one.csrf_token)
    assert not one.csrf_ok(two.csrf_token) and not one.csrf_ok("") and not one.csrf_ok(None)


def test_cycle_keeps_the_data_under_a_new_id(sessions):
    store, _ = sessions
    session = store.new()
    session.set("cart", {"TEA": 1})
    store.save(session)
    old_cookie = store.cookie_value(session)
    fresh = store.cycle(session)
    assert fresh.id != session.id and fresh.csrf_token != session.csrf_token
    assert store.load(old_cookie).data == {}
    assert store.load(store.cookie_value(fresh)).get("cart") == {"TEA": 1}


def test_a_visitor_who_only_browses_has_a_working_token_and_no_row(sessions):
    store, _ = sessions
    visitor = store.new()
    assert not store.needs_save(visitor)
    again = store.load(store.cookie_value(visitor))  # the next request, same cookie
    assert again is not None and again.csrf_ok(visitor.csrf_token)
    with store.store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM sessions") == 0
    again.set("cart", {"TEA": 1})
    assert store.needs_save(again)
    store.save(again)
    with store.store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM sessions") == 1
