"""Server-side sessions of the storefront: a random id in a signed cookie, the data in
the database (the ``sessions`` table), a CSRF token per session.

The cookie carries ``<id>.<HMAC-SHA256 of the id with ECSHOP_SECRET_KEY>``; the id is
128 random bits. The row is keyed by the SHA-256 of the id, so a copy of the table opens
no session. The CSRF token is an HMAC of the id too, so a visitor who only browses has a
cookie and working forms but no row: a session is written once it holds something. A
session holds the cart, the checkout form and one-shot messages, and the logged-in
member's id: logging in calls :meth:`SessionStore.cycle` (a new id for the same data,
as Django's ``cycle_key``), logging out :meth:`SessionStore.end`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ecshop.errors import Unavailable
from ecshop.store import DuplicateKey, Store

log = logging.getLogger("ecshop.sessions")
PURPOSE = b"ecshop-session\n"
CSRF_PURPOSE = b"ecshop-csrf\n"
#: a session whose expiry is less than this far away is pushed back on use
REFRESH_AFTER = 3600.0
#: one new session in this many also deletes the expired ones (an indexed delete)
SWEEP_EVERY = 64


@dataclass
class Session:
    """One visitor's session. Change ``data`` through :meth:`set` / :meth:`pop` so it
    is saved at the end of the request."""

    id: str
    csrf_token: str
    expires_at: float
    data: dict[str, Any] = field(default_factory=dict)
    member_id: str | None = None
    new: bool = True
    dirty: bool = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.dirty = True

    def pop(self, key: str, default: Any = None) -> Any:
        if key not in self.data:
            return default
        self.dirty = True
        return self.data.pop(key)

    def flash(self, message: str, kind: str = "info") -> None:
        """A one-shot message for the next page shown (post-redirect-get)."""
        self.set("flash", [*self.get("flash", []), {"kind": kind, "text": message}])

    def take_flashes(self) -> list[dict[str, str]]:
        return list(self.pop("flash", []) or [])

    def csrf_ok(self, given: str | None) -> bool:
        """True when ``given`` is this session's CSRF token (constant-time)."""
        return bool(given) and hmac.compare_digest(
            str(given).encode("utf-8", "replace"), self.csrf_token.encode()
        )


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Sessions in the shop's database.

    Args:
        store: the order store (any dialect).
        secret_key: ``ECSHOP_SECRET_KEY``; without one (tests, tools) a random key of
            this process signs the cookies, so they last as long as the process.
        ttl: seconds a session lives after its last change.
    """

    def __init__(self, store: Store, secret_key: str, ttl: int,
                 clock: Callable[[], float] = time.time, *, kind: str = "") -> None:  # fmt: skip
        self.store = store
        # NOTE: another kind of session (the admin's) signs with other purposes, so a
        # shopper's cookie is no admin cookie, even copied over.
        self._purpose = PURPOSE if not kind else f"ecshop-{kind}-session\n".encode()
        self._csrf_purpose = CSRF_PURPOSE if not kind else f"ecshop-{kind}-csrf\n".encode()
        self._key = secret_key.encode() if secret_key else secrets.token_bytes(32)
        self.ttl = ttl
        self.clock = clock
        self._created = 0

    # -- cookies -------------------------------------------------------------------------
    def _mac(self, session_id: str) -> str:
        return hmac.new(self._key, self._purpose + session_id.encode(), hashlib.sha256).hexdigest()

    def cookie_value(self, session: Session) -> str:
        return f"{session.id}.{self._mac(session.id)}"

    def id_from_cookie(self, value: str | None) -> str | None:
        """The session id of a cookie value, or None when it is malformed or forged."""
        sid, dot, mac = (value or "").partition(".")
        if not (dot and len(sid) == 32 and sid.isascii() and sid.isalnum()):
            return None
        ok = hmac.compare_digest(self._mac(sid).encode(), mac.encode("utf-8", "replace"))
        return sid if ok else None

    # -- rows ----------------------------------------------------------------------------
    def _csrf(self, session_id: str) -> str:
        return hmac.new(
            self._key, self._csrf_purpose + session_id.encode(), hashlib.sha256
        ).hexdigest()

    def new(self, session_id: str | None = None) -> Session:
        """A fresh, empty session (written by :meth:`save` once it holds something)."""
        sid = session_id or secrets.token_hex(16)
        return Session(sid, self._csrf(sid), self.clock() + self.ttl)

    def load(self, cookie: str | None) -> Session | None:
        """The session named by a genuine cookie value (empty when it has no live row),
        or None for a missing, malformed or forged cookie."""
        sid = self.id_from_cookie(cookie)
        if sid is None:
            return None
        with self.store.read() as tx:
            row = tx.one(
                "SELECT member_id, data_json, expires_at FROM sessions WHERE id_hash = ?",
                (_hash(sid),),
            )
        if row is None or float(row["expires_at"]) <= self.clock():
            return self.new(sid)  # never written, or expired: it starts empty
        return Session(sid, self._csrf(sid), float(row["expires_at"]),
                       json.loads(row["data_json"]), row["member_id"], new=False)  # fmt: skip

    def needs_save(self, session: Session) -> bool:
        """A session is written when it changed, or now and then to push its expiry
        back; an empty new one never is."""
        if session.new:
            return session.dirty
        return session.dirty or session.expires_at - self.clock() < self.ttl - REFRESH_AFTER

    def save(self, session: Session) -> None:
        """Write the session and push its expiry back (a row left by an expired session
        of the same id is reused)."""
        now = self.clock()
        session.expires_at = now + self.ttl
        data = json.dumps(session.data, ensure_ascii=False, separators=(",", ":"))
        values = (data, session.member_id, now, session.expires_at, _hash(session.id))
        with self.store.tx() as tx:
            changed = tx.execute(
                "UPDATE sessions SET data_json = ?, member_id = ?, updated_at = ?, "
                "expires_at = ? WHERE id_hash = ?", values,
            )  # fmt: skip
            if not changed:
                self._insert(tx, session, data, now)
        if session.new:
            self._created += 1
            if self._created % SWEEP_EVERY == 0:
                self.sweep()
        session.new = session.dirty = False

    def _insert(self, tx: Any, session: Session, data: str, now: float) -> None:
        try:
            tx.execute(
                "INSERT INTO sessions (id_hash, csrf_token, member_id, data_json, created_at, "
                "updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_hash(session.id), session.csrf_token, session.member_id, data, now, now,
                 session.expires_at),
            )  # fmt: skip
        except DuplicateKey as exc:  # the same browser's other first request won the race
            raise Unavailable("your session was busy, please try again", retry_after=1) from exc

    def cycle(self, session: Session) -> Session:
        """The same data under a new id and CSRF token, the old row gone (at login)."""
        with self.store.tx() as tx:
            tx.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash(session.id),))
        fresh = self.new()
        fresh.data, fresh.member_id = dict(session.data), session.member_id
        self.save(fresh)
        return fresh

    def end(self, session: Session) -> None:
        """Delete the session (at logout)."""
        with self.store.tx() as tx:
            tx.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash(session.id),))

    def sweep(self) -> int:
        """Delete expired sessions; the number deleted."""
        with self.store.tx() as tx:
            return tx.execute("DELETE FROM sessions WHERE expires_at < ?", (self.clock(),))
