"""The owner's accounts for the admin pages: argon2id passwords, an optional TOTP second
factor (pyotp, RFC 6238), and two roles: ``owner`` may do everything, ``staff`` may run
the shop (orders, shipping, stock, products) but not refund, change settings
(maintenance, plugins) or manage accounts.

Logins are throttled like members' (:mod:`ecshop.throttle`: 10 failures per account and
per client address in 15 minutes); a failed login is logged at WARNING.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import pyotp
from argon2 import PasswordHasher

from ecshop.errors import BadRequest, Conflict, Forbidden, ValidationError
from ecshop.passwords import Passwords
from ecshop.store import DuplicateKey, Store
from ecshop.throttle import Throttle, key

log = logging.getLogger("ecshop.admin")
ROLES = ("owner", "staff")
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 12
#: what only an owner may do
OWNER_ONLY = frozenset({"refund", "settings", "accounts"})


class AdminLoginFailed(BadRequest):
    code = "login_failed"
    status = 401


class NotAllowed(Forbidden):
    code = "not_allowed"


def allowed(role: str, what: str) -> bool:
    """May an account of ``role`` do ``what`` (``refund``, ``settings``, ...)?"""
    return role == "owner" or what not in OWNER_ONLY


def require(admin: dict[str, Any], what: str) -> None:
    """Raises NotAllowed (403) when ``admin``'s role may not do ``what``."""
    if not allowed(str(admin["role"]), what):
        raise NotAllowed(f"a {admin['role']} account may not do this ({what}): ask an owner")


class AdminUsers:
    """The admin accounts in ``store``."""

    def __init__(self, store: Store, throttle: Throttle, *,
                 clock: Callable[[], float] = time.time,
                 hasher: PasswordHasher | None = None) -> None:  # fmt: skip
        self.store = store
        self.throttle = throttle
        self.clock = clock
        self.passwords = Passwords(hasher)

    def create(self, username: str, password: str, role: str = "owner", *,
               totp: bool = False) -> dict[str, Any]:  # fmt: skip
        """A new account; with ``totp`` its secret is in the answer (``totp_uri`` for an
        authenticator app), shown once.

        Raises:
            ValidationError: a bad name, a password under 12 characters, an unknown role.
            Conflict: the name is taken.
        """
        if not USERNAME.fullmatch(username):
            raise ValidationError("a user name is 1 to 64 letters, digits and . _ @ -",
                                  field="username")  # fmt: skip
        if len(password) < MIN_PASSWORD or len(password) > 1024:
            raise ValidationError(f"an admin password has {MIN_PASSWORD} to 1024 characters",
                                  field="password")  # fmt: skip
        if role not in ROLES:
            raise ValidationError(f"the role is one of {', '.join(ROLES)}", field="role")
        user_id, now = secrets.token_hex(16), self.clock()
        secret = pyotp.random_base32() if totp else None
        try:
            with self.store.tx() as tx:
                tx.execute(
                    "INSERT INTO admin_users (id, username, password_hash, role, totp_secret, "
                    "created_at, updated_at, disabled_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (user_id, username, self.passwords.hash(password), role, secret, now, now),
                )  # fmt: skip
        except DuplicateKey as exc:
            raise Conflict(
                f"an admin account {username!r} exists already", field="username"
            ) from exc
        user = self.get(user_id) or {}
        if secret:
            user["totp_uri"] = pyotp.TOTP(secret).provisioning_uri(
                name=username, issuer_name="ecshop"
            )
        return user

    def get(self, user_id: Any) -> dict[str, Any] | None:
        """A live account (no password hash, no TOTP secret), or None."""
        if not user_id:
            return None
        with self.store.read() as tx:
            row = tx.one(
                "SELECT id, username, role, totp_secret IS NOT NULL AS totp, created_at "
                "FROM admin_users WHERE id = ? AND disabled_at IS NULL", (str(user_id),),
            )  # fmt: skip
        return dict(row) if row else None

    def count(self) -> int:
        with self.store.read() as tx:
            return int(tx.scalar("SELECT COUNT(*) FROM admin_users WHERE disabled_at IS NULL"))

    def all(self) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            return [dict(r) for r in tx.query(
                "SELECT id, username, role, totp_secret IS NOT NULL AS totp, created_at, "
                "disabled_at FROM admin_users ORDER BY username")]  # fmt: skip

    def authenticate(self, username: str, password: str, code: str, client: str) -> dict[str, Any]:
        """The account these credentials open.

        Raises:
            LoginThrottled: too many failures for this account or address (429).
            AdminLoginFailed: a wrong name, password or code (one message for all, 401).
        """
        name = username.strip()[:64]
        attempt = self.throttle.begin((key("admin", name), key("admin-address", client)))
        with self.store.read() as tx:
            row = tx.one(
                "SELECT id, password_hash, totp_secret FROM admin_users "
                "WHERE username = ? AND disabled_at IS NULL", (name,),
            )  # fmt: skip
        stored = str(row["password_hash"]) if row else None
        ok = row is not None and self.passwords.matches(stored, password)
        if ok and row is not None and row["totp_secret"]:
            ok = self._use_code(row["id"], str(row["totp_secret"]), code)
        if not ok or row is None or stored is None:
            log.warning("admin login failed for %r from %s", name, client)
            raise AdminLoginFailed("The user name, password or code is wrong.")
        self.throttle.forget(attempt)
        if self.passwords.needs_rehash(stored):
            with self.store.tx() as tx:
                tx.execute("UPDATE admin_users SET password_hash = ?, updated_at = ? WHERE id = ?",
                           (self.passwords.hash(password), self.clock(), row["id"]))  # fmt: skip
        log.info("admin %r logged in from %s", name, client)
        return self.get(row["id"]) or {}

    def _use_code(self, user_id: Any, secret: str, code: str) -> bool:
        """Is ``code`` the account's TOTP code of the time step before, at or after now,
        and newer than the last code it used? A code opens one login only: the step it
        belongs to is stored, and a code of that step or an earlier one is refused
        (RFC 6238 section 5.2), so a code seen over a shoulder or in a proxy's log
        cannot be replayed within its window."""
        totp = pyotp.TOTP(secret)
        now = self.clock()
        typed = code.strip()
        step = int(now // totp.interval)
        matched = [s for s in (step - 1, step, step + 1)
                   if secrets.compare_digest(totp.at(s * totp.interval), typed)]  # fmt: skip
        if not typed or not matched:
            return False
        with self.store.tx() as tx:
            used = tx.execute(
                "UPDATE admin_users SET totp_last_step = ? WHERE id = ? "
                "AND (totp_last_step IS NULL OR totp_last_step < ?)",
                (matched[-1], user_id, matched[-1]),
            )  # fmt: skip
        return bool(used)
