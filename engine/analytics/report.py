"""The campaign report: per campaign and variant, exposure, engagement, conversion, revenue and
lift against the control, built from one streamed pass over the event log.

    report = build_report(store, since=datetime(2026, 3, 1, tzinfo=UTC), now=clock())
    print(report.to_csv())

A conversion rate is converted visitors / exposed visitors (see ``attribution`` for what a
visitor run is). Revenue is per campaign: an order attributed to two campaigns counts in
both, so revenue does not add up across campaigns. The control variant is the one the
middleware records for the holdout (``control``); a campaign without one gets no lift.
How the lift is read (sequential or fixed, the correction, alpha, the minimum detectable
effect, CUPED, the engine) is ``[analytics]`` (``AnalyticsConfig``); with the campaigns'
configured weights (``configured_splits``) each campaign's split is checked for a sample ratio
mismatch. Besides conversion, each variant's revenue per visitor and average order value are
compared with the control's; a variant whose revenue per visitor is significantly lower is
flagged (``revenue_guardrail``) whatever its conversion does.
"""

from __future__ import annotations

import csv
import gc
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ..config.schema import CONTROL_VARIANT, Campaign, Reader  # CONTROL_VARIANT: how holdout exposures are recorded
from ..stores.base import ProfileStore
from .attribution import DEFAULT_WINDOW_DAYS, Attributor, VariantTotals
from .checkpoint import SETTLE_SECONDS, ReportCheckpoint
from .eventlog import Rows, attribution_log
from .stats import (
    AnalyticsConfig,
    Difference,
    Lift,
    Moments,
    Sample,
    SampleRatio,
    compare_metric,
    compare_variants,
    cuped_relative_difference,
    describe_method,
    srm_test,
)

__all__ = ["CONTROL_VARIANT", "Report", "CampaignReport", "VariantReport", "DailyPoint",
           "build_report", "report_from_attribution", "lift_statement", "configured_splits"]

CSV_COLUMNS = ("campaign", "variant", "is_control", "exposures", "visitors", "clicks", "ctr", "orders",
               "converted", "conversion_rate", "revenue", "revenue_per_visitor", "average_order_value",
               "recommended_revenue", "click_orders", "lift_relative", "lift_relative_low",
               "lift_relative_high", "lift_absolute", "p_value", "significant", "statement",
               "p_value_adjusted", "confidence", "srm_p_value", "srm_mismatch", "chance_to_win", "expected_loss",
               "revenue_lift_relative", "revenue_lift_relative_low", "revenue_lift_relative_high",
               "revenue_significant", "revenue_guardrail", "aov_lift_relative", "aov_significant",
               "multi_arm_visitors")
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class DailyPoint:
    """Visitors whose run started on ``day`` and how many of them converted (a cohort)."""

    day: date
    visitors: int
    converted: int

    @property
    def rate(self) -> float:
        return self.converted / self.visitors if self.visitors else 0.0


@dataclass(frozen=True, slots=True)
class LiftPoint:
    """The lift as it read at the end of ``day``: every visitor run that started up to that day,
    against the control's, by the report's method (sequential intervals are valid at every day,
    so a band drawn from these points may be read day by day)."""

    day: date
    visitors: int
    control_visitors: int
    #: None while the control has no conversion (a relative change of 0 is undefined).
    relative: float | None
    relative_ci: tuple[float, float] | None
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "visitors": self.visitors,
                "control_visitors": self.control_visitors, "relative": self.relative,
                "relative_ci": list(self.relative_ci) if self.relative_ci else None,
                "significant": self.significant}


