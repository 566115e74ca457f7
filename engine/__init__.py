"""segmint.engine: filters, profiles and events, stores, campaigns and decisions, plugins.

The engine imports nothing from ``segmint.plugins`` or ``segmint.middleware`` and nothing
from Starlette: it is usable from a script, a worker or another web framework.
"""

from .errors import ConfigError, EventError, FilterError, PluginError, SegmintError, StoreError
from .profile import CampaignStats, CartItem, Profile, profile_key

# -- filters (filter language) --------------------------------------------------------------
from .filters import Explanation, Filter, compile_filter, compile_segments

# -- events, profiles, stores --------------------------------------------------------------

# -- config, plugins, campaigns, decisions --------------------------------------------------
# catalog and strategies
from .catalog import Catalog, Product, load_catalog_file
from .hookspecs import hookimpl
from .product_stats import ProductStats
from .strategy import Strategy, StrategyContext, StrategyParams, run_strategy, validate_params

__all__ = [
    "SegmintError",
    "ConfigError",
    "FilterError",
    "PluginError",
    "StoreError",
    "EventError",
    # filters
    "Filter",
    "Explanation",
    "compile_filter",
    "compile_segments",
    "Profile",
    "CartItem",
    "CampaignStats",
    "profile_key",
]
