"""Plugin discovery: the ``ecshop.plugins`` entry-point group and a plugins folder.

A plugin is a module exposing ``NAME``, ``VERSION`` and ``register(host)``; in
``register`` it calls ``host.add_action`` / ``host.add_filter`` / ``host.add_gateway``.
A plugin that fails to load is reported with its reason and the shop starts without it,
unless ``ECSHOP_PLUGINS_STRICT=1``. A plugin may declare ``SETTINGS`` (a sequence of
:class:`ecshop.settings.Setting`): they are checked and converted before ``register``,
which reads them from ``host.settings``; while one is bad or a required one unset, the
plugin "needs settings" and is not registered.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ecshop.config import PLUGIN_PREFIX, Config
from ecshop.errors import ConfigError
from ecshop.hooks import HookRegistry
from ecshop.settings import Setting, describe, resolve

log = logging.getLogger("ecshop.plugins")
GROUP = "ecshop.plugins"
NEEDS_SETTINGS = "needs settings"


@dataclass
class PluginInfo:
    """One plugin found, and what became of it (``status``: ``enabled``, ``disabled``,
    ``failed`` with ``error``, or ``needs settings`` with ``problems``)."""

    name: str
    version: str = "?"
    source: str = "folder"
    status: str = "enabled"
    error: str = ""
    hooks: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    settings: tuple[Setting, ...] = ()
    raw_settings: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    problems: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{PLUGIN_PREFIX}{self.name.upper()}_"


def _declared(module: Any) -> tuple[Setting, ...]:
    declared = tuple(getattr(module, "SETTINGS", ()) or ())
    for item in declared:
        if not isinstance(item, Setting):
            raise TypeError(f"SETTINGS holds {item!r}, not an ecshop.settings.Setting")
    return declared


class PluginHost:
    """What plugins register into: the hook registry and the gateways."""

    def __init__(self, config: Config, hooks: HookRegistry | None = None) -> None:
        self.config = config
        self.hooks = hooks or HookRegistry()
        self.gateways: dict[str, Any] = {}
        # gateways found but not live, with why (missing or short settings)
        self.unavailable: dict[str, list[str]] = {}
        self.plugins: list[PluginInfo] = []
        #: every gateway found, live or not (``ecshop plugins`` shows their settings)
        self.found: dict[str, Any] = {}
        self._current: PluginInfo | None = None
        self._values: dict[str, Any] = {}

    @property
    def settings(self) -> dict[str, Any]:
        """The settings of the plugin being registered, converted to their declared
        types (read them in ``register``)."""
        return dict(self._values)

    def _plugin(self) -> str:
        return self._current.name if self._current else "core"

    def add_action(self, name: str, callback: Callable[..., Any], priority: int = 10) -> None:
        self.hooks.add_action(name, callback, priority, plugin=self._plugin())
        if self._current:
            self._current.hooks.append(name)

    def add_filter(self, name: str, callback: Callable[..., Any], priority: int = 10) -> None:
        self.hooks.add_filter(name, callback, priority, plugin=self._plugin())
        if self._current:
            self._current.hooks.append(name)

    def remove_action(
        self, name: str, callback: Callable[..., Any], priority: int | None = None
    ) -> bool:
        return self.hooks.remove_action(name, callback, priority)

    def remove_filter(
        self, name: str, callback: Callable[..., Any], priority: int | None = None
    ) -> bool:
        return self.hooks.remove_filter(name, callback, priority)

    def add_gateway(self, gateway_class: type) -> None:
        name = str(getattr(gateway_class, "name", ""))
        if not name:
            raise ValueError("a gateway class needs a name")
        self.gateways[name] = gateway_class(self.config.gateway_settings(name))
        self.unavailable.pop(name, None)
        if self._current:
            self._current.gateways.append(name)

    def _enabled(self, name: str) -> bool:
        if name in self.config.plugins_disabled:
            return False
        return not self.config.plugins_enabled or name in self.config.plugins_enabled

    def load(self, name: str, source: str, loader: Callable[[], Any]) -> None:
        info = PluginInfo(name=name, source=source)
        self.plugins.append(info)
        if not self._enabled(name):
            info.status = "disabled"
            return
        self._current = info
        try:
            module = loader()
            info.name = str(getattr(module, "NAME", name))
            info.version = str(getattr(module, "VERSION", "?"))
            if self._settle_settings(info, module):
                module.register(self)
        except Exception as exc:
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("plugin %s failed to load: %s", name, info.error)
            if self.config.plugins_strict:
                raise ConfigError(
                    f"ECSHOP_PLUGINS_STRICT: plugin {name} failed to load: {info.error}"
                ) from exc
        finally:
            self._current = None
            self._values = {}

    def _settle_settings(self, info: PluginInfo, module: Any) -> bool:
        """Check the plugin's declared settings; False (``needs settings``) when one is
        bad or a required one unset."""
        info.settings = _declared(module)
        info.raw_settings = dict(self.config.plugin_settings(info.name))
        resolved = resolve(info.settings, info.raw_settings, info.prefix)
        if resolved.problems:
            info.status, info.problems = NEEDS_SETTINGS, resolved.problems
            log.info("plugin %s needs settings: %s", info.name, "; ".join(info.problems))
            return False
        self._values = resolved.values
        return True

    def settle_gateways(self) -> None:
        """Keep only live gateways in :attr:`gateways`; the others go to
        :attr:`unavailable` with their reasons (a gateway that needs a secret and has
        none, or a short one, must never verify a notification)."""
        self.found.update(self.gateways)
        live: dict[str, Any] = {}
        for name, gateway in self.gateways.items():
            try:
                missing = list(gateway.missing_settings())
                gateway.hold_seconds()
            except Exception as exc:  # a bad setting value is a reason too
                missing = [str(getattr(exc, "message", exc))]
            if missing:
                self.unavailable[name] = missing
            else:
                live[name] = gateway
        self.gateways = live

    def gateway_lines(self) -> list[str]:
        """One line per gateway found: live or not, and why."""
        return [self._gateway_line(name) for name in self._gateway_names()]

    def _gateway_names(self) -> list[str]:
        return sorted(set(self.gateways) | set(self.unavailable))

    def _gateway_line(self, name: str) -> str:
        gateway = self.gateways.get(name)
        if gateway is None:
            return f"gateway {name}: {NEEDS_SETTINGS}: {'; '.join(self.unavailable[name])}"
        kind = "offline" if gateway.offline else "test mode" if gateway.test_mode else "live"
        return f"gateway {name}: live ({kind})"

    def plugin_lines(self) -> list[str]:
        """One line per enabled plugin that does not run: failed, or needs settings."""
        lines = []
        for p in self.plugins:
            if p.status == "failed":
                lines.append(f"plugin {p.name}: failed to load: {p.error}")
            elif p.status == NEEDS_SETTINGS:
                lines.append(f"plugin {p.name}: {NEEDS_SETTINGS}: {'; '.join(p.problems)}")
        return lines

    def problems(self) -> list[str]:
        """Every reason an enabled plugin or one of its gateways cannot run, one line
        each (``ecshop plugins --strict``)."""
        lines = [f"plugin {p.name}: failed to load: {p.error}"
                 for p in self.plugins if p.status == "failed"]  # fmt: skip
        lines += [f"plugin {p.name}: {problem}"
                  for p in self.plugins if p.status == NEEDS_SETTINGS for problem in p.problems]  # fmt: skip
        lines += [f"gateway {name}: {problem}"
                  for name, why in sorted(self.unavailable.items()) for problem in why]  # fmt: skip
        return lines

    def report(self) -> str:
        """The table ``ecshop plugins`` prints: each plugin and gateway with its status
        and its settings (secrets masked)."""
        rows = [
            f"{'plugin':<20} {'version':<10} {'source':<12} {'status':<14} gateways / hooks / error"
        ]
        for p in self.plugins:
            detail = p.error or "; ".join(p.problems) or ", ".join(p.gateways + p.hooks) or "-"
            rows.append(f"{p.name:<20} {p.version:<10} {p.source:<12} {p.status:<14} {detail}")
            rows.extend(f"    {describe(s, p.raw_settings, p.prefix)}" for s in p.settings)
        rows.append(f"gateways: {', '.join(sorted(self.gateways)) or '(none)'}")
        for name in self._gateway_names():
            rows.append(self._gateway_line(name))
            rows.extend(_gateway_settings(self.found.get(name)))
        return "\n".join(rows)


def _gateway_settings(gateway: Any) -> list[str]:
    """The settings lines of one gateway (none for an object that declares none)."""
    declared = getattr(type(gateway), "declared_settings", None)
    if declared is None:
        return []
    raw = getattr(gateway, "raw_settings", {})
    prefix = type(gateway).variable_prefix()
    return [f"    {describe(s, raw, prefix)}" for s in declared()]


def _folder_loader(path: Path) -> Callable[[], Any]:
    def load() -> Any:
        target = path / "__init__.py" if path.is_dir() else path
        module_name = f"ecshop_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, target)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module

    return load


def load_plugins(config: Config, hooks: HookRegistry | None = None) -> PluginHost:
    """Find, load and register every plugin; gateways pass through ``payment_gateways``."""
    host = PluginHost(config, hooks)
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        host.load(ep.name, "entry_point", ep.load)
    folder = Path(config.plugins_dir)
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.name.startswith(("_", ".")):
                continue
            if (path.suffix == ".py" and path.is_file()) or (path / "__init__.py").is_file():
                host.load(path.stem, "folder", _folder_loader(path))
    host.gateways = dict(host.hooks.apply_filters("payment_gateways", host.gateways))
    host.settle_gateways()
    return host
