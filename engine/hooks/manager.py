"""Builds the plugin manager (hookspecs, built-in plugins, entry points, config plugins) and
says where each hook runs, so the runtime can tell which plugins may block the event loop.

A factory, never a module global: every runtime (and every test) gets its own manager, so
registering a plugin in one test cannot leak into another.

The engine names no plugin module: segmint's own distribution declares its built-ins in the
entry point group ``segmint.builtins`` (pointing at ``segmint.plugins.DEFAULT_PLUGINS``), which
every manager loads; third-party plugins come from the group ``segmint``.
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import pluggy

from ..errors import PluginError
from . import specs

__all__ = [
    "Runs",
    "HOOK_RUNS",
    "DECISION_HOOKS",
    "IDENTIFY_HOOKS",
    "LOOP_SAFE_MARK",
    "BUILTINS_GROUP",
    "SegmintPluginManager",
    "builtin_plugins",
    "get_plugin_manager",
    "blocking_plugins",
]

#: The entry point group of segmint's own distribution that names its built-in plugins.
BUILTINS_GROUP = f"{specs.PROJECT_NAME}.builtins"


class Runs(enum.Enum):
    """Where (in which thread, when) a hook's implementations run. The value is the sentence
    docs/plugins.md states for each hook (``Runs: ...``); a test compares the two."""

    LOAD = "when a config is loaded or reloaded, never while a page is served."
    LOAD_FEEDS_DECISIONS = (
        "when a config is loaded or reloaded; what it returns runs while pages are decided: "
        "on the event loop when every plugin on the decision path is loop-safe, else in the "
        "worker pool."
    )
    IDENTIFY = (
        "on every request, before the profile is read: on the event loop when every plugin "
        "implementing it is loop-safe, else in the worker pool."
    )
    DECISION = (
        "while a page is decided: on the event loop when every plugin on the decision path is "
        "loop-safe, else in the worker pool."
    )
    RECORDED = (
        "after events are stored: in the event writer's background thread (page views, "
        "impressions), or in the thread that called `Segmint.record` (the event intake runs it "
        "in the worker pool); segmint never calls it on the event loop."
    )


#: Every hook and where it runs (``tests/test_docs.py`` checks docs/plugins.md against it).
HOOK_RUNS: dict[str, Runs] = {
    "segmint_register_strategies": Runs.LOAD_FEEDS_DECISIONS,
    "segmint_filter_operators": Runs.LOAD_FEEDS_DECISIONS,
    "segmint_field_catalog": Runs.LOAD,
    "segmint_load_catalog": Runs.LOAD,
    "segmint_identify_visitor": Runs.IDENTIFY,
    "segmint_enrich_document": Runs.DECISION,
    "segmint_render_widget": Runs.DECISION,
    "segmint_decision_made": Runs.DECISION,
    "segmint_events_recorded": Runs.RECORDED,
}

#: Hooks whose implementations (or what they return: strategies, operators) run while a page's
#: slots are decided and rendered.
DECISION_HOOKS: tuple[str, ...] = tuple(
    hook for hook, runs in HOOK_RUNS.items() if runs in (Runs.LOAD_FEEDS_DECISIONS, Runs.DECISION))
#: Hooks that run on every request before the profile is read (who the visitor is).
IDENTIFY_HOOKS: tuple[str, ...] = tuple(hook for hook, runs in HOOK_RUNS.items() if runs is Runs.IDENTIFY)
#: A plugin sets ``segmint_loop_safe = True`` to promise its hooks never block (no I/O, no
#: locks held by others, bounded CPU), so decisions and identification may run on the event loop.
LOOP_SAFE_MARK = "segmint_loop_safe"


def _import_plugin(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure names the plugin
        raise PluginError(f"cannot import plugin module: {exc}", plugin=name) from exc


def builtin_plugins() -> tuple[str, ...]:
    """The module names of segmint's built-in plugins, in registration order, read from the
    ``segmint.builtins`` entry points of segmint's own distribution (the list itself is
    ``segmint.plugins.DEFAULT_PLUGINS``; the engine imports nothing from ``plugins/``)."""
    try:
        points = importlib.metadata.distribution(specs.PROJECT_NAME).entry_points.select(group=BUILTINS_GROUP)
        names: list[str] = []
        for point in points:
            names.extend(point.load())
    except Exception as exc:  # noqa: BLE001 - a broken install must say how to mend it
        raise PluginError(f"cannot read the built-in plugins (entry point group {BUILTINS_GROUP!r} of the "
                          f"{specs.PROJECT_NAME!r} distribution): {exc}; reinstall segmint "
                          "(e.g. pip install -e .)") from exc
    if not names:
        raise PluginError(f"the {specs.PROJECT_NAME!r} distribution declares no built-in plugins (entry point "
                          f"group {BUILTINS_GROUP!r}); its metadata is stale: reinstall segmint (e.g. pip install -e .)")
    return tuple(names)


class SegmintPluginManager(pluggy.PluginManager):
    """pluggy's manager, telling when its plugins may have changed: ``generation`` counts the
    changes, so a cache of hook callers (``calling.py``) can tell that nothing changed without
    listing every plugin, and ``on_change`` callbacks run after each one (the runtime works
    out again whether decisions and identification may run on the event loop, instead of
    checking on every page). ``builtins`` holds the names of the built-in plugins it registered."""

    generation = 0

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.builtins: frozenset[str] = frozenset()
        #: ``calling.py``'s one-plugin hook callers by hook name, each with the generation it
        #: was built for.
        self.callers: dict[str, tuple[int, tuple[tuple[str, pluggy.HookCaller], ...]]] = {}
        #: Called (no arguments) after a plugin was registered, unregistered or blocked.
        self.on_change: list[Callable[[], None]] = []

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        self.generation += 1
        try:
            return super().register(plugin, name)
        finally:
            self._changed()

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        self.generation += 1
        try:
            return super().unregister(plugin, name)
        finally:
            self._changed()

    def set_blocked(self, name: str) -> None:
        self.generation += 1
        try:
            super().set_blocked(name)
        finally:
            self._changed()

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()


def get_plugin_manager(
    extra_plugins: Iterable[str | ModuleType | Any] = (),
    *,
    load_entrypoints: bool = True,
    builtins: Iterable[str] | None = None,
) -> SegmintPluginManager:
    """A fresh plugin manager with the built-ins, entry-point plugins and ``extra_plugins``.

    ``builtins``: module names of the built-in plugins to register (default: all of them,
    ``builtin_plugins()``); tests and benchmarks pick a subset. ``extra_plugins`` are module
    paths (from the config's ``plugins = [...]``), modules or plugin objects.
    ``check_pending()`` runs last, so a misspelled ``segmint_*`` hook name in any plugin fails
    here, naming the plugin.
    """
    pm = SegmintPluginManager(specs.PROJECT_NAME)
    pm.add_hookspecs(specs)
    names = builtin_plugins() if builtins is None else tuple(builtins)
    for name in names:
        pm.register(_import_plugin(name), name=name)
    pm.builtins = frozenset(names)
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints(specs.PROJECT_NAME)
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


def blocking_plugins(pm: SegmintPluginManager, hooks: Iterable[str] = DECISION_HOOKS) -> list[str]:
    """Names of the plugins that may block the event loop in ``hooks`` (sorted).

    A plugin counts unless it is a built-in or carries ``segmint_loop_safe = True``, and it
    implements one of ``hooks``: ``DECISION_HOOKS`` (the default) or ``IDENTIFY_HOOKS``. With
    none, the middleware runs those hooks on the event loop (no thread hop); with any, in its
    worker pool, where a hang costs one page's widget instead of stalling the server.
    """
    names: set[str] = set()
    for hook in hooks:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            name = pm.get_name(impl.plugin) or repr(impl.plugin)
            if name in pm.builtins or getattr(impl.plugin, LOOP_SAFE_MARK, False) is True:
                continue
            names.add(name)
    return sorted(names)
