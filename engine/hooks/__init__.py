"""segmint.engine.hooks: the hooks plugins implement, the manager that holds them, and the
one helper for calling a hook plugin by plugin.

- ``specs``: the ``segmint_*`` hookspecs and the ``hookimpl`` marker plugins use;
- ``manager``: ``get_plugin_manager()``, where each hook runs (``HOOK_RUNS``) and which
  plugins may block the event loop (``blocking_plugins``);
- ``calling``: ``pm.hook.<name>(...)`` is pluggy's way to call a hook; ``call_each``,
  ``first_result`` and ``hook_results`` call it plugin by plugin where a failing plugin must
  be named (and, on the request path, skipped).
"""

from .calling import (
    call_each, collect_fields, collect_operators, collect_strategies, failure_key, first_result, hook_results,
    log_contained, plugin_callers,
)
from .manager import (
    BUILTINS_GROUP, DECISION_HOOKS, HOOK_RUNS, IDENTIFY_HOOKS, LOOP_SAFE_MARK, Runs, SegmintPluginManager,
    blocking_plugins, builtin_plugins, get_plugin_manager,
)
from .specs import PROJECT_NAME, hookimpl, hookspec

__all__ = [
    # specs
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    # manager
    "SegmintPluginManager",
    "get_plugin_manager",
    "builtin_plugins",
    "BUILTINS_GROUP",
    "Runs",
    "HOOK_RUNS",
    "DECISION_HOOKS",
    "IDENTIFY_HOOKS",
    "LOOP_SAFE_MARK",
    "blocking_plugins",
    # calling
    "plugin_callers",
    "hook_results",
    "call_each",
    "first_result",
    "log_contained",
    "failure_key",
    "collect_strategies",
    "collect_operators",
    "collect_fields",
]
