"""Campaign and segment analytics: attribution, lift against control, segment sizes.

    from segmint.engine.analytics import build_report
    report = build_report(rt.store, now=rt.clock())
    print(report.to_csv())
"""

from .attribution import (
    ATTRIBUTION_EVENT_TYPES,
    DEFAULT_WINDOW_DAYS,
    Attribution,
    Attributor,
    AttributorState,
    VariantTotals,
    attribute,
)
from .report import (
    CONTROL_VARIANT,
    CampaignReport,
    DailyPoint,
    Report,
    VariantReport,
    build_report,
    lift_statement,
    report_from_attribution,
)
from .segments import SegmentSnapshot, load_snapshot, segment_history, snapshot_segments
from .stats import Lift, norm_cdf, norm_ppf, two_proportion_test, visitors_per_arm

__all__ = [
    "ATTRIBUTION_EVENT_TYPES",
    "DEFAULT_WINDOW_DAYS",
    "Attribution",
    "Attributor",
    "AttributorState",
    "VariantTotals",
    "attribute",
    "CONTROL_VARIANT",
    "CampaignReport",
    "DailyPoint",
    "Report",
    "VariantReport",
    "build_report",
    "lift_statement",
    "report_from_attribution",
    "SegmentSnapshot",
    "load_snapshot",
    "segment_history",
    "snapshot_segments",
    "Lift",
    "norm_cdf",
    "norm_ppf",
    "two_proportion_test",
    "visitors_per_arm",
]
