"""segmint.engine: filters, profiles and events, stores, campaigns and decisions, plugins.

The engine imports nothing from ``segmint.plugins`` or ``segmint.middleware`` and nothing
from Starlette: it is usable from a script, a worker or another web framework.

The root exports what scripts and plugin authors use (``__all__``, pinned by
``tests/test_layering.py``); everything else is imported from the module that defines it
(``segmint.engine.stores``, ``segmint.engine.analytics``, ``segmint.engine.events``...).
"""

# -- errors ----------------------------------------------------------------------------------
from .errors import ConfigError, EventError, FilterError, PluginError, SegmintError, StoreError

# -- running it: the runtime, its config, time -------------------------------------------------
from .clock import Clock, FrozenClock
from .config import Config, load_config
from .runtime import Runtime, Segmint

# -- the filter language -----------------------------------------------------------------------
from .filters import Explanation, Filter, compile_filter, compile_segments

# -- writing plugins: the marker, and what hooks receive and return ----------------------------
from .catalog import Catalog, Product
from .decide import Decision, SlotDecision
from .events import Event
from .fields import FieldDef, FieldType
from .hooks import get_plugin_manager, hookimpl
from .identity import Identity
from .profile import Profile
from .strategy import Strategy, StrategyContext, StrategyParams

__all__ = [
    # errors
    "SegmintError",
    "ConfigError",
    "FilterError",
    "PluginError",
    "StoreError",
    "EventError",
    # running it
    "Segmint",
    "Runtime",
    "Config",
    "load_config",
    "Clock",
    "FrozenClock",
    # the filter language
    "compile_filter",
    "compile_segments",
    "Filter",
    "Explanation",
    # writing plugins
    "hookimpl",
    "get_plugin_manager",
    "Identity",
    "Profile",
    "Event",
    "Catalog",
    "Product",
    "Strategy",
    "StrategyContext",
    "StrategyParams",
    "FieldDef",
    "FieldType",
    "Decision",
    "SlotDecision",
]