@dataclass(frozen=True, slots=True)
class VariantReport:
    campaign: str
    variant: str
    is_control: bool
    exposures: int
    visitors: int
    clicks: int
    ctr: float
    orders: int
    converted: int
    conversion_rate: float
    revenue: float
    revenue_per_visitor: float
    average_order_value: float
    recommended_revenue: float
    click_orders: int
    click_revenue: float
    #: Against the control; None for the control itself or when there is none.
    lift: Lift | None
    statement: str
    daily: tuple[DailyPoint, ...] = ()
    #: The lift against the control day by day (cumulative); empty for the control itself.
    cumulative: tuple[LiftPoint, ...] = ()
    #: Revenue per visitor against the control's (a mean metric: sample variance, Welch / delta method).
    revenue_lift: Lift | None = None
    #: Average order value (revenue / orders) against the control's, as a ratio metric.
    aov_lift: Lift | None = None
    #: Revenue per visitor is significantly lower than the control's, whatever conversion does.
    revenue_guardrail: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lift"] = self.lift.to_dict() if self.lift else None
        data["daily"] = [{"day": p.day.isoformat(), "visitors": p.visitors, "converted": p.converted}
                         for p in self.daily]
        data["cumulative"] = [p.to_dict() for p in self.cumulative]
        return data


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign: str
    control: str | None
    variants: tuple[VariantReport, ...]
    #: The split checked against the configured weights; None when there are no weights to
    #: check against (a campaign no longer in the config, or with one arm).
    srm: SampleRatio | None = None
    #: The correction applied across this campaign's variants (see ``AnalyticsConfig``).
    correction: str = "holm-bonferroni"
    #: People exposed to more than one of its variants within the window, after identity merges
    #: (one human on two devices, found when they log in on both; variant buckets are per visitor).
    multi_arm_visitors: int = 0

    @property
    def trusted(self) -> bool:
        """False on a sample ratio mismatch: the lift must not be trusted."""
        return self.srm is None or not self.srm.mismatch

    def to_dict(self) -> dict[str, Any]:
        srm = None if self.srm is None else {**self.srm.to_dict(), "message": self.srm.message}
        return {"campaign": self.campaign, "control": self.control, "trusted": self.trusted,
                "srm": srm, "correction": self.correction, "multi_arm_visitors": self.multi_arm_visitors,
                "variants": [v.to_dict() for v in self.variants]}


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: datetime
    since: datetime | None
    until: datetime
    window_days: float
    campaigns: tuple[CampaignReport, ...]
    #: Every order in the period and its revenue, attributed or not (for context).
    orders: int = 0
    revenue: float = 0.0
    attributed_orders: int = 0
    events: int = 0
    method: str = field(default_factory=lambda: describe_method(AnalyticsConfig()))
    notes: tuple[str, ...] = field(default=())
    #: The settings the lifts were read with.
    analysis: AnalyticsConfig = field(default_factory=AnalyticsConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "window_days": self.window_days,
            "orders": self.orders, "revenue": self.revenue,
            "attributed_orders": self.attributed_orders, "events": self.events,
            "method": self.method, "notes": list(self.notes),
            "analysis": {name: getattr(self.analysis, name) for name in self.analysis.__struct_fields__},
            "campaigns": [c.to_dict() for c in self.campaigns],
        }

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per campaign variant (the CSV and the tables)."""
        rows = []
        for campaign in self.campaigns:
            for v in campaign.variants:
                lift = v.lift
                rel_ci = lift.relative_ci if lift and lift.relative_ci else (None, None)
                revenue = v.revenue_lift
                rev_ci = revenue.relative_ci if revenue and revenue.relative_ci else (None, None)
                rows.append({
                    "campaign": v.campaign, "variant": v.variant, "is_control": v.is_control,
                    "exposures": v.exposures, "visitors": v.visitors, "clicks": v.clicks, "ctr": v.ctr,
                    "orders": v.orders, "converted": v.converted, "conversion_rate": v.conversion_rate,
                    "revenue": round(v.revenue, 2), "revenue_per_visitor": v.revenue_per_visitor,
                    "average_order_value": v.average_order_value,
                    "recommended_revenue": round(v.recommended_revenue, 2), "click_orders": v.click_orders,
                    "lift_relative": lift.relative if lift else None,
                    "lift_relative_low": rel_ci[0], "lift_relative_high": rel_ci[1],
                    "lift_absolute": lift.absolute if lift else None,
                    "p_value": lift.p_value if lift else None,
                    "significant": lift.significant if lift else None,
                    "statement": v.statement,
                    "p_value_adjusted": lift.p_value_adjusted if lift else None,
                    "confidence": lift.confidence if lift else None,
                    "srm_p_value": campaign.srm.p_value if campaign.srm else None,
                    "srm_mismatch": campaign.srm.mismatch if campaign.srm else None,
                    "chance_to_win": lift.chance_to_win if lift else None,
                    "expected_loss": lift.expected_loss if lift else None,
                    "revenue_lift_relative": v.revenue_lift.relative if v.revenue_lift else None,
                    "revenue_lift_relative_low": rev_ci[0], "revenue_lift_relative_high": rev_ci[1],
                    "revenue_significant": v.revenue_lift.significant if v.revenue_lift else None,
                    "revenue_guardrail": v.revenue_guardrail if not v.is_control else None,
                    "aov_lift_relative": v.aov_lift.relative if v.aov_lift else None,
                    "aov_significant": v.aov_lift.significant if v.aov_lift else None,
                    "multi_arm_visitors": campaign.multi_arm_visitors,
                })
        return rows

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        return buffer.getvalue()


def _pct(value: float) -> str:
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"


def lift_statement(variant: str, lift: Lift | None, *, has_control: bool = True) -> str:
    """The plain sentence: "B beats control by 12% +/- 5%, significant", and so on."""
    if not has_control:
        return "no control variant: lift cannot be measured"
    if lift is None or lift.relative is None or lift.relative_ci is None:
        return "not enough data yet: no conversions in the control group"
    half = (lift.relative_ci[1] - lift.relative_ci[0]) / 2.0
    size = f"{_pct(abs(lift.relative))} +/- {_pct(half)}"
    if lift.chance_to_win is not None:  # the Bayesian engine: its own words, not "significant"
        odds = f"{_pct(lift.chance_to_win)} chance to beat control"
        if lift.expected_loss is not None:
            odds += f", expected loss {_pct(lift.expected_loss)}"
        if lift.significant:
            verb = "beats" if lift.relative > 0 else "trails"
            return f"{variant} {verb} control by {size} ({odds})"
        sign = "+" if lift.relative >= 0 else "-"
        return f"no clear winner yet: {variant} vs control {sign}{size} ({odds})"
    if lift.significant:
        verb = "beats" if lift.relative > 0 else "trails"
        return f"{variant} {verb} control by {size}, significant"
    sign = "+" if lift.relative >= 0 else "-"
    if lift.more_visitors:  # the estimate too, so the reader sees an interval that spans 0
        return (f"not enough data yet: {variant} vs control {sign}{size}, "
                f"about {lift.more_visitors:,} more visitors needed")
    return f"no significant difference: {variant} vs control {sign}{size}"


def _variant_report(campaign: str, variant: str, t: VariantTotals, control: VariantTotals | None,
                    is_control: bool, has_control: bool, lifts: tuple[Lift | None, Lift | None, Lift | None],
                    trusted: bool, cumulative: tuple[LiftPoint, ...] = ()) -> VariantReport:
    lift, revenue, aov = lifts
    guardrail = bool(revenue and revenue.significant and revenue.relative is not None and revenue.relative < 0)
    if is_control:
        statement = "control (baseline)"
    elif has_control and (control is None or not control.visitors or not t.visitors):
        statement = "not enough data yet: no visitors in one of the groups"
    else:
        statement = lift_statement(variant, lift, has_control=has_control)
        if guardrail:
            assert revenue is not None and revenue.relative is not None
            statement += f"; but revenue per visitor is {_pct(-revenue.relative)} lower, significantly (guardrail)"
        if has_control and not trusted:
            statement = f"do not trust (sample ratio mismatch): {statement}"
    daily = tuple(DailyPoint(_EPOCH + timedelta(days=d), n, c) for d, (n, c) in sorted(t.daily.items()))
    return VariantReport(
        campaign=campaign, variant=variant, is_control=is_control, exposures=t.exposures,
        visitors=t.visitors, clicks=t.clicks, ctr=t.clicks / t.exposures if t.exposures else 0.0,
        orders=t.orders, converted=t.converted,
        conversion_rate=t.converted / t.visitors if t.visitors else 0.0, revenue=t.revenue,
        revenue_per_visitor=t.revenue / t.visitors if t.visitors else 0.0,
        average_order_value=t.revenue / t.orders if t.orders else 0.0,
        recommended_revenue=t.recommended_revenue, click_orders=t.click_orders,
        click_revenue=t.click_revenue, lift=lift, statement=statement, daily=daily, cumulative=cumulative,
        revenue_lift=revenue, aov_lift=aov, revenue_guardrail=guardrail,
    )


def configured_splits(campaigns: Iterable[Campaign]) -> dict[str, dict[str, float]]:
    """Each campaign's configured weights by the variant names the log records (the holdout
    as ``control``), for the sample ratio check; campaigns with one arm have nothing to check."""
    return {c.id: {(CONTROL_VARIANT if v.control else v.name): v.weight for v in c.variants}
            for c in campaigns if len(c.variants) > 1}


def _cuped(control: Moments, variants: dict[str, Moments]) -> dict[str, Difference | None]:
    """CUPED's lifts, for the variants whose pre-exposure values explain something (theta != 0)."""
    differences: dict[str, Difference | None] = {}
    for name, moments in variants.items():
        adjusted = cuped_relative_difference(control, moments)
        if adjusted is not None and adjusted.theta != 0:
            differences[name] = adjusted
    return differences


