"""Builds the plugin manager: hookspecs, built-in plugins, entry points, config plugins.

A factory, never a module global: every runtime (and every test) gets its own manager, so
registering a plugin in one test cannot leak into another.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

__all__ = ["DEFAULT_PLUGINS", "DECISION_HOOKS", "LOOP_SAFE_MARK", "get_plugin_manager", "blocking_plugins"]

#: Built-in plugins, registered first and marked ``trylast`` so user plugins win.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "segmint.plugins.catalog_json",
    "segmint.plugins.render_html",
    "segmint.plugins.identify_default",
    "segmint.plugins.strategy_bestsellers",
    "segmint.plugins.strategy_new_arrivals",
    "segmint.plugins.strategy_recently_viewed",
    "segmint.plugins.strategy_viewed_based",
    "segmint.plugins.strategy_markdowns",
    "segmint.plugins.strategy_bundles",
    "segmint.plugins.strategy_user_based",
    "segmint.plugins.strategy_manual",
    "segmint.plugins.strategy_cart_reminder",
    "segmint.plugins.strategy_new_vs_returning",
    "segmint.plugins.strategy_discount_affinity",
)


#: Hooks whose implementations (or what they return: strategies, operators) run while a page's
#: slots are decided and rendered.
DECISION_HOOKS: tuple[str, ...] = (
    "segmint_register_strategies",
    "segmint_filter_operators",
    "segmint_enrich_document",
    "segmint_render_widget",
    "segmint_decision_made",
)
#: A plugin sets ``segmint_loop_safe = True`` to promise its decision hooks never block (no
#: I/O, no locks held by others, bounded CPU), so decisions may run on the event loop.
LOOP_SAFE_MARK = "segmint_loop_safe"


def _import_plugin(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure names the plugin
        raise PluginError(f"cannot import plugin module: {exc}", plugin=name) from exc


class SegmintPluginManager(pluggy.PluginManager):
    """pluggy's manager, counting registrations: ``generation`` changes whenever the set of
    plugins may have, so a per-request check (``Segmint.decides_on_loop``) can tell that
    nothing changed without listing every plugin."""

    generation = 0

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        self.generation += 1
        return super().register(plugin, name)

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        self.generation += 1
        return super().unregister(plugin, name)

    def set_blocked(self, name: str) -> None:
        self.generation += 1
        super().set_blocked(name)


def get_plugin_manager(
    extra_plugins: Iterable[str | ModuleType | Any] = (),
    *,
    load_entrypoints: bool = True,
    builtins: Iterable[str] = DEFAULT_PLUGINS,
) -> pluggy.PluginManager:
    """A fresh plugin manager with the built-ins, entry-point plugins and ``extra_plugins``.

    ``extra_plugins`` are module paths (from the config's ``plugins = [...]``), modules or
    plugin objects. ``check_pending()`` runs last, so a misspelled ``segmint_*`` hook name in
    any plugin fails here, naming the plugin.
    """
    pm = SegmintPluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in builtins:
        pm.register(_import_plugin(name), name=name)
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"cannot load entry-point plugins: {exc}") from exc
    for plugin in extra_plugins:
        obj = _import_plugin(plugin) if isinstance(plugin, str) else plugin
        name = plugin if isinstance(plugin, str) else None
        if name is not None and pm.has_plugin(name):
            continue
        try:
            pm.register(obj, name=name)
        except Exception as exc:  # noqa: BLE001
            raise PluginError(str(exc), plugin=name or repr(obj)) from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc), plugin=getattr(exc, "plugin", None) and pm.get_name(exc.plugin)) from exc
    return pm


def blocking_plugins(pm: pluggy.PluginManager) -> list[str]:
    """Names of the plugins that may block while a page is decided (sorted).

    A plugin counts unless it is a built-in or carries ``segmint_loop_safe = True``, and it
    implements one of ``DECISION_HOOKS``. With none, the middleware decides on the event loop
    (no thread hop); with any, decisions run in its worker pool, where a hang costs one page's
    widget instead of stalling the server.
    """
    names: set[str] = set()
    for hook in DECISION_HOOKS:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            name = pm.get_name(impl.plugin) or repr(impl.plugin)
            if name in DEFAULT_PLUGINS or getattr(impl.plugin, LOOP_SAFE_MARK, False) is True:
                continue
            names.add(name)
    return sorted(names)
