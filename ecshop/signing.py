"""Short-lived values signed with the shop's secret key (``ECSHOP_SECRET_KEY``).

A signed value names what it is for (its purpose), whom it is for (its subject, e.g. an
order number) and when it stops being valid: ``<expiry unix time>.<hex HMAC-SHA256>``
over all three. It replaces a long-lived secret where a URL would carry one, such as the
customer's way back from a payment gateway, which gateways, browsers and proxies log.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from ecshop.errors import ConfigError

MIN_KEY_BYTES = 32
# How long a customer's return link stays valid beyond the hold time: a buyer who pays
# at the last minute and comes back from the gateway late still sees the order.
RETURN_LINK_MARGIN = 24 * 3600
RETURN_PURPOSE = "payment-return"


class Signer:
    """Sign and check values for one purpose.

    Args:
        key: the secret key; an empty key can check nothing and refuses to sign.
        purpose: what the values are for; a value signed for one purpose is refused
            for every other.
        ttl: seconds a value stays valid.
        clock: the current Unix time (injectable for tests).
    """

    def __init__(self, key: str, *, purpose: str, ttl: float,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._key = key.encode("utf-8")
        self.purpose = purpose
        self.ttl = ttl
        self.clock = clock

    def _mac(self, subject: str, expires: int) -> str:
        message = f"{self.purpose}\n{subject}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, subject: str, *, expires: float | None = None) -> str:
        """A value for ``subject`` valid until ``expires`` (Unix time), by default for
        ``ttl`` seconds from now.

        Raises:
            ConfigError: no secret key is configured.
        """
        if not self._key:
            raise ConfigError(f"ECSHOP_SECRET_KEY is not set: cannot sign {self.purpose} links")
        until = int(self.clock() + self.ttl if expires is None else expires)
        return f"{until}.{self._mac(subject, until)}"

    def verify(self, subject: str, value: str) -> bool:
        """True when ``value`` was signed for ``subject`` and this purpose and is not
        expired. Malformed, tampered and expired values are all just ``False``."""
        expires_text, dot, mac = value.partition(".")
        well_formed = expires_text.isascii() and expires_text.isdigit() and len(expires_text) <= 12
        if not (self._key and dot and well_formed):
            return False
        expires = int(expires_text)
        expected = self._mac(subject, expires)
        # NOTE: compare first, then look at the time, so every refusal costs the same.
        genuine = hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace"))
        return genuine and self.clock() < expires


def return_links(key: str, hold_ttl: float, clock: Callable[[], float] = time.time) -> Signer:
    """The signer of customers' return links: valid for the hold time plus a day."""
    return Signer(key, purpose=RETURN_PURPOSE, ttl=hold_ttl + RETURN_LINK_MARGIN, clock=clock)