def _lifts(variants: Mapping[str, VariantTotals], control: str,
           analysis: AnalyticsConfig) -> dict[str, tuple[Lift | None, Lift | None, Lift | None]]:
    """Every variant with visitors against a control with visitors, corrected together: the
    conversion rate, revenue per visitor and average order value (per variant, in that order)."""
    base = variants.get(control)
    if base is None or not base.visitors:
        return {}
    arms = {name: t for name, t in variants.items() if name != control and t.visitors}
    if not arms:
        return {}

    def conversion(t: VariantTotals) -> Moments:
        return Moments(t.visitors, t.converted, t.converted, t.pre_orders, t.pre_order_squares,
                       t.orders_converted, proportion=True)

    def revenue(t: VariantTotals) -> Moments:
        return Moments(t.visitors, t.revenue, t.revenue_squares, t.pre_spend, t.pre_spend_squares, t.spend_revenue)

    cuped = analysis.cuped
    lifts = compare_variants(
        (base.converted, base.visitors), {name: (t.converted, t.visitors) for name, t in arms.items()}, analysis,
        differences=_cuped(conversion(base), {name: conversion(t) for name, t in arms.items()}) if cuped else None)
    revenues = compare_metric(
        revenue(base).post, {name: revenue(t).post for name, t in arms.items()}, analysis,
        differences=_cuped(revenue(base), {name: revenue(t) for name, t in arms.items()}) if cuped else None)
    aovs: dict[str, Lift] = {}
    buying = {name: t for name, t in arms.items() if t.orders}
    if base.orders and buying:
        def aov(t: VariantTotals) -> Sample:
            return Sample.ratio(t.revenue, t.revenue_squares, t.orders, t.order_squares, t.revenue_orders, t.visitors)
        aovs = compare_metric(aov(base), {name: aov(t) for name, t in buying.items()}, analysis)
    return {name: (lifts.get(name), revenues.get(name), aovs.get(name)) for name in arms}


