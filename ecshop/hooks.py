"""The hook registry: WordPress-style actions and filters with numeric priorities.

Every hook is declared here with its arguments; registering an unknown name or a
callback that cannot take the declared arguments is an error that names the plugin.
Filters chain a value through callbacks (lowest priority first, equal priorities in the
order added); actions ignore results. A raising action is logged and counted and never
breaks the caller; a raising filter fails loudly with a :class:`FilterError`.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecshop.errors import ShopError

log = logging.getLogger("ecshop.hooks")

#: Filters: name -> the arguments after the filtered value.
FILTERS: dict[str, tuple[str, ...]] = {
    "cart_totals": ("cart",),  # value: {"subtotal", "shipping", "total", "currency"}
    "checkout_validate": ("cart",),  # value: list of error messages
    "payment_gateways": (),  # value: {name: Gateway}
    "product_view": (),  # value: the product as the API shows it
}
#: Actions: name -> their arguments.
ACTIONS: dict[str, tuple[str, ...]] = {
    "order_created": ("order",),
    "order_paid": ("order",),
    "order_cancelled": ("order",),
    "order_shipped": ("order",),
    "order_refunded": ("order",),
    "order_needs_attention": ("order",),
    # a payment that came after its order's units were sold again was refunded: tell the buyer
    "late_payment_refunded": ("order",),
    # the gateway of a pending order has not answered for too long: tell the admin
    "order_gateway_unreachable": ("order",),
    "payment_notification": ("event",),
    "shop_started": ("shop",),
}


class PluginValidationError(ShopError):
    """A plugin registered an unknown hook or a callback with the wrong signature."""

    code = "plugin_invalid"

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin!r}: {message}", plugin=plugin)
        self.plugin = plugin


class FilterError(ShopError):
    """A filter callback raised: the request fails loudly, naming the plugin."""

    code = "filter_failed"


@dataclass(frozen=True)
class _Entry:
    priority: int
    seq: int
    callback: Callable[..., Any]
    plugin: str


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

    def _add(
        self, kind: str, name: str, callback: Callable[..., Any], priority: int, plugin: str
    ) -> None:
        declared = FILTERS if kind == "filter" else ACTIONS
        if name not in declared:
            raise PluginValidationError(
                plugin, f"unknown {kind} {name!r}; known: {', '.join(sorted(declared))}"
            )
        if type(priority) is not int:
            raise PluginValidationError(plugin, f"priority of {name!r} must be an integer")
        count = len(declared[name]) + (1 if kind == "filter" else 0)
        if not callable(callback) or not _accepts(callback, count):
            raise PluginValidationError(
                plugin, f"callback for {kind} {name!r} must accept {count} argument(s)"
            )
        self._seq += 1
        entries = self._hooks.setdefault(name, [])
        entries.append(_Entry(priority, self._seq, callback, plugin))
        entries.sort(key=lambda e: (e.priority, e.seq))

    def add_filter(
        self, name: str, callback: Callable[..., Any], priority: int = 10, *, plugin: str = "core"
    ) -> None:
        self._add("filter", name, callback, priority, plugin)

    def add_action(
        self, name: str, callback: Callable[..., Any], priority: int = 10, *, plugin: str = "core"
    ) -> None:
        self._add("action", name, callback, priority, plugin)

    def _remove(self, name: str, callback: Callable[..., Any], priority: int | None) -> bool:
        entries = self._hooks.get(name, [])
        for entry in entries:
            if entry.callback == callback and (priority is None or entry.priority == priority):
                entries.remove(entry)
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
        return name in FILTERS and bool(self._hooks.get(name))

    def has_action(self, name: str) -> bool:
        return name in ACTIONS and bool(self._hooks.get(name))

    def apply_filters(self, name: str, value: Any, *args: Any) -> Any:
        """Chain ``value`` through every callback of the filter ``name``."""
        if name not in FILTERS:
            raise KeyError(f"unknown filter {name!r}")
        for entry in list(self._hooks.get(name, ())):
            try:
                value = entry.callback(value, *args)
            except Exception as exc:
                raise FilterError(f"filter {name!r} of plugin {entry.plugin!r} failed: {exc}",
                                  plugin=entry.plugin, hook=name) from exc  # fmt: skip
        return value

    def do_action(self, name: str, *args: Any) -> None:
        """Run every callback of the action ``name``; one that raises is logged and counted."""
        if name not in ACTIONS:
            raise KeyError(f"unknown action {name!r}")
        for entry in list(self._hooks.get(name, ())):
            try:
                entry.callback(*args)
            except Exception:
                self.action_errors[(entry.plugin, name)] += 1
                log.exception("action %s of plugin %s failed", name, entry.plugin)
