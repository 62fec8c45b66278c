"""The shop's configuration: one frozen object, read once from the environment.

This is the only module that reads ``os.environ``. Every setting is listed in
``SETTINGS`` with its parser, so a bad value fails at start-up with one line naming it.
An optional ``ecshop.toml`` (path in ``ECSHOP_CONFIG``, else ``./ecshop.toml``) may set
the same keys in lower case without the prefix (``database_url = "..."``, a
``[gateway.<name>]`` table for gateway keys and a ``[plugin.<name>]`` table for plugin
keys); the environment wins over the file.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from ecshop._redisurl import parse as parse_redis_url
from ecshop.errors import ConfigError
from ecshop.redact import mask

PREFIX = "ECSHOP_"
GATEWAY_PREFIX = "ECSHOP_GATEWAY_"
PLUGIN_PREFIX = "ECSHOP_PLUGIN_"
#: tables of ``ecshop.toml`` whose keys belong to one named gateway or plugin
TABLES = ("gateway", "plugin")


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError("must be a positive number of seconds")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be 1/0, true/false, yes/no or on/off")


def _database_url(raw: str) -> str:
    if not raw.startswith(("sqlite:///", "mysql://", "mariadb://")):
        raise ValueError("must start with sqlite:///, mysql:// or mariadb://")
    return raw


def _url_parts(raw: str) -> SplitResult:
    """``raw`` split, with a port that is not a number refused."""
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError("has a port that is not a number") from None
    return parts


def _base_url(raw: str) -> str:
    text = raw.strip()
    parts = _url_parts(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be the shop's address as http(s)://host[:port][/path]")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must be the shop's address alone, without user, query or fragment")
    return text.rstrip("/")


def _redis_url(raw: str) -> str:
    """One server (``redis://``, ``rediss://``, ``unix://``) or a primary through
    Sentinel (``redis+sentinel://``); the forms are in :mod:`ecshop._redisurl`."""
    if raw:
        parse_redis_url(raw)
    return raw


def _currency(raw: str) -> str:
    if len(raw) != 3 or not raw.isalpha() or not raw.isupper():
        raise ValueError("must be an ISO 4217 code such as JPY")
    return raw


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _text(raw: str) -> str:
    return raw


def _rate(raw: str) -> tuple[int, float]:
    """``N/S``: N requests per S seconds (a bucket of N refilled over S); ``0`` = off."""
    text = raw.strip()
    if text in ("", "0"):
        return (0, 0.0)
    count, sep, seconds = text.partition("/")
    try:
        n, period = int(count), float(seconds) if sep else 0.0
    except ValueError:
        n, period = 0, 0.0
    if n <= 0 or not period > 0:
        raise ValueError("must be N/S (N requests per S seconds, e.g. 20/60) or 0 for no limit")
    return (n, period)


def _networks(raw: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks (checked here, parsed where used)."""
    items = _csv(raw)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or network") from exc
    return items


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _log_format(raw: str) -> str:
    fmt = raw.strip().lower()
    if fmt not in ("text", "json"):
        raise ValueError("must be text or json")
    return fmt


def _tax_rates(raw: str) -> tuple[tuple[str, int], ...]:
    from ecshop.tax import parse_rates

    return tuple(parse_rates(raw).items())


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _timezone(raw: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone such as Asia/Tokyo") from exc
    return raw.strip()


def _smtp_url(raw: str) -> str:
    if not raw:
        return raw
    parts = _url_parts(raw)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be smtp://[user:password@]host[:port][?starttls=1] or smtps://...")
    return raw


def _slots(raw: str) -> tuple[str, ...]:
    items = _csv(raw)
    for item in items:
        if len(item) > 32 or not item.replace("-", "").replace(":", "").isalnum():
            raise ValueError(f"{item!r}: a slot is a short name such as morning or 14-16")
    if len(set(items)) != len(items):
        raise ValueError("names a slot twice")
    return items


def _invoice_number(raw: str) -> str:
    text = raw.strip()
    if text and not (len(text) == 14 and text[0] == "T" and text[1:].isdigit()):
        raise ValueError("must be T and 13 digits (適格請求書発行事業者登録番号)")
    return text


def _auto_bool(raw: str) -> str:
    lowered = raw.strip().lower()
    if lowered == "auto":
        return "auto"
    return "on" if _bool(lowered) else "off"


# name -> (parser, default as text)
SETTINGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "DATABASE_URL": (_database_url, "sqlite:///ecshop-data/shop.db"),
    "REDIS_URL": (_redis_url, ""),
    "ADMIN_TOKEN": (_text, ""),
    "ADMIN_PASSWORD": (_text, ""),
    "SECRET_KEY": (_text, ""),
    "BASE_URL": (_base_url, "http://127.0.0.1:8000"),
    "CURRENCY": (_currency, "JPY"),
    "HOLD_TTL": (_positive_int, "900"),
    "RECONCILE_GRACE": (_non_negative_float, "120"),
    "RECONCILE_INTERVAL": (_non_negative_float, "30"),
    "PLUGINS_DIR": (_text, "plugins"),
    "PLUGINS_ENABLED": (_csv, ""),
    "PLUGINS_DISABLED": (_csv, ""),
    "PLUGINS_STRICT": (_bool, "0"),
    "MAX_BODY": (_positive_int, str(1024 * 1024)),
    "DB_LOCK_TIMEOUT": (_positive_int, "5"),
    "IDEMPOTENCY_TTL": (_positive_int, str(48 * 3600)),
    "PUREPYTHON": (_bool, "0"),
    "GROUP_COMMIT": (_auto_bool, "auto"),
    "SHED_QUEUE_MS": (_non_negative_int, "3000"),
    "THREADS": (_positive_int, "8"),
    "BODY_TIMEOUT": (_positive_float, "20"),
    "METRICS_DIR": (_text, ""),
    # the instance's own files: gunicorn's pid file and control socket, backups,
    # metrics (default: the SQLite database's folder, else ./ecshop-data)
    "DATA_DIR": (_text, ""),
    # GET /metrics answers a request bearing this token, or from an address of
    # METRICS_ALLOW (the client's, as ECSHOP_TRUSTED_PROXIES tell it); 401/403 otherwise.
    "METRICS_TOKEN": (_text, ""),
    "METRICS_ALLOW": (_networks, "127.0.0.1,::1"),
    "MAX_LINES_PER_ORDER": (_positive_int, "50"),
    "MAX_QTY_PER_LINE": (_positive_int, "100"),
    "CHECKOUT_RATE_LIMIT": (_rate, "20/60"),
    "TRUSTED_PROXIES": (_networks, "127.0.0.1,::1"),
    "LOG_LEVEL": (_log_level, "INFO"),
    "LOG_FORMAT": (_log_format, "text"),
    # a failure repeating while a part is down is logged once, then as one summary
    # line with a count per this many seconds
    "LOG_REPEAT_EVERY": (_positive_float, "60"),
    # one line per request on the ecshop.access logger
    "ACCESS_LOG": (_bool, "1"),
    "GATEWAY_UNREACHABLE_AFTER": (_positive_float, str(24 * 3600)),
    "GATEWAY_UNREACHABLE_RELEASE": (_bool, "0"),
    "TAX_RATES": (_tax_rates, "standard:10,reduced:8"),
    "TAX_ROUNDING": (_choice("floor", "round", "ceil"), "floor"),
    "INVOICE_NUMBER": (_invoice_number, ""),
    "TIMEZONE": (_timezone, "Asia/Tokyo"),
    "DELIVERY_SLOTS": (_slots, ""),
    "DELIVERY_LEAD_DAYS": (_non_negative_int, "2"),
    "DELIVERY_RANGE_DAYS": (_non_negative_int, "0"),
    "SHOP_NAME": (_text, "ecshop"),
    "SMTP_URL": (_smtp_url, ""),
    "MAIL_FROM": (_text, ""),
    "MAIL_DIR": (_text, ""),
    "MAIL_TEMPLATES": (_text, ""),
    "MAIL_LANG": (_choice("ja", "en"), "ja"),
    "MAIL_MAX_ATTEMPTS": (_positive_int, "8"),
    # served workers send mail right after the request that wrote it
    "MAIL_PROMPT": (_bool, "1"),
    "THEME_DIR": (_text, ""),
    "MEDIA_DIR": (_text, ""),
    "SESSION_TTL": (_positive_int, str(14 * 24 * 3600)),
}
# Settings whose value never appears in an error message.
SECRET_SETTINGS = frozenset({"ADMIN_TOKEN", "ADMIN_PASSWORD", "SECRET_KEY", "SMTP_URL",
                             "METRICS_TOKEN"})  # fmt: skip
MIN_SECRET_BYTES = 32
MIN_ADMIN_TOKEN_CHARS = 32


@dataclass(frozen=True)
class Config:
    """Every setting of a shop. Build it with :func:`load_config`."""

    database_url: str = "sqlite:///ecshop-data/shop.db"
    redis_url: str = ""
    # NOTE: secrets stay out of repr(), so a logged or printed config shows none.
    admin_token: str = field(default="", repr=False)
    admin_password: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    base_url: str = "http://127.0.0.1:8000"
    currency: str = "JPY"
    hold_ttl: int = 900
    reconcile_grace: float = 120.0
    reconcile_interval: float = 30.0
    plugins_dir: str = "plugins"
    plugins_enabled: tuple[str, ...] = ()
    plugins_disabled: tuple[str, ...] = ()
    plugins_strict: bool = False
    max_body: int = 1024 * 1024
    db_lock_timeout: int = 5
    idempotency_ttl: int = 48 * 3600
    purepython: bool = False
    group_commit: str = "auto"
    shed_queue_ms: int = 3000
    threads: int = 8
    body_timeout: float = 20.0
    metrics_dir: str = ""
    data_dir: str = ""
    metrics_token: str = field(default="", repr=False)
    metrics_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    max_lines_per_order: int = 50
    max_qty_per_line: int = 100
    checkout_rate_limit: tuple[int, float] = (20, 60.0)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    log_level: str = "INFO"
    log_format: str = "text"
    log_repeat_every: float = 60.0
    access_log: bool = True
    gateway_unreachable_after: float = 24 * 3600.0
    gateway_unreachable_release: bool = False
    tax_rates: tuple[tuple[str, int], ...] = (("standard", 10), ("reduced", 8))
    tax_rounding: str = "floor"
    invoice_number: str = ""
    timezone: str = "Asia/Tokyo"
    delivery_slots: tuple[str, ...] = ()
    delivery_lead_days: int = 2
    delivery_range_days: int = 0
    shop_name: str = "ecshop"
    smtp_url: str = field(default="", repr=False)
    mail_from: str = ""
    mail_dir: str = ""
    mail_templates: str = ""
    mail_lang: str = "ja"
    mail_max_attempts: int = 8
    mail_prompt: bool = True
    theme_dir: str = ""
    media_dir: str = ""
    session_ttl: int = 14 * 24 * 3600
    # Per-name settings: "" holds the environment's keys whole (NAME_KEY), a name the
    # keys of its ecshop.toml table.
    gateways: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    plugin_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)

    @property
    def group_commit_on(self) -> bool:
        """Group commit of checkouts. ``auto`` turns it on for SQLite served with threads
        (``THREADS`` > 1): its one writer at a time makes a commit per checkout the bound
        there. MariaDB/InnoDB already shares log flushes between concurrent transactions,
        and sync workers have no concurrent checkouts in a process to group."""
        if self.group_commit == "auto":
            return self.database_url.startswith("sqlite:") and self.threads > 1
        return self.group_commit == "on"

    @property
    def sqlite_folder(self) -> Path | None:
        """The folder of a SQLite database file, or None (MariaDB, ``:memory:``)."""
        path = self.database_url.removeprefix("sqlite:///")
        if path != self.database_url and path != ":memory:":
            return Path(path).parent
        return None

    @property
    def data_folder(self) -> Path:
        """This instance's own folder: ``DATA_DIR``, else the SQLite database's folder,
        else ``ecshop-data`` in the working folder. gunicorn's pid file and control
        socket, the default backups folder and the metrics live here, so two shops on
        one host never share them."""
        if self.data_dir:
            return Path(self.data_dir)
        return self.sqlite_folder or Path("ecshop-data")

    @property
    def metrics_home(self) -> str:
        """The folder of the workers' metric files (:mod:`ecshop.metrics`):
        ``METRICS_DIR``, else ``metrics`` in the data folder when one is named
        (``DATA_DIR``, or beside a SQLite database), else ``""``: ``ecshop serve``
        makes a temporary one."""
        if self.metrics_dir:
            return self.metrics_dir
        if self.data_dir or self.sqlite_folder is not None:
            return str(self.data_folder / "metrics")
        return ""

    @property
    def mail_on(self) -> bool:
        """Mail to buyers is written to the outbox: an SMTP server or a mail folder is set."""
        return bool(self.smtp_url or self.mail_dir)

    def gateway_settings(self, name: str) -> Mapping[str, str]:
        """Settings of one gateway, from ``ECSHOP_GATEWAY_<NAME>_<KEY>`` (keys lower case).

        The gateway's name decides where its key starts, so a name holding ``_`` is read
        whole: ``ECSHOP_GATEWAY_BANK_TRANSFER_ACCOUNT`` is ``account`` of
        ``bank_transfer``. Where two gateway names overlap (``bank`` and
        ``bank_transfer``), a double underscore ends the name unambiguously:
        ``ECSHOP_GATEWAY_BANK__TRANSFER_ACCOUNT`` is ``transfer_account`` of ``bank``.
        """
        return _scoped(self.gateways, name)

    def plugin_settings(self, name: str) -> Mapping[str, str]:
        """Settings of one plugin, from ``ECSHOP_PLUGIN_<NAME>_<KEY>`` and the
        ``[plugin.<name>]`` table; names end as in :meth:`gateway_settings`."""
        return _scoped(self.plugin_options, name)


def _scoped(layers: Mapping[str, Mapping[str, str]], name: str) -> dict[str, str]:
    """The keys of ``name``: its file table, overridden by the environment's keys."""
    head = name.upper() + "_"
    flat = layers.get("", {})
    found: dict[str, str] = {}
    for key, value in flat.items():
        if key.startswith(head + "_"):
            found[key[len(head) + 1 :].lower()] = value
    for key, value in flat.items():
        if key.startswith(head) and not key.startswith(head + "_"):
            found.setdefault(key[len(head) :].lower(), value)
    table = {str(k).lower(): v for k, v in layers.get(name.lower(), {}).items()}
    return {**table, **found}


def _text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _toml_values(path: Path) -> tuple[dict[str, str], dict[str, dict[str, dict[str, str]]]]:
    """The file's top-level keys as ``ECSHOP_*`` variables, and its ``[gateway.<name>]``
    and ``[plugin.<name>]`` tables by kind and name."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}") from exc
    values: dict[str, str] = {}
    tables: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in TABLES}
    for key, value in data.items():
        if key in TABLES and isinstance(value, dict):
            for name, settings in value.items():
                if not isinstance(settings, dict):
                    raise ConfigError(f"{path}: [{key}.{name}] must be a table of settings")
                tables[key][str(name).lower()] = {
                    str(k).lower(): _text_of(v) for k, v in settings.items()
                }
            continue
        values[PREFIX + key.upper()] = _text_of(value)
    return values, tables


def _named_keys(merged: Mapping[str, str], prefix: str) -> dict[str, str]:
    """Every ``<prefix><NAME>_<KEY>`` variable, kept whole as ``NAME_KEY`` (only the
    name's owner tells where the name ends), core settings left out."""
    flat: dict[str, str] = {}
    for key, raw in merged.items():
        if key.startswith(prefix) and key[len(PREFIX) :] not in SETTINGS:
            rest = key[len(prefix) :]
            if "_" not in rest.strip("_"):
                raise ConfigError(f"{key}: expected {prefix}<NAME>_<KEY>")
            flat[rest] = raw
    return flat


def load_config(
    environ: Mapping[str, str] | None = None, toml_path: str | Path | None = None
) -> Config:
    """Read the configuration from the environment (and ``ecshop.toml`` when present).

    Raises:
        ConfigError: a setting is malformed; the message names it in one line.
    """
    env = dict(os.environ if environ is None else environ)
    path = Path(toml_path or env.get("ECSHOP_CONFIG") or "ecshop.toml")
    merged: dict[str, str] = {}
    tables: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in TABLES}
    if path.is_file():
        file_values, tables = _toml_values(path)
        merged.update(file_values)
    elif toml_path is not None or env.get("ECSHOP_CONFIG"):
        raise ConfigError(f"ECSHOP_CONFIG: no such file: {path}")
    merged.update({k: v for k, v in env.items() if k.startswith(PREFIX)})

    values: dict[str, Any] = {}
    for name, (parse, default) in SETTINGS.items():
        raw = merged.get(PREFIX + name, default)
        try:
            values[name.lower()] = parse(raw)
        except ValueError as exc:
            shown = "" if name in SECRET_SETTINGS else f"={raw!r}"
            raise ConfigError(mask(f"{PREFIX}{name}{shown}: {exc}")) from exc

    # NOTE: gateway and plugin keys are kept whole under "" until one asks for its own,
    # since only its name tells where the name ends (see Config.gateway_settings).
    values["gateways"] = {**tables["gateway"], "": _named_keys(merged, GATEWAY_PREFIX)}
    values["plugin_options"] = {**tables["plugin"], "": _named_keys(merged, PLUGIN_PREFIX)}
    return Config(**values)


def check_serving(config: Config) -> None:
    """Refuse to serve with secrets too weak to protect the shop.

    Raises:
        ConfigError: ``ECSHOP_SECRET_KEY`` is missing or shorter than 32 bytes, or
            ``ECSHOP_ADMIN_TOKEN`` is set but shorter than 32 characters (unset is
            allowed: the admin API is then closed), or ``ECSHOP_METRICS_TOKEN`` is.
    """
    key_bytes = len(config.secret_key.encode("utf-8"))
    if key_bytes < MIN_SECRET_BYTES:
        state = "is not set" if not key_bytes else f"is {key_bytes} bytes long"
        raise ConfigError(
            f"{PREFIX}SECRET_KEY {state}: the shop needs a random secret of at least "
            f"{MIN_SECRET_BYTES} bytes to sign links (e.g. python3 -c "
            f"'import secrets; print(secrets.token_hex(32))')"
        )
    if config.admin_token and len(config.admin_token) < MIN_ADMIN_TOKEN_CHARS:
        raise ConfigError(
            f"{PREFIX}ADMIN_TOKEN is {len(config.admin_token)} characters long: use at least "
            f"{MIN_ADMIN_TOKEN_CHARS}, or leave it unset to close the admin API"
        )
    if config.metrics_token and len(config.metrics_token) < MIN_ADMIN_TOKEN_CHARS:
        raise ConfigError(
            f"{PREFIX}METRICS_TOKEN is {len(config.metrics_token)} characters long: use at "
            f"least {MIN_ADMIN_TOKEN_CHARS}, or leave it unset (ECSHOP_METRICS_ALLOW alone)"
        )


def purepython_forced() -> bool:
    """True when ``ECSHOP_PUREPYTHON`` asks for the pure-Python stock core."""
    return _bool(os.environ.get(PREFIX + "PUREPYTHON", "0"))


def require_extension() -> bool:
    """True when ``ECSHOP_REQUIRE_EXTENSION`` demands the compiled stock core."""
    return _bool(os.environ.get(PREFIX + "REQUIRE_EXTENSION", "0"))


def multiprocess_dir() -> str:
    """The folder prometheus_client's multiprocess mode writes this process's metrics
    to (``PROMETHEUS_MULTIPROC_DIR``, which ``ecshop serve`` sets), or ``""``."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def child_environ(overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment for a child process (gunicorn, the sandbox gateway) with overrides."""
    env = dict(os.environ)
    env.update(overrides)
    return env