def _cumulative_lifts(variants: Mapping[str, VariantTotals], control: str,
                      analysis: AnalyticsConfig) -> dict[str, tuple[LiftPoint, ...]]:
    """Each variant's lift at the end of every day with exposures, from the daily cohorts in one
    pass over the days: the running sums are what the report would have said that evening
    (cohorts' later conversions included, as the totals include them). Not CUPED-adjusted: the
    cohorts keep counts only, so with pre-exposure history the last point is the unadjusted lift."""
    base = variants.get(control)
    if base is None:
        return {}
    days = sorted({day for t in variants.values() for day in t.daily})
    running = {name: [0, 0] for name in variants}  # visitors, converted
    points: dict[str, list[LiftPoint]] = {name: [] for name in variants if name != control}
    for day in days:
        for name, t in variants.items():
            visitors, converted = t.daily.get(day, (0, 0))
            running[name][0] += visitors
            running[name][1] += converted
        control_visitors, control_converted = running[control]
        arms = {name: (running[name][1], running[name][0]) for name in points if running[name][0]}
        lifts = (compare_variants((control_converted, control_visitors), arms, analysis)
                 if control_visitors and arms else {})
        for name in arms:
            lift = lifts.get(name)
            points[name].append(LiftPoint(
                day=_EPOCH + timedelta(days=day), visitors=running[name][0], control_visitors=control_visitors,
                relative=lift.relative if lift else None, relative_ci=lift.relative_ci if lift else None,
                significant=bool(lift and lift.significant)))
    return {name: tuple(p) for name, p in points.items()}


