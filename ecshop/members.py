"""Member accounts: register, log in, a saved address, order history and password reset.

Passwords are argon2id (:mod:`ecshop.passwords`), rehashed at login when the
parameters change; an unknown email costs the same hash check as a wrong password. Logins go through :class:`ecshop.throttle.Throttle`, per account and per
client address.

A reset link carries 256 random bits; the table keeps only their SHA-256, the link
works once and for :data:`RESET_TTL` seconds, and using it ends every session of the
member. The mail is written to the outbox in the transaction that stores the token.
Asking for a reset answers the same whether or not the address has an account.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from argon2 import PasswordHasher

from ecshop import outbox
from ecshop.errors import BadRequest, Conflict, ValidationError
from ecshop.pages import EMAIL_SHAPE
from ecshop.passwords import MAX_INPUT, Passwords
from ecshop.store import DuplicateKey, Store
from ecshop.throttle import Throttle, key

MIN_PASSWORD = 8
MAX_PASSWORD = MAX_INPUT
RESET_TTL = 3600
RESET_KIND = "password_reset"


class LoginFailed(BadRequest):
    """Wrong email or password (one message for both)."""

    code = "login_failed"
    status = 401


class EmailTaken(Conflict):
    code = "email_taken"


class ResetLinkInvalid(BadRequest):
    code = "reset_link_invalid"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str:
    """The normalized address.

    Raises:
        ValidationError: it does not look like an email address.
    """
    norm = normalize_email(email)
    if len(norm) > 320 or not EMAIL_SHAPE.fullmatch(norm):
        raise ValidationError("Enter an email address such as name@example.com.", field="email")
    return norm


def check_password(password: str) -> None:
    """Raises ValidationError when ``password`` is too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise ValidationError("Use a password of at least 8 characters.", field="password")
    if len(password) > MAX_PASSWORD:
        raise ValidationError("This password is too long.", field="password")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class Members:
    """The member accounts in ``store``."""

    def __init__(self, store: Store, throttle: Throttle, *,
                 clock: Callable[[], float] = time.time,
                 hasher: PasswordHasher | None = None) -> None:  # fmt: skip
        self.store = store
        self.throttle = throttle
        self.clock = clock
        self.passwords = Passwords(hasher)

    # -- accounts ----------------------------------------------------------------------
    def register(self, email: str, password: str, name: str = "") -> dict[str, Any]:
        """A new member.

        Raises:
            ValidationError: a bad email, password or name. EmailTaken: 409.
        """
        norm = check_email(email)
        check_password(password)
        name = name.strip()
        if len(name) > 200:
            raise ValidationError("This is too long.", field="name")
        member_id = secrets.token_hex(16)
        now = self.clock()
        digest = self.passwords.hash(password)
        try:
            with self.store.tx() as tx:
                tx.execute(
                    "INSERT INTO members (id, email, password_hash, name, address_json, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                    (member_id, norm, digest, name, now, now),
                )  # fmt: skip
        except DuplicateKey as exc:
            raise EmailTaken("An account with this email address already exists.",
                             field="email") from exc  # fmt: skip
        return self.get(member_id) or {}

    def get(self, member_id: str | None) -> dict[str, Any] | None:
        """The member (without its password hash), or None."""
        if not member_id:
            return None
        with self.store.read() as tx:
            row = tx.one(
                "SELECT id, email, name, address_json, created_at FROM members WHERE id = ?",
                (member_id,),
            )
        if row is None:
            return None
        member = dict(row)
        member["address"] = json.loads(member.pop("address_json") or "null") or {}
        return member

    def authenticate(self, email: str, password: str, client: str) -> dict[str, Any]:
        """The member whose email and password these are.

        Raises:
            LoginThrottled: too many failures for this account or this address (429).
            LoginFailed: wrong email or password (401).
        """
        norm = normalize_email(email)[:320]
        attempt = self.throttle.begin((key("member", norm), key("address", client)))
        with self.store.read() as tx:
            row = tx.one("SELECT id, password_hash FROM members WHERE email = ?", (norm,))
        stored = str(row["password_hash"]) if row else None
        if row is None or stored is None or not self.passwords.matches(stored, password):
            raise LoginFailed("The email address or password is wrong.")
        self.throttle.forget(attempt)
        if self.passwords.needs_rehash(stored):
            self._set_password(str(row["id"]), password)
        return self.get(str(row["id"])) or {}

    def _set_password(self, member_id: str, password: str) -> None:
        with self.store.tx() as tx:
            tx.execute("UPDATE members SET password_hash = ?, updated_at = ? WHERE id = ?",
                       (self.passwords.hash(password), self.clock(), member_id))  # fmt: skip

    def save_address(self, member_id: str, address: dict[str, str]) -> None:
        """Keep ``address`` (the checkout form's values) as the member's saved address."""
        text = json.dumps(address, ensure_ascii=False, separators=(",", ":"))
        with self.store.tx() as tx:
            tx.execute("UPDATE members SET address_json = ?, updated_at = ? WHERE id = ?",
                       (text, self.clock(), member_id))  # fmt: skip

    def orders(self, member_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The member's orders, newest first."""
        with self.store.read() as tx:
            rows = tx.query(
                "SELECT number, access_token, status, total, currency, created_at FROM orders "
                "WHERE member_id = ? ORDER BY created_at DESC, number DESC LIMIT ?",
                (member_id, limit),
            )  # fmt: skip
        return [dict(r) for r in rows]

    # -- password reset ----------------------------------------------------------------
    def start_reset(self, email: str, link: Callable[[str], str], lang: str) -> bool:
        """Mail a reset link to ``email`` when it has an account (True then).

        ``link(token)`` makes the URL the mail carries.
        """
        norm = normalize_email(email)[:320]
        now = self.clock()
        token = secrets.token_urlsafe(32)
        with self.store.tx() as tx:
            row = tx.one("SELECT id, name FROM members WHERE email = ?", (norm,))
            if row is None:
                return False
            tx.execute(
                "INSERT INTO password_resets (token_hash, member_id, created_at, expires_at, "
                "used_at) VALUES (?, ?, ?, ?, NULL)",
                (_token_hash(token), row["id"], now, now + RESET_TTL),
            )  # fmt: skip
            data = {"link": link(token), "name": row["name"] or norm, "lang": lang}
            tx.execute(
                "INSERT INTO outbox (kind, order_number, recipient, data_json, status, "
                "attempts, next_attempt_at, created_at) VALUES (?, NULL, ?, ?, 'pending', 0, ?, ?)",
                (RESET_KIND, norm, json.dumps(data, ensure_ascii=False), now, now),
            )  # fmt: skip
        outbox.note_written()
        return True

    def reset_member(self, token: str) -> str | None:
        """The member a live, unused reset token is for, or None."""
        with self.store.read() as tx:
            row = tx.one(
                "SELECT member_id FROM password_resets WHERE token_hash = ? AND used_at IS NULL "
                "AND expires_at > ?", (_token_hash(token), self.clock()),
            )  # fmt: skip
        return str(row["member_id"]) if row else None

    def finish_reset(self, token: str, password: str) -> str:
        """Set the new password through a reset token; every session of the member ends
        and the member's other reset links stop working. The member's id.

        Raises:
            ValidationError: a bad password (the token stays usable).
            ResetLinkInvalid: the token is unknown, used or expired.
        """
        check_password(password)
        digest = self.passwords.hash(password)
        now = self.clock()
        with self.store.tx() as tx:
            row = tx.one(
                "SELECT member_id FROM password_resets WHERE token_hash = ? AND used_at IS NULL "
                "AND expires_at > ?", (_token_hash(token), now),
            )  # fmt: skip
            # NOTE: the guarded UPDATE makes the token single-use even when two requests
            # carry it at once.
            if row is None or not tx.execute(
                "UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
                (now, _token_hash(token)),
            ):
                raise ResetLinkInvalid(
                    "This password reset link has expired or was already used: ask for a new one."
                )
            member_id = str(row["member_id"])
            tx.execute("UPDATE password_resets SET used_at = ? WHERE member_id = ? AND used_at IS NULL",
                       (now, member_id))  # fmt: skip
            tx.execute("UPDATE members SET password_hash = ?, updated_at = ? WHERE id = ?",
                       (digest, now, member_id))  # fmt: skip
            tx.execute("DELETE FROM sessions WHERE member_id = ?", (member_id,))
        return member_id
