"""Plugin discovery: the ``ecshop.plugins`` entry-point group and a plugins folder.

A plugin is a module exposing ``NAME``, ``VERSION`` and ``register(host)``; in
``register`` it calls ``host.add_action`` / ``host.add_filter`` / ``host.add_gateway``
(and ``host.declare_action`` / ``host.declare_filter`` / ``host.add_admin_page``).
A plugin that fails to load is reported with its reason and the shop starts without it
and without anything it registered, unless ``ECSHOP_PLUGINS_STRICT=1``. Two plugins
of one name: the first found is kept, the other refused (entry points are read first,
then the plugins folder, each in name order). A plugin may declare ``SETTINGS`` (a
sequence of :class:`ecshop.settings.Setting`): they are checked and converted before
``register``, which reads them from ``host.settings``; while one is bad or a required
one unset, the plugin "needs settings" and is not registered.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ecshop.config import PLUGIN_PREFIX, Config
from ecshop.errors import ConfigError
from ecshop.hooks import HookRegistry, PluginValidationError
from ecshop.settings import Setting, describe, resolve

log = logging.getLogger("ecshop.plugins")
GROUP = "ecshop.plugins"
ADMIN_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
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
    #: where it came from: ``entry point NAME = module`` or ``folder PATH``
    origin: str = ""
    declared: list[str] = field(default_factory=list)
    admin_pages: list[str] = field(default_factory=list)

    settings: tuple[Setting, ...] = ()
    raw_settings: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    problems: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{PLUGIN_PREFIX}{self.name.upper()}_"


@dataclass(frozen=True)
class AdminPage:
    """A page a plugin adds to the admin: ``callback(request)`` returns its HTML body."""

    slug: str
    title: str
    callback: Callable[..., Any]
    plugin: str


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
        #: admin pages by slug, in the order added
        self.admin_pages: dict[str, AdminPage] = {}
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

    def add_action(
        self, name: str, callback: Callable[..., Any], priority: int = 10,
        accepted_args: int | None = None,
    ) -> None:  # fmt: skip
        """WordPress's ``add_action``: ``accepted_args`` None passes every argument."""
        self.hooks.add_action(name, callback, priority, accepted_args, plugin=self._plugin())
        if self._current:
            self._current.hooks.append(name)

    def add_filter(
        self, name: str, callback: Callable[..., Any], priority: int = 10,
        accepted_args: int | None = None,
    ) -> None:  # fmt: skip
        """WordPress's ``add_filter``: ``accepted_args`` counts the value too."""
        self.hooks.add_filter(name, callback, priority, accepted_args, plugin=self._plugin())
        if self._current:
            self._current.hooks.append(name)

    def declare_action(self, name: str, args: tuple[str, ...] = ()) -> None:
        """Declare an action of this plugin that other plugins may then use."""
        self.hooks.declare_action(name, args, plugin=self._plugin())
        if self._current:
            self._current.declared.append(name)

    def declare_filter(self, name: str, args: tuple[str, ...] = ()) -> None:
        """Declare a filter of this plugin (``args`` come after the value)."""
        self.hooks.declare_filter(name, args, plugin=self._plugin())
        if self._current:
            self._current.declared.append(name)

    def do_action(self, name: str, *args: Any) -> None:
        """Fire an action (a plugin fires its own declared ones this way)."""
        self.hooks.do_action(name, *args)

    def apply_filters(self, name: str, value: Any, *args: Any) -> Any:
        """Apply a filter (a plugin applies its own declared ones this way)."""
        return self.hooks.apply_filters(name, value, *args)

    def add_admin_page(self, slug: str, title: str, callback: Callable[..., Any]) -> None:
        """Register an admin page: ``slug`` names it in the admin's URLs and menu,
        ``callback(request)`` returns its HTML body.

        Raises:
            PluginValidationError: a bad slug or title, a callback that cannot take one
                argument, or a slug another plugin registered.
        """
        plugin = self._plugin()
        if not isinstance(slug, str) or not ADMIN_SLUG.fullmatch(slug):
            raise PluginValidationError(
                plugin, f"admin page slug {slug!r} must be 1 to 64 of a-z, 0-9 and -"
            )
        if not isinstance(title, str) or not 0 < len(title.strip()) <= 100:
            raise PluginValidationError(plugin, f"admin page {slug!r} needs a title (1 to 100)")
        if not callable(callback) or not _accepts_one(callback):
            raise PluginValidationError(
                plugin, f"admin page {slug!r}: the callback must accept 1 argument (request)"
            )
        if slug in self.admin_pages:
            raise PluginValidationError(plugin, f"admin page {slug!r} is already registered by "
                                        f"{self.admin_pages[slug].plugin}")  # fmt: skip
        self.admin_pages[slug] = AdminPage(slug, title.strip(), callback, plugin)
        if self._current:
            self._current.admin_pages.append(slug)

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

    def _loaded(self, name: str) -> PluginInfo | None:
        """The plugin already loaded (or loading) under ``name``, if any."""
        for info in self.plugins:
            if info.name == name and info.status == "enabled":
                return info
        return None

    def _duplicate(self, info: PluginInfo, name: str) -> bool:
        """Refuse ``info`` when a plugin of ``name`` is already loaded (the first is kept)."""
        first = self._loaded(name)
        if first is None or first is info:
            return False
        self._fail(info, f"the plugin name {name!r} is already taken by the {first.origin}; "
                         f"this {info.origin} is not loaded")  # fmt: skip
        return True

    def load(self, name: str, source: str, loader: Callable[[], Any], origin: str = "") -> None:
        """Load one plugin found as ``name`` in ``source`` (``origin`` says where)."""
        info = PluginInfo(name=name, source=source, origin=origin or f"{source} {name}")
        if not self._enabled(name):
            info.status = "disabled"
            self.plugins.append(info)
            return
        if self._duplicate(info, name):
            self.plugins.append(info)
            return
        self.plugins.append(info)
        self._current = info
        try:
            module = loader()
            declared = str(getattr(module, "NAME", name))
            if declared != name and self._duplicate(info, declared):
                return
            info.name = declared
            info.version = str(getattr(module, "VERSION", "?"))
            if self._settle_settings(info, module):
                module.register(self)
        except ConfigError:
            raise  # strict mode refusing a duplicate
        except Exception as exc:
            self._discard(info)
            self._fail(info, f"{type(exc).__name__}: {exc}")
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

    def _fail(self, info: PluginInfo, error: str) -> None:
        info.status, info.error = "failed", error
        log.error("plugin %s failed to load: %s", info.name, error)
        if self.config.plugins_strict:
            raise ConfigError(f"ECSHOP_PLUGINS_STRICT: plugin {info.name} failed to load: {error}")

    def _discard(self, info: PluginInfo) -> None:
        """Take out everything a failed plugin registered."""
        self.hooks.remove_plugin(info.name)
        for name in info.gateways:
            self.gateways.pop(name, None)
        for slug in info.admin_pages:
            self.admin_pages.pop(slug, None)

    def finish_loading(self) -> None:
        """Check the registrations that waited for every plugin's declarations; a
        plugin whose hook no one declared fails, with everything it registered."""
        failed = {p.name for p in self.plugins if p.status == "failed"}
        errors = self.hooks.finish_loading(failed)
        for info in self.plugins:
            if info.status == "enabled" and info.name in errors:
                self._discard(info)
                self._fail(info, f"PluginValidationError: {errors[info.name]}")

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

    def gateway_table(self) -> list[dict[str, Any]]:
        """Every gateway found, by name: its title, live or not (and why not), test mode
        and offline (the admin's plugins page and ``GET /api/v1/admin/gateways``)."""
        table = []
        for name, gateway in sorted(self.found.items()):
            table.append({"name": name, "title": str(getattr(gateway, "title", "") or name),
                          "live": name in self.gateways,
                          "test_mode": bool(getattr(gateway, "test_mode", False)),
                          "offline": bool(getattr(gateway, "offline", False)),
                          "problems": list(self.unavailable.get(name, []))})  # fmt: skip
        return table

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
            pages = [f"admin:{slug}" for slug in p.admin_pages]
            detail = (
                p.error or "; ".join(p.problems) or ", ".join(p.gateways + p.hooks + pages) or "-"
            )
            rows.append(f"{p.name:<20} {p.version:<10} {p.source:<12} {p.status:<14} {detail}")
            rows.extend(f"    {describe(s, p.raw_settings, p.prefix)}" for s in p.settings)
        rows.append(f"gateways: {', '.join(sorted(self.gateways)) or '(none)'}")
        for name in self._gateway_names():
            rows.append(self._gateway_line(name))
            rows.extend(_gateway_settings(self.found.get(name)))
        return "\n".join(rows)


def _accepts_one(callback: Callable[..., Any]) -> bool:
    try:
        inspect.signature(callback).bind(None)
    except TypeError:
        return False
    except ValueError:  # builtins without a signature: trust them
        return True
    return True


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
    host.hooks.begin_loading()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        host.load(ep.name, "entry_point", ep.load, f"entry point {ep.name} = {ep.value}")
    folder = Path(config.plugins_dir)
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.name.startswith(("_", ".")):
                continue
            if (path.suffix == ".py" and path.is_file()) or (path / "__init__.py").is_file():
                host.load(path.stem, "folder", _folder_loader(path), f"folder plugin {path}")
    host.finish_loading()
    host.gateways = dict(host.hooks.apply_filters("payment_gateways", host.gateways))
    host.settle_gateways()
    return host
