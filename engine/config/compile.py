"""Compiling a config: plugins, strategies, filters and campaigns, checked together.

``compile_config`` turns a decoded ``Config`` into an immutable ``CompiledConfig``: the
runtime's whole "current state", swapped in one assignment on hot reload. It is also the
semantic check of ``load_config``: an unknown segment or strategy, params a strategy does not
accept, a filter that does not compile, duplicate campaign ids... every problem is collected
and reported in one ``ConfigError``, each with its path, line and "did you mean".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from ..campaigns import CompiledCampaign, CompiledVariant, compile_pages, default_variants, sort_campaigns
from ..catalog import Catalog
from ..errors import ConfigError, FilterError, PluginError, suggest
from ..field_table import default_field_catalog
from ..fields import FieldCatalog
from ..filters import FilterSet, compile_filter, compile_segments
from ..hooks import (
    SegmintPluginManager,
    collect_fields,
    collect_operators,
    collect_strategies,
    first_result,
    get_plugin_manager,
)
from ..strategy import Strategy, validate_params
from .load import Problem, config_error, read_config
from .schema import Campaign, Config, FilterSpec

__all__ = ["CompiledConfig", "compile_config", "config_plugin_manager", "load_compiled"]


@dataclass(frozen=True, eq=False)
class CompiledConfig:
    """Everything the request path needs, built from one config; never mutated."""

    config: Config
    pm: SegmintPluginManager
    strategies: Mapping[str, Strategy]
    fields: FieldCatalog
    operators: Mapping[str, Any]
    #: Compiled named segments.
    segments: Mapping[str, Any]
    #: Enabled campaigns, by priority (higher first), ties in file order.
    campaigns: tuple[CompiledCampaign, ...]
    catalog: Catalog

    @cached_property
    def segment_set(self) -> FilterSet:
        """Every named segment in one function (``members(document, now)``), built on first use
        by the jobs that test them all: ``Segmint.segments``, segment snapshots, audiences."""
        return FilterSet(self.segments)


def config_plugin_manager(config: Config, extra_plugins: Iterable[str | ModuleType | Any] = ()) -> SegmintPluginManager:
    """A plugin manager with the built-ins, entry points, ``extra_plugins`` and ``config.plugins``."""
    return get_plugin_manager(extra_plugins=[*extra_plugins, *config.plugins])


def compile_config(
    config: Config,
    *,
    pm: SegmintPluginManager | None = None,
    extra_plugins: Iterable[str | ModuleType | Any] = (),
    text: str | None = None,
    fmt: str = "toml",
    load_catalog: bool = True,
) -> CompiledConfig:
    """Check and compile ``config``; ``text`` (the file's source) lets errors carry lines.

    Raises ``ConfigError`` (all problems in ``.problems``) or ``PluginError`` (a plugin that
    cannot be imported, has a misspelled hook, or fails while registering).
    """
    pm = pm or config_plugin_manager(config, extra_plugins)
    strategies = collect_strategies(pm)
    operators = collect_operators(pm, check=_check_operator)
    try:
        fields = default_field_catalog(collect_fields(pm))
    except ValueError as exc:  # a plugin redefines a field
        raise PluginError(str(exc), hook="segmint_field_catalog") from exc

    problems: list[Problem] = []
    segments = _compile_segments(config, fields, operators, problems)
    campaigns = [
        compiled
        for index, campaign in enumerate(config.campaigns)
        if (compiled := _compile_campaign(index, campaign, config, segments, strategies, fields, operators, problems))
    ]
    problems.extend(_duplicate_ids(config))
    if problems:
        raise config_error(problems, file=config.source_path, text=text, fmt=fmt)
    catalog = Catalog()
    if load_catalog:
        # "is None", not "or": an empty catalog is falsy, and may still carry its problems.
        loaded = first_result(pm, "segmint_load_catalog", config=config)
        catalog = Catalog() if loaded is None else loaded
    return CompiledConfig(config=config, pm=pm, strategies=strategies, fields=fields, operators=operators,
                          segments=segments, campaigns=sort_campaigns(campaigns), catalog=catalog)


def load_compiled(
    path: str | Path,
    *,
    pm: SegmintPluginManager | None = None,
    extra_plugins: Iterable[str | ModuleType | Any] = (),
    load_catalog: bool = True,
    previous: CompiledConfig | None = None,
) -> CompiledConfig:
    """Read, decode, check and compile the config file at ``path``: the state a runtime runs on.

    The one way from a file to a state: the start (``Segmint.from_config``, ``load_config``)
    and hot reload both take it, so a file gets the same errors, lines and plugins whichever
    reads it. ``previous`` is the state running now (on reload): when the file still lists the
    same plugins, its plugin manager is kept (no re-import; plugin objects keep their state).
    """
    config, text, fmt = read_config(path)
    if pm is None and previous is not None and config.plugins == previous.config.plugins:
        pm = previous.pm
    return compile_config(config, pm=pm, extra_plugins=extra_plugins, text=text, fmt=fmt,
                          load_catalog=load_catalog)


def _check_operator(name: str, factory: Any) -> None:
    """Let the filter language judge a plugin operator (name shape, clash with a built-in)."""
    compile_filter({}, operators={name: factory})


def _parse_filter(spec: FilterSpec, path: str, problems: list[Problem]) -> Any:
    """A filter table, or pasted JSON text left as text: the filter compiler parses it and
    reports what ``json.loads`` would hide (a key given twice) with its path."""
    return spec


def _filter_problem(exc: FilterError, base: str) -> Problem:
    inner = exc.path[1:] if exc.path.startswith("$") else f".{exc.path}"
    return Problem(base + inner, exc.message, exc.suggestion)


def _compile_segments(config: Config, fields: FieldCatalog, operators: Mapping[str, Any],
                      problems: list[Problem]) -> dict[str, Any]:
    specs: dict[str, Any] = {}
    for name, segment in config.segments.items():
        spec = _parse_filter(segment.filter, f"$.segments.{name}.filter", problems)
        specs[name] = spec if spec is not None else {}
    # compile_segments stops at the first broken segment: note it, stand in a match-all
    # filter for it (so segments that refer to it still compile), and go again.
    for _ in range(len(specs) + 1):
        try:
            return compile_segments(specs, catalog=fields, operators=operators)
        except FilterError as exc:
            name = getattr(exc, "segment", None)
            base = f"$.segments.{name}.filter" if name in specs else "$.segments"
            message = exc.message.removeprefix(f"segment {name!r}: ")
            problems.append(_filter_problem(FilterError(message, exc.path, exc.suggestion), base))
            if name not in specs or specs[name] == {}:
                return {}
            specs[name] = {}
    return {}  # pragma: no cover - each round removes one broken segment


def _compile_campaign(
    index: int,
    campaign: Campaign,
    config: Config,
    segments: Mapping[str, Any],
    strategies: Mapping[str, Strategy],
    fields: FieldCatalog,
    operators: Mapping[str, Any],
    problems: list[Problem],
) -> CompiledCampaign | None:
    path = f"$.campaigns[{index}]"
    before = len(problems)
    if campaign.segment is not None and campaign.segment not in config.segments:
        known = ", ".join(sorted(config.segments)) or "none defined"
        problems.append(Problem(f"{path}.segment", f"unknown segment {campaign.segment!r} (known: {known})",
                                suggest(campaign.segment, config.segments)))
    inline = None
    if campaign.filter is not None:
        spec = _parse_filter(campaign.filter, f"{path}.filter", problems)
        if spec is not None:
            try:
                inline = compile_filter(spec, catalog=fields, segments=segments, operators=operators)
            except FilterError as exc:
                problems.append(_filter_problem(exc, f"{path}.filter"))
    variants = []
    for position, variant in enumerate(default_variants(campaign)):
        vpath = f"{path}.variants[{position}]" if campaign.variants else path
        strategy = variant.strategy or campaign.strategy
        raw_params = variant.params if variant.params is not None else campaign.params
        params_path = f"{vpath}.params" if variant.params is not None else f"{path}.params"
        strategy_path = f"{vpath}.strategy" if variant.strategy else f"{path}.strategy"
        params = None if variant.control else _check_strategy(
            strategy, raw_params, strategies, strategy_path, params_path, problems)
        variants.append(CompiledVariant(
            name=variant.name, weight=variant.weight, control=variant.control, strategy=strategy,
            params=params, title=variant.title if variant.title is not None else campaign.title,
            coupon=variant.coupon if variant.coupon is not None else campaign.coupon,
        ))
    if len(problems) > before or not campaign.enabled:
        return None
    cap = campaign.frequency_cap
    return CompiledCampaign(
        id=campaign.id, index=index, priority=campaign.priority, slots=frozenset(campaign.slots),
        pages=compile_pages(campaign.pages), segment=campaign.segment, filter=inline,
        schedule=campaign.schedule, frequency_cap=(cap.impressions, cap.seconds) if cap else None,
        seed=campaign.seed or campaign.id, min_items=campaign.min_items, variants=tuple(variants),
        source=campaign,
    )


def _check_strategy(name: str, raw: Any, strategies: Mapping[str, Strategy], strategy_path: str,
                    params_path: str, problems: list[Problem]) -> Any:
    strategy = strategies.get(name)
    if strategy is None:
        known = ", ".join(sorted(strategies)) or "none registered"
        problems.append(Problem(strategy_path, f"unknown strategy {name!r} (known: {known})",
                                suggest(name, strategies)))
        return None
    try:
        return validate_params(strategy, raw, strategies=strategies)
    except ConfigError as exc:
        for error in exc.problems or [exc]:
            inner = error.path[1:] if error.path.startswith("$") else ""
            problems.append(Problem(params_path + inner, error.message, error.suggestion))
        return None


def _duplicate_ids(config: Config) -> list[Problem]:
    first: dict[str, int] = {}
    problems = []
    for index, campaign in enumerate(config.campaigns):
        if campaign.id in first:
            problems.append(Problem(f"$.campaigns[{index}].id",
                                    f"duplicate campaign id {campaign.id!r} (first at $.campaigns[{first[campaign.id]}])"))
        else:
            first[campaign.id] = index
    return problems
