"""Mailers: how a message leaves the shop. SMTP in production, ``.eml`` files in a
folder for the demo and tests; a plugin may replace either through the ``mailer``
filter (``add_filter("mailer", lambda default: my_send)``, ``my_send(message)``
raising on failure so the outbox retries).
"""

from __future__ import annotations

import email.utils
import os
import re
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ecshop.errors import ConfigError
from ecshop.files import private_dir
from ecshop.outbox import Mailer, MailSender
from ecshop.redact import mask

SMTP_TIMEOUT = 20.0


def build_message(message: dict[str, Any], sender: str) -> EmailMessage:
    """An :class:`~email.message.EmailMessage` of a checked message (UTF-8 text)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(message["to"])
    mail["Subject"] = message["subject"]
    mail["Date"] = email.utils.formatdate(localtime=False)
    for name, value in message.get("headers", {}).items():
        del mail[name]
        mail[name] = value
    if "Message-ID" not in mail:
        mail["Message-ID"] = email.utils.make_msgid(domain="ecshop")
    mail.set_content(message["body"], charset="utf-8")
    return mail


class FileMailer:
    """Writes each message as ``<folder>/<Message-ID>.eml`` (the same message twice is
    one file): the demo's and the tests' mailbox."""

    def __init__(self, folder: str | Path, sender: str) -> None:
        self.folder = Path(folder)
        self.sender = sender

    def __call__(self, message: dict[str, Any]) -> None:
        mail = build_message(message, self.sender)
        folder = private_dir(self.folder)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", str(mail["Message-ID"]).strip("<>"))[:150]
        partial = folder / f".{stem}.partial"
        partial.write_bytes(mail.as_bytes())
        os.replace(partial, folder / f"{stem}.eml")


class SmtpMailer:
    """Sends through ``smtp://user:pass@host:587?starttls=1`` (``smtps://`` for TLS from
    the first byte, port 465 by default)."""

    def __init__(self, url: str, sender: str, *, timeout: float = SMTP_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(
                f"ECSHOP_SMTP_URL={mask(url)!r}: must be smtp[s]://[user:pass@]host[:port]"
            )
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        query = parse_qs(parts.query)
        self.starttls = query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes", "on")
        self.sender = sender
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SmtpMailer({self.host}:{self.port})"

    def __call__(self, message: dict[str, Any]) -> None:
        mail = build_message(message, self.sender)
        smtp_class = smtplib.SMTP_SSL if self.tls else smtplib.SMTP
        with smtp_class(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(mail)


def default_mailer(config: Any) -> Mailer | None:
    """The shop's own mailer: SMTP when ``ECSHOP_SMTP_URL`` is set, else the folder
    ``ECSHOP_MAIL_DIR``, else none."""
    sender = config.mail_from or f"{config.shop_name} <noreply@localhost>"
    if config.smtp_url:
        return SmtpMailer(config.smtp_url, sender)
    if config.mail_dir:
        return FileMailer(config.mail_dir, sender)
    return None


def build_sender(config: Any, store: Any, hooks: Any) -> MailSender:
    """The outbox's sender of a shop, wired from its configuration."""
    from ecshop.mailtext import MailRenderer

    rates = dict(config.tax_rates)
    reduced = frozenset(n for n, rate in rates.items() if 0 < rate < rates["standard"])
    render = MailRenderer(store, shop_name=config.shop_name, lang=config.mail_lang,
                          timezone=config.timezone, templates=config.mail_templates,
                          invoice_number=config.invoice_number, reduced=reduced)  # fmt: skip
    return MailSender(store, hooks, render, default_mailer(config),
                      max_attempts=config.mail_max_attempts)  # fmt: skip
