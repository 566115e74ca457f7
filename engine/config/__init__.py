"""The config file: ``load_config(path) -> Config``, and its published JSON Schema.

One file (TOML; YAML and JSON accepted) holds the store, identity, API, catalog, segments and
campaigns. The structs live in ``schema.py``; decoding with every problem collected
in ``load.py`` (line numbers in ``lines.py``); the checks that need plugins (strategies,
filter fields) and the compiled runtime state in ``compile.py``; noticing a changed file and
reloading it in ``reload.py``. This module is the entry point.

Example::

    [segments.lapsed_vip]
    filter = {"$and" = [{"spend.total" = {"$gte" = 2000}}, {"days_since_last_purchase" = {"$gte" = 45}}]}

    [[campaigns]]
    id = "winback-vip"
    segment = "lapsed_vip"
    slots = ["home"]
    strategy = "user_based"
    title = "We Miss You - Curated Picks Just for You"
    coupon = { code = "MISSYOU15", percent = 15 }

Campaign order: a higher ``priority`` is asked first; equal priorities keep file order.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pluggy

from ..dates import INSTANT_JSON_SCHEMA
from .compile import CompiledConfig, compile_config, load_compiled
from .load import parse_config, read_config
from .schema import (
    ApiConfig,
    CacheConfig,
    Campaign,
    CatalogConfig,
    Config,
    Coupon,
    FrequencyCap,
    IdentityConfig,
    MiddlewareConfig,
    RenderConfig,
    Schedule,
    Segment,
    StatsConfig,
    StoreConfig,
    Variant,
    parse_duration,
)

__all__ = [
    "Config",
    "StoreConfig",
    "IdentityConfig",
    "ApiConfig",
    "CatalogConfig",
    "Segment",
    "Campaign",
    "Coupon",
    "Schedule",
    "FrequencyCap",
    "Variant",
    "MiddlewareConfig",
    "CacheConfig",
    "RenderConfig",
    "StatsConfig",
    "CompiledConfig",
    "load_config",
    "load_compiled",
    "parse_config",
    "compile_config",
    "config_json_schema",
    "config_warnings",
    "parse_duration",
]


def load_config(
    path: str | Path,
    *,
    validate: bool = True,
    pm: pluggy.PluginManager | None = None,
    extra_plugins: Iterable[str | ModuleType | Any] = (),
) -> Config:
    """Read, decode and check the config file at ``path`` (``.toml``, ``.yaml``/``.yml``, ``.json``).

    With ``validate`` (the default) segments, strategies, params and filters are checked too,
    with the plugins the config lists (the catalog is not loaded). Raises ``ConfigError``
    carrying every problem found, or ``PluginError`` for a plugin that cannot load.
    """
    if not validate:
        return read_config(path)[0]
    return load_compiled(path, pm=pm, extra_plugins=extra_plugins, load_catalog=False).config


def config_warnings(config: Config) -> list[str]:
    """What a valid config leaves switched off without saying so: shown by ``segmint check``,
    logged once when the middleware starts, and listed by ``GET {prefix}/health``.

    >>> [w.split(":")[0] for w in config_warnings(Config())]
    ['no [identity] secret']
    """
    warnings = []
    if not config.identity.secret:
        # The built-in identify plugin cannot sign visitor ids, so it personalizes for nobody.
        warnings.append("no [identity] secret: anonymous visitors will get no cookie and no personalization, "
                        'nor will logged-in customers (set secret = "env:SEGMINT_SECRET", 16+ characters)')
    return warnings


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file (published as ``docs/config.schema.json``).

    Loader-only fields (``source_path``) are left out: they are not file keys.
    """
    schema = _instants(_clean_descriptions(msgspec.json.schema(Config)))
    config_def = schema["$defs"]["Config"]
    config_def["properties"].pop("source_path", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "segmint config"
    return schema


def _instants(node: Any) -> Any:
    """Datetime fields as the config takes them (``segmint.engine.dates``): a date alone or a
    time without an offset too, which msgspec's ``date-time`` format would refuse."""
    if node == {"type": "string", "format": "date-time"}:
        return dict(INSTANT_JSON_SCHEMA)
    if isinstance(node, dict):
        return {key: _instants(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_instants(item) for item in node]
    return node


def _clean_descriptions(node: Any) -> Any:
    """Docstrings dedented the same way whatever msgspec version made the schema.

    msgspec 0.23 dedents docstrings and older releases did not; the published schema should
    change only when a description's words do.
    """
    if isinstance(node, dict):
        return {key: inspect.cleandoc(value) if key == "description" and isinstance(value, str)
                else _clean_descriptions(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_clean_descriptions(item) for item in node]
    return node
