"""The analytics commands of ``segmint``: ``report`` (campaign lift) and ``segments`` (sizes, overlap)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec

from segmint.engine.errors import SegmintError

from .cli_commands import config_runtime, config_store
from .cli_output import Output, Progress, plural

__all__ = ["report", "segments"]


def _day(value: str, option: str) -> datetime:
    from datetime import date, timezone

    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), timezone.utc)
    except ValueError:
        raise SegmintError(f"{option}: {value!r} is not a date; give YYYY-MM-DD") from None


class _Counted:
    """The store, read with the configured reader (``attribution_log``), counting the events
    a report reads into a progress line (a first report over a large log reads millions)."""

    _EVERY = 4096  # rows between progress updates (a power of 2)

    def __init__(self, store: Any, progress: Progress, reader: str) -> None:
        from segmint.engine.analytics.eventlog import attribution_log

        self.store, self.progress, self.log = store, progress, attribution_log(store, reader)  # type: ignore[arg-type]

    def attribution_rows(self, **options: Any) -> Iterator[Any]:
        from segmint.engine.analytics.attribution import EXPOSURES

        n, rows, mask = 0, 0, self._EVERY - 1
        try:
            for row in self.log.attribution_rows(**options):
                rows += 1
                n += row[2].count + row[2].clicks if row[1] == EXPOSURES else 1  # events folded in
                if not rows & mask:
                    self.progress.advance(n)
                    n = 0
                yield row
        finally:  # also when the report stops reading early (its end time)
            self.progress.advance(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)  # meta and the event fingerprint (saved report state)


def report(args: argparse.Namespace, out: Output) -> int:
    """Campaign report from one streamed pass over the event log (table, --json or --csv)."""
    from datetime import timezone

    from segmint.engine.analytics import build_report, configured_splits
    from segmint.engine.config import load_config

    if args.json and args.csv:
        raise SegmintError("give --json or --csv, not both")
    if not 0 < args.window <= 365:
        raise SegmintError(f"--window: {args.window:g} is not between 0 and 365 days")
    since = _day(args.since, "--since") if args.since else None
    config = load_config(args.config, validate=False)  # [analytics] and the variants' weights
    analysis = config.analytics
    if getattr(args, "engine", None):
        analysis = msgspec.structs.replace(analysis, engine=args.engine)
    with config_store(args.config) as store:
        progress = Progress(None, "reading the event log")
        try:
            result = build_report(_Counted(store, progress, analysis.reader) if progress.enabled else store,
                                  since=since,
                                  campaign=args.campaign, window_days=args.window,
                                  now=datetime.now(timezone.utc), fresh=args.fresh,
                                  analysis=analysis, splits=configured_splits(config.campaigns))
        except ValueError as exc:
            raise SegmintError(str(exc)) from None
        finally:
            progress.close()
    if args.json:
        out.json(result.to_dict())
        return 0
    if args.csv:
        out.stream.write(result.to_csv())
        return 0
    out.line(f"{plural(result.orders, 'order')} ({result.attributed_orders:,} attributed to a campaign), "
             f"attribution window {result.window_days:g} days")
    out.line(out.paint(f"method: {result.method}", "dim"))
    if not result.campaigns:
        out.line("no campaign exposures in this period" + (f" for campaign {args.campaign!r}" if args.campaign else ""))
    for campaign in result.campaigns:
        out.line()
        out.line(out.paint(f"campaign {campaign.campaign}", "bold"))
        out.table(("variant", "exposures", "visitors", "clicks", "CTR", "orders", "conversion", "revenue",
                   "rev/visitor", "AOV", "recommended"),
                  ((v.variant, v.exposures, v.visitors, v.clicks, f"{v.ctr:.2%}", v.orders,
                    f"{v.conversion_rate:.2%}", f"{v.revenue:,.2f}", f"{v.revenue_per_visitor:,.2f}",
                    f"{v.average_order_value:,.2f}", f"{v.recommended_revenue:,.2f}") for v in campaign.variants))
        if campaign.srm is not None and campaign.srm.mismatch:
            out.line(out.paint("  " + campaign.srm.message, "red"))
        if campaign.multi_arm_visitors:
            out.line(out.paint(f"  {plural(campaign.multi_arm_visitors, 'person', 'people')} saw more than one variant "
                               "(one human on several devices, merged by a login); counted in each", "yellow"))
        for v in campaign.variants:
            if not v.is_control:
                colour = "green" if v.lift and v.lift.significant and v.lift.absolute > 0 else "dim"
                bad = not campaign.trusted or v.revenue_guardrail
                out.line(f"  {v.variant}: " + out.paint(v.statement, "red" if bad else colour))
                money = [f"{name} {_relative(lift)}" for name, lift in
                         (("revenue/visitor", v.revenue_lift), ("AOV", v.aov_lift)) if lift is not None]
                if money:
                    out.line(out.paint("     " + "; ".join(money), "dim"))
        tested = sum(1 for v in campaign.variants if v.lift is not None)
        if tested > 1:
            out.line(out.paint(f"  {tested} variants against control: p-values corrected "
                               f"({campaign.correction})", "dim"))
    return 0


def _relative(lift: Any) -> str:
    """A revenue lift in a few characters: ``+4.1% [-2.0%, +10.2%]``, and the verdict."""
    if lift.relative is None or lift.relative_ci is None:
        return "n/a (no revenue in control)"
    low, high = lift.relative_ci
    verdict = " significant" if lift.significant else ""
    return f"{lift.relative:+.1%} [{low:+.1%}, {high:+.1%}]{verdict}"


def segments(args: argparse.Namespace, out: Output) -> int:
    """Segment sizes by day and the latest overlap; ``--snapshot`` counts and stores today's first."""
    from segmint.engine.analytics import load_snapshot, segment_history, snapshot_segments

    if args.snapshot:
        rt = config_runtime(args.config)
        try:
            snapshot_segments(rt, rt.clock())
            history = segment_history(rt.store)
            latest = load_snapshot(rt.store, history[-1].day) if history else None
        finally:
            rt.close()
    else:
        with config_store(args.config) as store:
            history = segment_history(store)
            latest = load_snapshot(store, history[-1].day) if history else None
    if args.json:
        out.json({"history": [h.to_dict() for h in history], "latest": latest.to_dict() if latest else None})
        return 0
    if not history:
        out.line("no segment snapshots yet: run `segmint segments CONFIG --snapshot` (daily, e.g. from cron)")
        return 0
    names = sorted({name for h in history for name in h.sizes})
    recent = history[-14:]
    out.table(("segment", *(h.day.isoformat() for h in recent)),
              ((name, *(h.sizes.get(name, 0) for h in recent)) for name in names))
    if latest and latest.overlap:
        out.line()
        out.line(out.paint(f"overlap on {latest.day.isoformat()} ({plural(latest.profiles, 'profile')})", "bold"))
        out.table(("segment", "and", "in both"),
                  ((a, b, n) for (a, b), n in sorted(latest.overlap.items(), key=lambda item: -item[1])))
    return 0
