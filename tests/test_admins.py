"""Admin accounts in process, on SQLite and MariaDB: a TOTP code opens one login only,
and a hash made with old argon2 parameters is upgraded at login."""

from __future__ import annotations

import pyotp
import pytest
from argon2 import PasswordHasher

from ecshop.admins import AdminLoginFailed, AdminUsers
from ecshop.store import open_store
from ecshop.throttle import Throttle
from tests.test_members import FAST, Clock

PASSWORD = "a long admin password"


@pytest.fixture
def admins(db_url):
    store = open_store(db_url)
    store.migrate()
    clock = Clock()
    yield AdminUsers(store, Throttle(store, clock=clock), clock=clock,
                     hasher=PasswordHasher(**FAST)), clock  # fmt: skip
    store.close()


def test_a_totp_code_opens_one_login_only(admins):
    users, clock = admins
    totp = pyotp.parse_uri(users.create("owner", PASSWORD, totp=True)["totp_uri"])
    code = totp.at(clock.now)
    assert users.authenticate("owner", PASSWORD, code, "192.0.2.1")["username"] == "owner"
    # the same code again, within its window: a replay
    with pytest.raises(AdminLoginFailed):
        users.authenticate("owner", PASSWORD, code, "192.0.2.1")
    # the previous step's code is older than the one used: refused too
    with pytest.raises(AdminLoginFailed):
        users.authenticate("owner", PASSWORD, totp.at(clock.now - 30), "192.0.2.1")
    # the next step's code works once
    clock.now += 30
    assert users.authenticate("owner", PASSWORD, totp.at(clock.now), "192.0.2.1")
    with pytest.raises(AdminLoginFailed):
        users.authenticate("owner", PASSWORD, totp.at(clock.now), "192.0.2.1")
    # a wrong password never uses up a good code
    clock.now += 30
    fresh = totp.at(clock.now)
    with pytest.raises(AdminLoginFailed):
        users.authenticate("owner", "not the password", fresh, "192.0.2.1")
    assert users.authenticate("owner", PASSWORD, fresh, "192.0.2.1")


def test_an_admin_hash_with_old_parameters_is_upgraded_at_login(admins):
    users, _ = admins
    user = users.create("owner", PASSWORD)
    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16).hash(PASSWORD)
    with users.store.tx() as tx:
        tx.execute("UPDATE admin_users SET password_hash = ? WHERE id = ?", (old, user["id"]))
    users.authenticate("owner", PASSWORD, "", "192.0.2.1")
    with users.store.read() as tx:
        upgraded = tx.scalar("SELECT password_hash FROM admin_users")
    assert upgraded != old and upgraded.startswith("$argon2id$")
    assert users.authenticate("owner", PASSWORD, "", "192.0.2.1")["id"] == user["id"]
