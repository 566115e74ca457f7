"""segmint.engine: filters, profiles and events, stores, campaigns and decisions, plugins.

The engine imports nothing from ``segmint.plugins`` or ``segmint.middleware`` and nothing
from Starlette: it is usable from a script, a worker or another web framework.
"""

from .errors import ConfigError, EventError, FilterError, PluginError, SegmintError, StoreError
from .profile import CampaignStats, CartItem, Profile, profile_key

# -- filters (filter language) --------------------------------------------------------------

# -- events, profiles, stores --------------------------------------------------------------

# -- config, plugins, campaigns, decisions --------------------------------------------------

__all__ = [
    "SegmintError",
    "ConfigError",
    "FilterError",
    "PluginError",
    "StoreError",
    "EventError",
    "Profile",
    "CartItem",
    "CampaignStats",
    "profile_key",
]
