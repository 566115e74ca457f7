"""Calling a hook plugin by plugin, so that a plugin that fails is named (and contained).

There is one way to call a hook: pluggy's own ``pm.hook.<name>(...)``, or, where a failing
plugin must be named, the helpers here, which call pluggy too. pluggy calls all
implementations of a hook in one go and, when one raises, does not say which; so for each
plugin with an implementation, ``plugin_callers`` keeps a ``pm.subset_hook_caller`` that
leaves out every other such plugin. Called in pluggy's order (the last registered first:
user plugins before the built-ins, which are ``trylast``), each runs one plugin's
implementation inside every hook wrapper (``wrapper=True``), exactly as ``pm.hook`` would.

- registration hooks (``hook_results`` and the ``collect_*`` helpers) raise ``PluginError``
  naming the plugin, at load time;
- request-path hooks (``call_each``, ``first_result`` with ``contain=True``) log the failure
  naming the plugin and carry on with the next plugin, so a broken plugin never breaks a page.

A wrapper that raises is named as the plugin whose call it wrapped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pluggy

from ..errors import PluginError, SegmintError
from ..failure_log import FailureLog
from ..fields import FieldDef
from ..strategy import Strategy, StrategyParams
from .manager import SegmintPluginManager

__all__ = [
    "plugin_callers",
    "hook_results",
    "call_each",
    "failure_key",
    "log_contained",
    "first_result",
    "collect_strategies",
    "collect_operators",
    "collect_fields",
]

log = logging.getLogger("segmint.plugins")


def plugin_callers(pm: SegmintPluginManager, hook_name: str) -> tuple[tuple[str, pluggy.HookCaller], ...]:
    """``(plugin name, caller)`` per plugin implementing the hook, in pluggy's call order.

    A caller runs that plugin's implementation with every hook wrapper around it (a plugin
    that both implements and wraps the hook wraps only its own call). Built once
    per hook and kept until the manager's ``generation`` changes (a plugin was registered or
    removed); a hook nobody implements costs a dict lookup.
    """
    generation = pm.generation
    cached = pm.callers.get(hook_name)
    if cached is not None and cached[0] == generation:
        return cached[1]
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    # pluggy calls the *last* implementation first; wrappers are not callees of their own.
    plugins = list(dict.fromkeys(impl.plugin for impl in reversed(impls) if not (impl.hookwrapper or impl.wrapper)))
    callers = tuple(
        (pm.get_name(plugin) or repr(plugin),
         pm.subset_hook_caller(hook_name, remove_plugins=[other for other in plugins if other is not plugin]))
        for plugin in plugins
    )
    pm.callers[hook_name] = (generation, callers)
    return callers


def _results(caller: pluggy.HookCaller, value: Any) -> list[Any]:
    """A one-plugin call's non-None results: a ``firstresult`` hook returns the value itself,
    any other hook a list (pluggy leaves out None)."""
    if caller.spec is not None and caller.spec.opts.get("firstresult"):
        return [] if value is None else [value]
    return list(value)


def hook_results(pm: SegmintPluginManager, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
    """``(plugin name, result)`` of each plugin's non-None result; a raising plugin is a
    ``PluginError`` naming it (a ``SegmintError`` as is: it already says where)."""
    for plugin, caller in plugin_callers(pm, hook_name):
        try:
            value = caller(**kwargs)
        except SegmintError:
            raise  # already says where (a ConfigError from a catalog file, ...)
        except Exception as exc:
            raise PluginError(f"{type(exc).__name__}: {exc}", plugin=plugin, hook=hook_name) from exc
        for result in _results(caller, value):
            yield plugin, result


def log_contained(logger: logging.Logger, error: PluginError, exc: BaseException,
                  failure_log: FailureLog | None, message: str | None = None) -> None:
    """Log a plugin failure the caller contained (``message``, default the error itself):
    through ``failure_log`` when given (counted, and logged once a minute per plugin, hook
    and kind of error), else every time."""
    text = message if message is not None else str(error)
    if failure_log is None:
        logger.error("%s", text, exc_info=exc)
    else:
        failure_log.report(logger, failure_key(error, exc), text, exc)


def failure_key(error: PluginError, exc: BaseException) -> str:
    """``"<plugin> in <hook> (<error type>)"``: what ``FailureLog`` counts a failure under."""
    return f"{error.plugin} in {error.hook} ({type(exc.__cause__ or exc).__name__})"


def call_each(pm: SegmintPluginManager, hook_name: str, *, failure_log: FailureLog | None = None,
              **kwargs: Any) -> list[PluginError]:
    """Call every plugin's implementation; failures are logged (naming the plugin) and returned.

    With a ``failure_log`` they are counted there and logged at most once a minute each.
    """
    failures: list[PluginError] = []
    for plugin, caller in plugin_callers(pm, hook_name):
        try:
            caller(**kwargs)
        except Exception as exc:  # noqa: BLE001 - observers and enrichers must not break a page
            error = PluginError(f"{type(exc).__name__}: {exc}", plugin=plugin, hook=hook_name)
            log_contained(log, error, exc, failure_log)
            failures.append(error)
    return failures


def first_result(pm: SegmintPluginManager, hook_name: str, *, contain: bool = False,
                 failure_log: FailureLog | None = None, **kwargs: Any) -> Any:
    """The first non-None result (``firstresult`` semantics), plugin by plugin.

    With ``contain``, a plugin that raises is logged and skipped (the next one answers);
    without, its error propagates: a ``SegmintError`` as is (it already says where), anything
    else as a ``PluginError`` naming the plugin.
    """
    for plugin, caller in plugin_callers(pm, hook_name):
        try:
            results = _results(caller, caller(**kwargs))
        except Exception as exc:
            error = exc if isinstance(exc, SegmintError) else PluginError(
                f"{type(exc).__name__}: {exc}", plugin=plugin, hook=hook_name)
            if not contain:
                if error is exc:
                    raise
                raise error from exc
            if isinstance(error, PluginError):
                log_contained(log, error, exc, failure_log)
            else:
                log.error("%s", error, exc_info=exc)
            continue
        if results:
            return results[0]
    return None


def _check_strategy(strategy: Any, plugin: str) -> Strategy:
    params = getattr(strategy, "Params", None)
    if not (
        isinstance(getattr(strategy, "name", None), str)
        and isinstance(params, type) and issubclass(params, StrategyParams)
        and callable(getattr(strategy, "recommend", None))
    ):
        raise PluginError(
            f"registered {strategy!r}, which is not a strategy (needs name: str, "
            "Params: a StrategyParams subclass, and recommend(ctx, params))",
            plugin=plugin, hook="segmint_register_strategies",
        )
    return strategy


def collect_strategies(pm: SegmintPluginManager) -> dict[str, Strategy]:
    """Every registered strategy by name; the plugin asked first wins a name."""
    strategies: dict[str, Strategy] = {}
    for plugin, result in hook_results(pm, "segmint_register_strategies"):
        for strategy in result or ():
            strategy = _check_strategy(strategy, plugin)
            strategies.setdefault(strategy.name, strategy)
    return strategies


def collect_operators(
    pm: SegmintPluginManager, check: Callable[[str, Any], None] | None = None
) -> dict[str, Callable[[Any, str], Callable[[Any], bool]]]:
    """Plugin filter operators by ``$name``; two plugins defining one name is an error.

    ``check(name, factory)`` raises for an operator the filter language refuses (a clash
    with a built-in operator, a bad name); the error becomes a ``PluginError`` naming the plugin.
    """
    operators: dict[str, Callable[[Any, str], Callable[[Any], bool]]] = {}
    owners: dict[str, str] = {}
    for plugin, result in hook_results(pm, "segmint_filter_operators"):
        if result is None:
            continue
        if not isinstance(result, Mapping):
            raise PluginError(f"returned {type(result).__name__}, not a mapping of operators",
                              plugin=plugin, hook="segmint_filter_operators")
        for name, factory in result.items():
            if check is not None:
                try:
                    check(name, factory)
                except Exception as exc:
                    message = getattr(exc, "message", None) or str(exc)
                    raise PluginError(message, plugin=plugin, hook="segmint_filter_operators") from exc
            if name in owners:
                raise PluginError(f"operator {name} is already registered by plugin {owners[name]!r}",
                                  plugin=plugin, hook="segmint_filter_operators")
            operators[name], owners[name] = factory, plugin
    return operators


def collect_fields(pm: SegmintPluginManager) -> list[FieldDef]:
    """Fields plugins declare (``segmint_field_catalog``)."""
    fields: list[FieldDef] = []
    for plugin, result in hook_results(pm, "segmint_field_catalog"):
        for field in result or ():
            if not isinstance(field, FieldDef):
                raise PluginError(f"returned {field!r}, not a FieldDef", plugin=plugin, hook="segmint_field_catalog")
            fields.append(field)
    return fields
