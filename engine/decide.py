"""Decisions: for each slot of a page, which campaign, which variant, which products, and why.

Per slot, the campaigns that target it (and the page) are asked in priority order; the first
whose schedule, segment, frequency cap and variant admit the visitor wins. A *control*
variant wins too but shows nothing: the slot stays empty and the exposure is recorded, so
lift against the holdout can be measured. A campaign whose strategy fails or returns fewer
than ``min_items`` products falls through to the next one. Every campaign passed over leaves
a human-readable line in ``reasons`` (``segmint explain`` prints them).

A failing strategy costs its campaign, never the page: the error is logged with the plugin's
name and the next campaign is asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec

from .campaigns import CompiledCampaign, assign_variant
from .catalog import Catalog, Product
from .config.schema import Coupon
from .hooks import log_contained
from .errors import PluginError
from .failure_log import FailureLog
from .product_stats import ProductStats
from .profile import Profile
from .strategy import Strategy, StrategyContext, run_strategy

__all__ = ["Decision", "SlotDecision", "LazyDocument", "decide"]

log = logging.getLogger("segmint.decide")


class SlotDecision(msgspec.Struct, kw_only=True, frozen=True):
    """What one slot shows. ``campaign`` is None when no campaign admitted the visitor."""

    slot: Annotated[str, msgspec.Meta(description="The slot's name.")]
    campaign: Annotated[str | None, msgspec.Meta(
        description="The campaign that won the slot; null when none admitted the visitor.")] = None
    variant: Annotated[str | None, msgspec.Meta(description="The campaign's variant the visitor is in.")] = None
    control: Annotated[bool, msgspec.Meta(description=(
        "The visitor is in the campaign's holdout: nothing is shown, the exposure is "
        "recorded."))] = False
    strategy: Annotated[str | None, msgspec.Meta(description="The strategy that picked the products.")] = None
    products: Annotated[list[Product], msgspec.Meta(description="The products to show, best first.")] = []
    title: Annotated[str | None, msgspec.Meta(description="The widget's heading.")] = None
    coupon: Annotated[Coupon | None, msgspec.Meta(description="The coupon the widget shows.")] = None
    segment: Annotated[str | None, msgspec.Meta(description=(
        "The named segment that admitted the visitor (null: inline filter or everyone)."))] = None
    reasons: Annotated[list[str], msgspec.Meta(description=(
        "Why earlier campaigns for this slot were passed over, in the order they were "
        "asked."))] = []

    @property
    def shown(self) -> bool:
        """True when a widget should be rendered (a campaign won and it is not the holdout)."""
        return self.campaign is not None and not self.control

    @property
    def skus(self) -> list[str]:
        return [p.sku for p in self.products]

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


class Decision(msgspec.Struct, kw_only=True, frozen=True):
    """The decision for one page view: a ``SlotDecision`` per requested slot."""

    slots: dict[str, SlotDecision]
    visitor_key: str
    now: datetime
    #: Segments that matched, among those some candidate campaign asked about.
    segments: list[str] = []

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


class LazyDocument(Mapping[str, Any]):
    """The profile document, built on first use.

    Building it is most of a decision's cost; a page whose campaigns target everyone with a
    strategy that never reads it (bestsellers, new arrivals) needs none. Strategies read it
    as a mapping (``ctx.document``); filters get the built dict (``value()``).
    """

    __slots__ = ("_build", "_value")

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:
        self._build = build
        self._value: dict[str, Any] | None = None

    def value(self) -> dict[str, Any]:
        if self._value is None:
            self._value = self._build()
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self.value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.value())

    def __len__(self) -> int:
        return len(self.value())

    def __repr__(self) -> str:
        return "LazyDocument(<not built>)" if self._value is None else f"LazyDocument({self._value!r})"


class _Segments:
    """Segment membership, evaluated at most once per decision."""

    def __init__(self, filters: Mapping[str, Any], document: Mapping[str, Any], now: datetime) -> None:
        self._filters, self._source, self._now = filters, document, now
        self.results: dict[str, bool] = {}

    @property
    def document(self) -> Mapping[str, Any]:
        """The document as filters need it (a lazy one is built now)."""
        source = self._source
        return source.value() if isinstance(source, LazyDocument) else source

    def matches(self, name: str) -> bool:
        if name not in self.results:
            self.results[name] = bool(self._filters[name].matches(self.document, self._now))
        return self.results[name]


def decide(
    campaigns: Sequence[CompiledCampaign],
    *,
    profile: Profile,
    document: Mapping[str, Any],
    slots: Iterable[str],
    path: str,
    visitor_key: str,
    now: datetime,
    segments: Mapping[str, Any],
    strategies: Mapping[str, Strategy],
    catalog: Catalog,
    stats: ProductStats,
    exclude: Iterable[str] = (),
    failure_log: FailureLog | None = None,
) -> Decision:
    """Decide every slot in ``slots`` (in order) for one page view at ``path``.

    ``document``: the profile document, or a ``LazyDocument`` that builds it only if a
    segment, filter or strategy reads it.

    ``campaigns`` must be sorted (``sort_campaigns``). ``exclude``: skus already on the page
    (the product of a product page); products chosen for a slot are excluded from later slots.
    ``failure_log``: where failing strategies are counted (and logged once a minute each).
    """
    memo = _Segments(segments, document, now)
    shown: set[str] = set(exclude)
    decided: dict[str, SlotDecision] = {}
    for slot in slots:
        if slot in decided:
            continue
        context = StrategyContext(profile=profile, catalog=catalog, now=now, document=document,
                                  stats=stats, strategies=strategies, exclude=frozenset(shown))
        decision = _decide_slot(slot, campaigns, path, visitor_key, memo, context, failure_log)
        shown.update(decision.skus)
        decided[slot] = decision
    matched = [name for name, result in memo.results.items() if result]
    return Decision(slots=decided, visitor_key=visitor_key, now=now, segments=matched)


def _decide_slot(
    slot: str,
    campaigns: Sequence[CompiledCampaign],
    path: str,
    visitor_key: str,
    memo: _Segments,
    context: StrategyContext,
    failure_log: FailureLog | None = None,
) -> SlotDecision:
    reasons: list[str] = []
    for campaign in campaigns:
        if slot not in campaign.slots:
            continue
        why_not = _why_not(campaign, path, memo, context)
        if why_not:
            reasons.append(f"campaign {campaign.id}: {why_not}")
            continue
        variant = assign_variant(campaign.seed, visitor_key, campaign.variants)
        if variant.control:
            return SlotDecision(slot=slot, campaign=campaign.id, variant=variant.name, segment=campaign.segment,
                                strategy=variant.strategy, title=variant.title, coupon=variant.coupon,
                                control=True, reasons=reasons)
        try:
            products = run_strategy(variant.strategy, context, variant.params)
        except Exception as exc:  # noqa: BLE001 - a broken strategy costs its campaign, not the page
            error = exc if isinstance(exc, PluginError) else PluginError(
                f"{type(exc).__name__}: {exc}", plugin=f"strategy {variant.strategy}", hook="recommend")
            log_contained(log, error, exc, failure_log, f"campaign {campaign.id} skipped: {error}")
            reasons.append(f"campaign {campaign.id}: strategy {variant.strategy} failed: {exc}")
            continue
        if len(products) < campaign.min_items:
            reasons.append(
                f"campaign {campaign.id}: strategy {variant.strategy} returned {len(products)} "
                f"product{'s' if len(products) != 1 else ''}, fewer than min_items {campaign.min_items}"
            )
            continue
        return SlotDecision(slot=slot, campaign=campaign.id, variant=variant.name, segment=campaign.segment,
                            strategy=variant.strategy, title=variant.title, coupon=variant.coupon,
                            products=products, reasons=reasons)
    if not reasons:
        reasons.append(f"no campaign targets slot {slot!r}")
    return SlotDecision(slot=slot, reasons=reasons)


def _why_not(campaign: CompiledCampaign, path: str, memo: _Segments, context: StrategyContext) -> str | None:
    """Why ``campaign`` does not admit this visitor here and now, or None when it does."""
    now = context.now
    if not campaign.page_matches(path):
        return f"page {path!r} is not in pages {list(campaign.source.pages)}"
    if not campaign.is_live(now):
        schedule = campaign.schedule
        assert schedule is not None
        if schedule.start is not None and now < schedule.start:
            return f"not started (starts {schedule.start.isoformat()})"
        return f"ended ({schedule.end.isoformat() if schedule.end else ''})"
    if campaign.segment is not None and not memo.matches(campaign.segment):
        return f"visitor is not in segment {campaign.segment}"
    if campaign.filter is not None and not campaign.filter.matches(memo.document, now):
        return "visitor does not match the campaign's filter"
    if campaign.is_capped(context.profile, now):
        impressions, _ = campaign.frequency_cap or (0, 0.0)
        cap = campaign.source.frequency_cap
        period = cap.period if cap else ""
        return f"frequency cap reached ({impressions} impressions per {period})"
    return None