def report_from_attribution(attribution: Any, *, now: datetime, since: datetime | None = None,
                            until: datetime | None = None, control: str = CONTROL_VARIANT,
                            analysis: AnalyticsConfig | None = None,
                            splits: Mapping[str, Mapping[str, float]] | None = None) -> Report:
    """Turn attribution totals into the report (per campaign, control first).

    ``splits``: configured weights per campaign (``configured_splits(config.campaigns)``),
    for the sample ratio mismatch check; campaigns not in it are not checked.
    """
    analysis = analysis or AnalyticsConfig()
    by_campaign: dict[str, dict[str, VariantTotals]] = {}
    for (campaign, variant), totals in attribution.totals.items():
        by_campaign.setdefault(campaign, {})[variant] = totals
    campaigns = []
    for campaign in sorted(by_campaign):
        variants = by_campaign[campaign]
        control_totals = variants.get(control)
        names = sorted(variants, key=lambda name: (name != control, name))
        weights = (splits or {}).get(campaign)
        srm = None if not weights else srm_test({name: t.visitors for name, t in variants.items()}, weights,
                                                threshold=analysis.srm_threshold)
        trusted = srm is None or not srm.mismatch
        lifts = _lifts(variants, control, analysis)
        over_time = _cumulative_lifts(variants, control, analysis)
        multi_arm = getattr(attribution, "multi_arm", {}).get(campaign, 0)
        campaigns.append(CampaignReport(
            campaign=campaign, control=control if control_totals is not None else None,
            variants=tuple(_variant_report(campaign, name, variants[name], control_totals,
                                           name == control, control_totals is not None,
                                           lifts.get(name, (None, None, None)), trusted, over_time.get(name, ()))
                           for name in names),
            srm=srm, correction=analysis.correction, multi_arm_visitors=multi_arm,
        ))
    notes = []
    if getattr(attribution, "evicted_people", 0):
        notes.append(f"{attribution.evicted_people:,} active people were dropped by the memory cap; "
                     "counts are approximate")
    return Report(generated_at=now, since=since, until=until or now, window_days=attribution.window_days,
                  campaigns=tuple(campaigns), orders=attribution.orders, revenue=attribution.revenue,
                  attributed_orders=attribution.attributed_orders, events=attribution.events,
                  method=describe_method(analysis), notes=tuple(notes), analysis=analysis)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def build_report(store: ProfileStore, *, since: datetime | None = None, until: datetime | None = None,
                 campaign: str | None = None, window_days: float = DEFAULT_WINDOW_DAYS, now: datetime,
                 control: str = CONTROL_VARIANT, batch_size: int = 5000, checkpoint: bool = True,
                 fresh: bool = False, analysis: AnalyticsConfig | None = None,
                 splits: Mapping[str, Mapping[str, float]] | None = None) -> Report:
    """Stream the store's event log once (``since`` <= at < ``until``, default ``now``) and report.

    Exposures before ``since`` are not read, so orders just after it may lack their credit;
    pick ``since`` a window before the period of interest when that matters.

    ``checkpoint``: resume from the state an earlier report saved in the store and save a new
    one when this report read many events (see ``checkpoint.py``; the figures are the same
    either way). ``fresh``: ignore the saved state, read the whole log (and save anew).
    ``analysis`` and ``splits``: see ``report_from_attribution`` (the config's ``analytics``
    and ``configured_splits(config.campaigns)``); ``analysis.reader`` picks how the log is read
    (``eventlog.attribution_log``: in Python, or DuckDB's columnar projection; same report).
    """
    since, until, now = _utc(since), _utc(until), _utc(now)
    assert now is not None
    limit = until or now
    if since is not None and since >= limit:
        raise ValueError(f"since ({since.isoformat()}) must be before until ({limit.isoformat()})")
    if window_days <= 0:
        raise ValueError(f"window_days must be positive, got {window_days!r}")
    saved = ReportCheckpoint(store, window_days=window_days, campaign=campaign, since=since)
    use_checkpoints = checkpoint and saved.supported
    # The pass keeps up to millions of people and runs alive and makes no cycles: the cyclic GC
    # would walk them all again at each full collection (a quarter of a 2M-event pass). Paused
    # for the pass, the state's load and save, as the importer does; refcounting frees the rest.
    # Only the totals outlive the pass (the attributor goes before the collector is back: the
    # first collection after it would otherwise walk everything the pass made, ~0.3 s for 10M).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        attribution = _attribute(store, saved, resume=use_checkpoints and not fresh, save=use_checkpoints,
                                 since=since, limit=limit, window_days=window_days, campaign=campaign,
                                 reader=(analysis or AnalyticsConfig()).reader, batch_size=batch_size).result()
    finally:
        if gc_was_enabled:
            gc.enable()
    return report_from_attribution(attribution, now=now, since=since, until=limit, control=control,
                                   analysis=analysis, splits=splits)


