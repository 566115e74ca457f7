"""segmint.engine: filters, profiles and events, stores, campaigns and decisions, plugins.

The engine imports nothing from ``segmint.plugins`` or ``segmint.middleware`` and nothing
from Starlette: it is usable from a script, a worker or another web framework.
"""

from .errors import ConfigError, EventError, FilterError, PluginError, SegmintError, StoreError
from .fields import FieldCatalog, FieldDef, FieldType
from .profile import CampaignStats, CartItem, Profile, profile_key

# -- filters (filter language) --------------------------------------------------------------
from .filters import Explanation, Filter, compile_filter, compile_segments

# -- events, profiles, stores --------------------------------------------------------------
from .document import profile_document
from .events import Event, decode_events, encode_events, event_to_dict
from .field_table import DEFAULT_FIELDS, default_field_catalog
from .folding import fold, folded
from .importer import ImportReport, import_orders
from .predict import PredictModel, compute_predict_model, fit_bgnbd, fit_gamma_gamma, load_predict_model
from .profiles import Profiles
from .rfm import RfmThresholds, compute_rfm_thresholds, load_rfm_thresholds, rfm_scores
from .stores import (
    AppendResult, MemoryStore, PersonalData, PersonalDataStore, ProfileStore, SQLiteStore, open_store,
)
from .writer import EventWriter

# -- config, plugins, campaigns, decisions --------------------------------------------------
from .clock import Clock, FrozenClock, system_clock
from .config import Config, config_json_schema, load_config, parse_config
from .decide import Decision, SlotDecision
from .hooks import get_plugin_manager
from .runtime import Segmint
from .campaigns import assign_variant
# catalog and strategies
from .catalog import Catalog, Product, load_catalog_file
from .hooks import hookimpl
from .product_stats import ProductStats
from .strategy import Strategy, StrategyContext, StrategyParams, run_strategy, validate_params

# -- identity (visitors: signed ids, the identify hook's answer) -----------------------------
from .identity import Identity
from .signing import new_visitor_id, sign, verify

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
    "FieldCatalog",
    "FieldDef",
    "FieldType",
    "Catalog",
    "Product",
    "load_catalog_file",
    "ProductStats",
    "Strategy",
    "StrategyContext",
    "StrategyParams",
    "run_strategy",
    "validate_params",
    "Profile",
    "CartItem",
    "CampaignStats",
    "profile_key",
    # events, profiles, stores
    "Event",
    "decode_events",
    "encode_events",
    "event_to_dict",
    "fold",
    "folded",
    "profile_document",
    "DEFAULT_FIELDS",
    "default_field_catalog",
    "RfmThresholds",
    "compute_rfm_thresholds",
    "load_rfm_thresholds",
    "rfm_scores",
    "PredictModel",
    "compute_predict_model",
    "load_predict_model",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "ProfileStore",
    "AppendResult",
    "PersonalDataStore",
    "PersonalData",
    "MemoryStore",
    "SQLiteStore",
    "open_store",
    "Profiles",
    "EventWriter",
    "ImportReport",
    "import_orders",
    # config, plugins, campaigns, decisions
    "Config",
    "load_config",
    "parse_config",
    "config_json_schema",
    "Segmint",
    "Decision",
    "SlotDecision",
    "assign_variant",
    "Clock",
    "FrozenClock",
    "system_clock",
    "hookimpl",
    "get_plugin_manager",
    # identity
    "Identity",
    "new_visitor_id",
    "sign",
    "verify",
]
