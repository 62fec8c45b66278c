"""Member accounts and login throttling on SQLite and MariaDB: argon2id hashes, the
sliding window, concurrent guesses from several processes, reset tokens."""

from __future__ import annotations

import multiprocessing

import pytest
from argon2 import PasswordHasher

from ecshop.errors import ValidationError
from ecshop.members import EmailTaken, LoginFailed, Members, ResetLinkInvalid
from ecshop.store import open_store
from ecshop.throttle import LoginThrottled, Throttle, key

# NOTE: small argon2 parameters keep the many hashes of these tests quick; the shop uses
# argon2-cffi's defaults.
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def accounts(db_url):
    store = open_store(db_url)
    store.migrate()
    clock = Clock()
    members = Members(store, Throttle(store, clock=clock), clock=clock,
                      hasher=PasswordHasher(**FAST))  # fmt: skip
    yield members, clock
    store.close()


def test_passwords_are_argon2id_and_emails_are_one_account_whatever_the_case(accounts):
    members, _ = accounts
    member = members.register(" Hanako@Example.COM ", "correct horse", "花子")
    assert member["email"] == "hanako@example.com" and "password_hash" not in member
    with members.store.read() as tx:
        stored = tx.scalar("SELECT password_hash FROM members")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    with pytest.raises(EmailTaken):
        members.register("HANAKO@example.com", "another one!", "")
    assert (
        members.authenticate("HANAKO@example.com", "correct horse", "192.0.2.1")["id"]
        == member["id"]
    )
    for bad in ("", "x" * 7):
        with pytest.raises(ValidationError):
            members.register("b@example.com", bad)
    with pytest.raises(ValidationError):
        members.register("not an address", "correct horse")


def test_a_hash_with_old_parameters_is_upgraded_at_login(accounts):
    members, _ = accounts
    member = members.register("a@example.com", "correct horse")
    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16).hash(
        "correct horse"
    )
    with members.store.tx() as tx:
        tx.execute("UPDATE members SET password_hash = ? WHERE id = ?", (old, member["id"]))
    members.authenticate("a@example.com", "correct horse", "192.0.2.1")
    with members.store.read() as tx:
        assert tx.scalar("SELECT password_hash FROM members") != old


def test_ten_failures_then_throttled_until_the_window_passes(accounts):
    members, clock = accounts
    members.register("a@example.com", "correct horse")
    for n in range(10):
        clock.now += 1
        with pytest.raises(LoginFailed):
            members.authenticate("a@example.com", f"guess {n}", f"192.0.2.{n}")
    with pytest.raises(LoginThrottled) as refused:
        members.authenticate("a@example.com", "correct horse", "198.51.100.1")
    assert 880 < refused.value.retry_after <= 901 and refused.value.status == 429
    # the refused attempt did not count: once the first failure is 15 minutes old, one
    # more attempt is allowed
    clock.now += 900 - 9
    assert members.authenticate("a@example.com", "correct horse", "198.51.100.1")["email"]


def test_a_success_does_not_count_and_unknown_emails_count_for_the_address(accounts):
    members, _ = accounts
    members.register("a@example.com", "correct horse")
    for _ in range(15):
        members.authenticate("a@example.com", "correct horse", "192.0.2.1")
    assert members.throttle.failures(key("member", "a@example.com")) == 0
    for n in range(10):
        with pytest.raises(LoginFailed):
            members.authenticate(f"nobody{n}@example.com", "x", "192.0.2.7")
    with pytest.raises(LoginThrottled):
        members.authenticate("a@example.com", "correct horse", "192.0.2.7")


def _guess(
    db_url: str, start: multiprocessing.synchronize.Event, results: multiprocessing.Queue
) -> None:
    store = open_store(db_url)
    members = Members(store, Throttle(store), hasher=PasswordHasher(**FAST))
    start.wait()
    for _ in range(4):
        try:
            members.authenticate("a@example.com", "wrong guess", "192.0.2.50")
            results.put("ok")
        except LoginFailed:
            results.put("failed")
        except LoginThrottled:
            results.put("throttled")
        except Exception as exc:  # the test fails on anything else
            results.put(f"error {type(exc).__name__}: {exc}")
    store.close()


def test_concurrent_guesses_from_several_processes_check_at_most_ten(accounts, db_url):
    members, _ = accounts
    members.register("a@example.com", "correct horse")
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_guess, args=(db_url, start, results)) for _ in range(6)]
    for proc in procs:
        proc.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in range(24)]
    for proc in procs:
        proc.join(30)
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    assert outcomes.count("ok") == 0
    assert outcomes.count("failed") <= 10 and outcomes.count("throttled") >= 14


def test_a_reset_token_works_once_and_expires(accounts):
    members, clock = accounts
    member = members.register("a@example.com", "correct horse")
    links: list[str] = []
    assert not members.start_reset("nobody@example.com", links.append, "ja")
    assert members.start_reset("A@example.com", lambda t: links.append(t) or f"/r?t={t}", "en")
    [token] = links
    with members.store.read() as tx:
        stored = tx.one("SELECT token_hash FROM password_resets")
        mail = tx.one("SELECT kind, recipient, order_number, data_json FROM outbox")
    assert token not in stored["token_hash"]
    assert (mail["kind"], mail["recipient"], mail["order_number"]) == (
        "password_reset",
        "a@example.com",
        None,
    )
    assert f"/r?t={token}" in mail["data_json"]
    assert members.reset_member(token) == member["id"]
    with pytest.raises(ValidationError):
        members.finish_reset(token, "short")
    assert members.finish_reset(token, "a new password") == member["id"]
    with pytest.raises(ResetLinkInvalid):
        members.finish_reset(token, "yet another one")
    with pytest.raises(LoginFailed):
        members.authenticate("a@example.com", "correct horse", "192.0.2.1")
    assert members.authenticate("a@example.com", "a new password", "192.0.2.1")
    # an unused link dies after an hour
    links.clear()
    members.start_reset("a@example.com", lambda t: links.append(t) or t, "ja")
    clock.now += 3601
    assert members.reset_member(links[0]) is None
    with pytest.raises(ResetLinkInvalid):
        members.finish_reset(links[0], "a newer password")
    with pytest.raises(ResetLinkInvalid):
        members.finish_reset("made-up", "a newer password")
