"""The hook registry: WordPress-style actions and filters with numeric priorities.

Every core hook is declared here with its arguments; a plugin may declare hooks of its
own (:meth:`HookRegistry.declare_action`). Registering an unknown name or a callback
that cannot take the arguments it will be given is an error that names the plugin.
While plugins load (:meth:`HookRegistry.begin_loading`), a registration on a name no
one has declared yet waits for the end of loading, so a plugin may use the hooks of a
plugin loaded after it. Filters chain a value through callbacks (lowest priority
first, equal priorities in the order added); actions ignore results. A callback takes
every argument the hook passes, or only the first ``accepted_args`` of them. A raising
action is logged and counted and never breaks the caller; a raising filter fails loudly
with a :class:`FilterError`.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecshop import metrics
from ecshop.errors import ShopError

log = logging.getLogger("ecshop.hooks")

#: Filters: name -> the arguments after the filtered value.
FILTERS: dict[str, tuple[str, ...]] = {
    # value: {"subtotal", "shipping", "fees", "total", "currency", ...} (ecshop.totals)
    "cart_totals": ("cart",),
    "checkout_validate": ("cart",),  # value: list of error messages
    "payment_gateways": (),  # value: {name: Gateway}
    "product_view": (),  # value: the product as the API shows it
    "mail_before_send": (),  # value: a message (ecshop.mail.MESSAGE) or None
    # value: the mailer, a callable sending one message (raising to have it retried)
    "mailer": (),
    "checkout_fields": (),  # value: list of checkout form fields (ecshop.pages)
    "storefront_context": ("template",),  # value: a template's context dict
}
#: Actions: name -> their arguments.
ACTIONS: dict[str, tuple[str, ...]] = {
    "order_created": ("order",),
    "order_status_changed": ("old_status", "new_status", "order"),
    "order_paid": ("order",),
    "order_cancelled": ("order",),
    "order_shipped": ("order",),
    "order_refunded": ("order",),
    "order_needs_attention": ("order",),
    # a payment that came after its order's units were sold again was refunded: tell the buyer
    "late_payment_refunded": ("order",),
    "payment_received": ("amount", "order"),
    "refund_made": ("amount", "order"),
    # the gateway of a pending order has not answered for too long: tell the admin
    "order_gateway_unreachable": ("order",),
    "payment_notification": ("event",),
    "shop_started": ("shop",),
}
HOOK_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
ARG_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_ARGS = 8


class PluginValidationError(ShopError):
    """A plugin registered an unknown hook or a callback with the wrong signature."""

    code = "plugin_invalid"

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin!r}: {message}", plugin=plugin)
        self.plugin = plugin


class FilterError(ShopError):
    """A filter callback raised: the request fails loudly, naming the plugin."""

    code = "filter_failed"


class HookUsageError(ShopError):
    """A hook was fired with another number of arguments than it declares."""

    code = "hook_misuse"


@dataclass(frozen=True)
class _Entry:
    priority: int
    seq: int
    callback: Callable[..., Any]
    plugin: str
    accepted: int  # how many of the hook's arguments the callback receives


@dataclass(frozen=True)
class _Pending:
    kind: str
    name: str
    callback: Callable[..., Any]
    priority: int
    accepted_args: int | None
    plugin: str
    seq: int


def _accepts(callback: Callable[..., Any], count: int) -> bool:
    try:
        inspect.signature(callback).bind(*([None] * count))
    except TypeError:
        return False
    except ValueError:  # builtins without a signature: trust them
        return True
    return True


class HookRegistry:
    """Actions and filters of one shop."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[_Entry]] = {}
        self._seq = 0
        self.action_errors: Counter[tuple[str, str]] = Counter()
        self.filters: dict[str, tuple[str, ...]] = dict(FILTERS)
        self.actions: dict[str, tuple[str, ...]] = dict(ACTIONS)
        #: hook name -> the plugin that declared it (core hooks are not listed)
        self.declared_by: dict[str, str] = {}
        self._pending: list[_Pending] | None = None

    def _declared(self, kind: str) -> dict[str, tuple[str, ...]]:
        return self.filters if kind == "filter" else self.actions

    # -- declaring ------------------------------------------------------------------------
    def declare_filter(self, name: str, args: tuple[str, ...] = (), *, plugin: str) -> None:
        """Declare the filter ``name`` whose callbacks get the value and ``args``."""
        self._declare("filter", name, args, plugin)

    def declare_action(self, name: str, args: tuple[str, ...] = (), *, plugin: str) -> None:
        """Declare the action ``name`` whose callbacks get ``args``."""
        self._declare("action", name, args, plugin)

    def _declare(self, kind: str, name: str, args: Any, plugin: str) -> None:
        if not isinstance(name, str) or not HOOK_NAME.fullmatch(name):
            raise PluginValidationError(
                plugin, f"hook name {name!r} must be 1 to 64 of a-z, 0-9 and _, from a letter"
            )
        owner = self.declared_by.get(name, "core")
        if name in self.filters or name in self.actions:
            raise PluginValidationError(plugin, f"hook {name!r} is already declared by {owner}")
        names = tuple(args) if isinstance(args, (tuple, list)) else None
        if (
            names is None
            or len(names) > MAX_ARGS
            or not all(isinstance(a, str) and ARG_NAME.fullmatch(a) for a in names)
        ):
            raise PluginValidationError(
                plugin, f"arguments of {name!r} must be a tuple of at most {MAX_ARGS} names"
            )
        self._declared(kind)[name] = names
        self.declared_by[name] = plugin

    # -- registering ----------------------------------------------------------------------
    def _arity(self, kind: str, name: str, accepted_args: int | None, plugin: str) -> int:
        full = len(self._declared(kind)[name]) + (1 if kind == "filter" else 0)
        if accepted_args is None:
            return full
        low = 1 if kind == "filter" else 0
        if type(accepted_args) is not int or not low <= accepted_args <= full:
            raise PluginValidationError(
                plugin, f"accepted_args of {kind} {name!r} must be {low} to {full}"
            )
        return accepted_args

    def _check_callback(
        self, kind: str, name: str, callback: Callable[..., Any], accepted_args: int | None,
        plugin: str,
    ) -> int:  # fmt: skip
        count = self._arity(kind, name, accepted_args, plugin)
        if not _accepts(callback, count):
            names = (["value"] if kind == "filter" else []) + list(self._declared(kind)[name])
            hint = "" if accepted_args is not None else "; pass accepted_args=N to take the first N"
            raise PluginValidationError(
                plugin, f"callback for {kind} {name!r} must accept {count} argument(s) "
                f"({', '.join(names[:count]) or 'none'}){hint}",
            )  # fmt: skip
        return count

    def _add(self, kind: str, name: str, callback: Callable[..., Any], priority: int,
             accepted_args: int | None, plugin: str) -> None:  # fmt: skip
        if type(priority) is not int:
            raise PluginValidationError(plugin, f"priority of {name!r} must be an integer")
        if not callable(callback):
            raise PluginValidationError(plugin, f"callback for {kind} {name!r} is not callable")
        self._seq += 1
        if name not in self._declared(kind) and self._pending is not None:
            # NOTE: a plugin loaded later may still declare it: checked at finish_loading.
            self._pending.append(
                _Pending(kind, name, callback, priority, accepted_args, plugin, self._seq)
            )
            return
        self._insert(kind, name, callback, priority, accepted_args, plugin, self._seq)

    def _insert(self, kind: str, name: str, callback: Callable[..., Any], priority: int,
                accepted_args: int | None, plugin: str, seq: int) -> None:  # fmt: skip
        declared = self._declared(kind)
        if name not in declared:
            raise PluginValidationError(
                plugin, f"unknown {kind} {name!r}; known: {', '.join(sorted(declared))}"
            )
        accepted = self._check_callback(kind, name, callback, accepted_args, plugin)
        entries = self._hooks.setdefault(name, [])
        entries.append(_Entry(priority, seq, callback, plugin, accepted))
        entries.sort(key=lambda e: (e.priority, e.seq))

    def add_filter(
        self, name: str, callback: Callable[..., Any], priority: int = 10,
        accepted_args: int | None = None, *, plugin: str = "core",
    ) -> None:  # fmt: skip
        """Add ``callback`` to the filter ``name``.

        Args:
            accepted_args: how many arguments the callback takes, the value included
                (WordPress's ``$accepted_args``); None: all that the filter passes.
        """
        self._add("filter", name, callback, priority, accepted_args, plugin)

    def add_action(
        self, name: str, callback: Callable[..., Any], priority: int = 10,
        accepted_args: int | None = None, *, plugin: str = "core",
    ) -> None:  # fmt: skip
        """Add ``callback`` to the action ``name`` (``accepted_args`` as for filters)."""
        self._add("action", name, callback, priority, accepted_args, plugin)

    # -- loading --------------------------------------------------------------------------
    def begin_loading(self) -> None:
        """From now on, registrations on undeclared names wait for :meth:`finish_loading`."""
        self._pending = []

    def finish_loading(self, failed: set[str]) -> dict[str, str]:
        """Check and add the waiting registrations; return ``{plugin: error}`` for the
        plugins that registered on a hook no one declared, or with a wrong callback.

        Everything of a failed plugin (those in ``failed`` and the new ones) is removed,
        its declarations included, and so is whatever used a hook only it declared.
        """
        pending, self._pending = self._pending or [], None
        errors: dict[str, str] = {}
        dead = set(failed)
        for plugin in dead:
            self.remove_plugin(plugin)
        while True:
            for item in pending:
                if item.plugin in dead:
                    continue
                try:
                    self._check_pending(item)
                except PluginValidationError as exc:
                    errors.setdefault(item.plugin, exc.message)
            for name, entries in self._hooks.items():  # a hook whose declarer failed
                for entry in entries:
                    if entry.plugin not in dead and name not in self.filters | self.actions:
                        errors.setdefault(entry.plugin, f"hook {name!r} is no longer declared")
            new = set(errors) - dead
            if not new:
                break
            dead |= new
            for plugin in new:
                self.remove_plugin(plugin)
        for item in pending:
            if item.plugin not in dead:
                self._insert(item.kind, item.name, item.callback, item.priority,
                             item.accepted_args, item.plugin, item.seq)  # fmt: skip
        return errors

    def _check_pending(self, item: _Pending) -> None:
        declared = self._declared(item.kind)
        if item.name not in declared:
            owner = self.declared_by.get(item.name)
            other = f" (it is a {'filter' if item.kind == 'action' else 'action'})" if (
                item.name in self.filters or item.name in self.actions) else ""  # fmt: skip
            raise PluginValidationError(
                item.plugin, f"unknown {item.kind} {item.name!r}{other}; known: "
                f"{', '.join(sorted(declared))}" + (f" (declared by {owner})" if owner else ""),
            )  # fmt: skip
        self._check_callback(item.kind, item.name, item.callback, item.accepted_args, item.plugin)

    def remove_plugin(self, plugin: str) -> None:
        """Take every callback and declaration of ``plugin`` out of the registry."""
        for entries in self._hooks.values():
            entries[:] = [e for e in entries if e.plugin != plugin]
        for name in [n for n, owner in self.declared_by.items() if owner == plugin]:
            del self.declared_by[name]
            self.filters.pop(name, None)
            self.actions.pop(name, None)

    # -- removing -------------------------------------------------------------------------
    def _remove(self, name: str, callback: Callable[..., Any], priority: int | None) -> bool:
        entries = self._hooks.get(name, [])
        for entry in entries:
            if entry.callback == callback and (priority is None or entry.priority == priority):
                entries.remove(entry)
                return True
        if self._pending:
            for item in self._pending:
                if (
                    item.name == name
                    and item.callback == callback
                    and (priority is None or item.priority == priority)
                ):
                    self._pending.remove(item)
                    return True
        return False

    def remove_filter(
        self, name: str, callback: Callable[..., Any], priority: int | None = None
    ) -> bool:
        return self._remove(name, callback, priority)

    def remove_action(
        self, name: str, callback: Callable[..., Any], priority: int | None = None
    ) -> bool:
        return self._remove(name, callback, priority)

    def has_filter(self, name: str) -> bool:
        return name in self.filters and bool(self._hooks.get(name))

    def has_action(self, name: str) -> bool:
        return name in self.actions and bool(self._hooks.get(name))

    # -- firing ---------------------------------------------------------------------------
    def _check_call(self, kind: str, name: str, args: tuple[Any, ...]) -> None:
        declared = self._declared(kind)
        if name not in declared:
            raise HookUsageError(f"unknown {kind} {name!r}", hook=name)
        if len(args) != len(declared[name]):
            raise HookUsageError(
                f"{kind} {name!r} takes {len(declared[name])} argument(s) after "
                f"{'the value' if kind == 'filter' else 'its name'}, got {len(args)}", hook=name,
            )  # fmt: skip

    def apply_filters(
        self, name: str, value: Any, *args: Any,
        step: Callable[[Any, Any, str], Any] | None = None,
    ) -> Any:  # fmt: skip
        """Chain ``value`` through every callback of the filter ``name``.

        ``step(before, returned, plugin)``, when given, sees each callback's result and
        returns the value passed on (the core uses it to keep what earlier callbacks
        added, ``ecshop.totals``).
        """
        self._check_call("filter", name, args)
        for entry in list(self._hooks.get(name, ())):
            try:
                returned = entry.callback(value, *args[: entry.accepted - 1])
            except Exception as exc:
                raise FilterError(f"filter {name!r} of plugin {entry.plugin!r} failed: {exc}",
                                  plugin=entry.plugin, hook=name) from exc  # fmt: skip
            value = returned if step is None else step(value, returned, entry.plugin)
        return value

    def do_action(self, name: str, *args: Any) -> None:
        """Run every callback of the action ``name``; one that raises is logged and counted."""
        self._check_call("action", name, args)
        for entry in list(self._hooks.get(name, ())):
            try:
                entry.callback(*args[: entry.accepted])
            except Exception:
                self.action_errors[(entry.plugin, name)] += 1
                metrics.PLUGIN_ACTION_ERRORS.labels(hook=name, plugin=entry.plugin).inc()
                log.exception("action %s of plugin %s failed", name, entry.plugin)