def _attribute(store: ProfileStore, saved: ReportCheckpoint, *, resume: bool, save: bool,
               since: datetime | None, limit: datetime, window_days: float, campaign: str | None,
               reader: Reader, batch_size: int) -> Attributor:
    """The attribution pass of ``build_report``: from the saved state when ``resume`` finds a
    valid one, saving a new one at the settled position when ``save``.

    The read from the saved position starts before the saved people are loaded: a columnar
    reader computes its first rows on a thread of its own meanwhile (on two cores, loading a
    large state then costs the refresh little)."""
    log = attribution_log(store, reader)
    end, position = limit.timestamp(), limit.timestamp() - SETTLE_SECONDS

    def read(since: float | None, until: float) -> Rows:
        """The rows of ``[since, until)``; the read starts now (close it when done)."""
        return log.attribution_rows(since=since, until=until, batch_size=batch_size, window=window_days * 86_400.0)

    def attribute_from(start: datetime | float | None, make: Callable[[], Attributor | None]) -> Attributor | None:
        """Read from ``start`` into the attributor ``make`` gives (made once the read has
        started); None when it gives none."""
        saving = save and (start is None or _timestamp(start) < position)
        # Taken before reading: an event logged meanwhile voids the state saved below.
        fingerprint = saved.fingerprint(position) if saving else None
        first_end = position if saving else end
        rows = read(None if start is None else _timestamp(start), first_end)
        try:
            attributor = make()
            if attributor is None:
                return None
            read_before = attributor.result().events
            attributor.feed_rows(rows, first_end)
        finally:
            rows.close()
        # The rest of the read starts before the state is saved: a columnar reader computes its
        # rows meanwhile (the save is Python; a first report's takes seconds).
        rest = read(first_end, end) if first_end < end else None
        try:
            if fingerprint is not None:
                saved.save(attributor, position, fingerprint, read=attributor.result().events - read_before)
            if rest is not None:
                attributor.feed_rows(rest, end)
        finally:
            if rest is not None:
                rest.close()
        return attributor

    found = saved.find(end) if resume else None
    if found is not None:
        resumed = attribute_from(found.position, lambda: saved.load(found))
        if resumed is not None:
            return resumed
    made = attribute_from(since, lambda: Attributor(window_days=window_days, campaign=campaign))
    assert made is not None
    return made


def _timestamp(moment: datetime | float) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else moment
