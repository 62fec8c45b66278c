"""Settings a plugin or a gateway declares: typed, required or not, secret or not.

A plugin module lists them in ``SETTINGS``, a gateway class in its ``SETTINGS``
attribute::

    SETTINGS = (
        Setting("fee", int, default=500, minimum=0, help="shipping fee in minor units"),
        Setting("url", "url", required=True, help="the provider's API"),
        Setting("secret", secret=True, required=True, help="the shared HMAC secret"),
    )

The owner sets them as strings (``ECSHOP_PLUGIN_<NAME>_<KEY>``,
``ECSHOP_GATEWAY_<NAME>_<KEY>``, or a ``[plugin.<name>]`` / ``[gateway.<name>]`` table
of ``ecshop.toml``); :func:`resolve` checks and converts them once, at load. A value
that does not convert, or a required setting left unset, is a *problem*: a line naming
the environment variable (never a secret's value), and the plugin does not run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any
from urllib.parse import urlsplit

#: the shortest value a secret setting may have
MIN_SECRET_BYTES = 32
TYPES = ("str", "int", "float", "bool", "url", "choice")
_PY_TYPES = {str: "str", int: "int", float: "float", bool: "bool"}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingValueError(ValueError):
    """A setting's text does not convert to its type (the message says what it must be)."""


@dataclass(frozen=True)
class Setting:
    """One setting of a plugin or gateway.

    Attributes:
        name: the key, lower case (``fee`` is ``ECSHOP_PLUGIN_<NAME>_FEE``).
        type: ``str``, ``int``, ``float``, ``bool``, ``"url"`` (http or https) or
            ``"choice"`` (one of ``choices``); Python's ``str``/``int``/``float``/``bool``
            are taken for their names.
        required: the plugin cannot run while it is unset.
        secret: a shared secret: at least :data:`MIN_SECRET_BYTES` bytes when set, and
            its value is never shown (``ecshop plugins`` prints ``***``).
        default: the value when unset (already of the setting's type).
        help: one line for ``ecshop plugins``.
        choices: the allowed values of a ``choice``.
        minimum, maximum: bounds of an ``int`` or ``float``.
        parse: a further check and conversion of the typed value (a list of zones
            from a ``str``, say), raising ``ValueError`` that says what it must be.
    """

    name: str
    type: Any = "str"
    _: KW_ONLY
    required: bool = False
    secret: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    parse: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        kind = _PY_TYPES.get(self.type, self.type)
        if kind not in TYPES:
            raise ValueError(f"setting {self.name!r}: type must be one of {', '.join(TYPES)}")
        if kind == "choice" and not self.choices:
            raise ValueError(f"setting {self.name!r}: a choice needs choices")
        if not self.name or self.name != self.name.lower() or not self.name.isidentifier():
            raise ValueError(f"setting {self.name!r}: a name is a lower-case identifier")
        object.__setattr__(self, "type", kind)

    def convert(self, raw: str) -> Any:
        """The value of ``raw`` (the text the owner set).

        Raises:
            SettingValueError: ``raw`` is not a value of this setting.
        """
        text = raw.strip()
        if self.secret and len(raw.encode("utf-8")) < MIN_SECRET_BYTES:
            raise SettingValueError(f"is shorter than {MIN_SECRET_BYTES} bytes")
        value: Any = _CONVERT[self.type](self, text if self.type != "str" else raw)
        if self.minimum is not None and value < self.minimum:
            raise SettingValueError(f"must be at least {_plain(self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            raise SettingValueError(f"must be at most {_plain(self.maximum)}")
        if self.parse is not None:
            try:
                value = self.parse(value)
            except ValueError as exc:
                raise SettingValueError(str(exc)) from None
        return value

    def describe_type(self) -> str:
        return f"choice of {'|'.join(self.choices)}" if self.type == "choice" else self.type


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _int(setting: Setting, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SettingValueError("must be a whole number") from None


def _float(setting: Setting, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingValueError("must be a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingValueError("must be a finite number")
    return value


def _bool(setting: Setting, text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingValueError("must be 1/0, true/false, yes/no or on/off")


def _url(setting: Setting, text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingValueError("must be an http:// or https:// URL")
    return text


def _choice(setting: Setting, text: str) -> str:
    if text not in setting.choices:
        raise SettingValueError(f"must be one of {', '.join(setting.choices)}")
    return text


def _str(setting: Setting, text: str) -> str:
    return text


_CONVERT = {"str": _str, "int": _int, "float": _float, "bool": _bool, "url": _url,
            "choice": _choice}  # fmt: skip


@dataclass(frozen=True)
class Resolved:
    """Settings after :func:`resolve`: the values (declared ones converted, defaults
    filled in, undeclared keys kept as text) and the problems, one line each."""

    values: dict[str, Any]
    problems: list[str]


def resolve(declared: Iterable[Setting], raw: Mapping[str, str], prefix: str) -> Resolved:
    """Check and convert ``raw`` (key -> text) against ``declared``.

    Args:
        declared: the settings the plugin declares.
        raw: what the owner set, keys lower case.
        prefix: the environment variables' prefix, e.g. ``ECSHOP_PLUGIN_SHIPPING_FEE_``;
            problems name ``prefix + KEY``.

    Returns:
        The values and the problems. An unset setting takes its default (one without a
        default keeps what was given, an empty text, or stays absent); a bad value
        leaves the default in place (the plugin does not run anyway).
    """
    values: dict[str, Any] = dict(raw)
    problems: list[str] = []
    for setting in declared:
        variable = prefix + setting.name.upper()
        text = raw.get(setting.name)
        if setting.default is not None:
            values[setting.name] = setting.default
        if text is None or not str(text).strip():
            if setting.required:
                problems.append(f"{variable} is not set" + _wants(setting))
            continue
        try:
            values[setting.name] = setting.convert(str(text))
        except SettingValueError as exc:
            # NOTE: a secret's value never appears, not even a wrong one.
            shown = f" {exc}" if setting.secret else f"={str(text)!r}: {exc}"
            problems.append(variable + shown)
    return Resolved(values, problems)


def _wants(setting: Setting) -> str:
    if setting.secret:
        return f" (a secret of at least {MIN_SECRET_BYTES} bytes)"
    return f" ({setting.help})" if setting.help else ""


def shown_value(setting: Setting, raw: Mapping[str, str]) -> str:
    """How ``ecshop plugins`` shows a setting's state: ``set``/``unset``, the value
    unless it is a secret (``***``)."""
    text = raw.get(setting.name)
    if text is None or not str(text).strip():
        return "unset"
    return "set ***" if setting.secret else f"set {str(text)!r}"


def describe(setting: Setting, raw: Mapping[str, str], prefix: str) -> str:
    """One line for ``ecshop plugins``: variable, type, state, default, help."""
    parts = [prefix + setting.name.upper(), setting.describe_type()]
    if setting.required:
        parts.append("required")
    if setting.secret:
        parts.append("secret")
    parts.append(shown_value(setting, raw))
    if setting.default is not None:
        default = setting.default
        shown = _plain(default) if isinstance(default, float) else repr(default)
        parts.append(f"default {shown}")
    line = "  ".join(parts)
    return f"{line}  — {setting.help}" if setting.help else line
