"""Password checks for members and admin accounts: argon2id (argon2-cffi's
``PasswordHasher``, its RFC 9106 parameters), rehashed at login when those parameters
change, and an unknown account checked against a decoy hash, so the time a login takes
tells nobody which names or addresses have accounts."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: longer input is cut here before hashing (argon2 takes any length; a megabyte would
#: only cost the server time)
MAX_INPUT = 1024


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        # NOTE: checked against for unknown accounts, so they cost a real verification.
        self._decoy = self.hasher.hash(secrets.token_hex(16))

    def hash(self, password: str) -> str:
        return self.hasher.hash(password[:MAX_INPUT])

    def matches(self, stored: str | None, password: str) -> bool:
        """Does ``password`` match the hash ``stored`` (None: no such account, which
        never matches but costs the same)?"""
        try:
            self.hasher.verify(stored or self._decoy, password[:MAX_INPUT])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self.hasher.check_needs_rehash(stored)
