"""RFM: recency, frequency and monetary scores 1-5 from quintiles over all customers.

Thresholds are recomputed in a batch (``compute_rfm_thresholds``) by streaming
``store.iter_profiles()`` once, keeping a uniform *reservoir sample* (Vitter's algorithm R,
``SAMPLE_SIZE`` customers, seeded so reruns agree) of (days since last order, orders,
spend): memory is constant whatever the number of customers, and with 20,000 samples a
quintile cut is within about 0.5 percentile of the exact one. They are stored in the
store's meta table under ``"rfm"`` (msgpack) and read back with ``load_rfm_thresholds``.

Scores: ``recency`` 5 = bought most recently (days <= 20th percentile) ... 1 = longest ago;
``frequency`` and ``monetary`` 1 = at or below the 20th percentile ... 5 = above the 80th.
``score`` is R + F + M (3-15). The named ``segment`` comes from the standard R/F grid:

| R \\ F | 1 | 2 | 3 | 4 | 5 |
| --- | --- | --- | --- | --- | --- |
| 5 | new_customer | potential_loyalist | potential_loyalist | champions | champions |
| 4 | promising | potential_loyalist | potential_loyalist | loyal | loyal |
| 3 | about_to_sleep | about_to_sleep | need_attention | loyal | loyal |
| 2 | hibernating | hibernating | at_risk | at_risk | cant_lose |
| 1 | lost | hibernating | at_risk | at_risk | cant_lose |
"""

from __future__ import annotations

import random
from bisect import bisect_left
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from .profile import Profile

if TYPE_CHECKING:
    from .stores.base import ProfileStore

__all__ = [
    "RfmThresholds",
    "compute_rfm_thresholds",
    "load_rfm_thresholds",
    "save_rfm_thresholds",
    "rfm_scores",
    "rfm_segment",
    "RFM_SEGMENTS",
    "SAMPLE_SIZE",
]

SAMPLE_SIZE = 20_000
META_NAME = "rfm"
DAY = 86400.0

#: R score -> tuple of segment names for F = 1..5 (the grid in the module docstring).
_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new_customer", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cant_lose"),
}
RFM_SEGMENTS: tuple[str, ...] = tuple(sorted({name for row in _GRID.values() for name in row}))


class RfmThresholds(msgspec.Struct, kw_only=True, frozen=True):
    """The four quintile cuts (20/40/60/80th percentiles) of each dimension."""

    recency_days: tuple[float, float, float, float]
    frequency: tuple[float, float, float, float]
    monetary: tuple[float, float, float, float]
    computed_at: float
    customers: int
    sample_size: int


def rfm_segment(recency: int, frequency: int) -> str:
    return _GRID[recency][frequency - 1]


def rfm_scores(profile: Profile, thresholds: RfmThresholds, now: datetime | float) -> dict[str, Any]:
    """``{recency, frequency, monetary, score, segment}`` for a customer with orders."""
    ts = now if isinstance(now, (int, float)) else now.timestamp()
    days = (ts - (profile.last_order_at or ts)) / DAY
    r = 5 - bisect_left(thresholds.recency_days, days)
    f = 1 + bisect_left(thresholds.frequency, profile.orders)
    m = 1 + bisect_left(thresholds.monetary, profile.spend)
    return {"recency": r, "frequency": f, "monetary": m, "score": r + f + m,
            "segment": _GRID[r][f - 1]}


def _quintiles(values: list[float]) -> tuple[float, float, float, float]:
    """The smallest values with at least 20/40/60/80 % of the values at or below them."""
    values.sort()
    n = len(values)
    return tuple(values[max(0, -(-n * k // 5) - 1)] for k in (1, 2, 3, 4))  # type: ignore[return-value]


def compute_rfm_thresholds(
    store: ProfileStore, now: datetime | float, *, sample_size: int = SAMPLE_SIZE,
    save: bool = True, seed: int = 0,
) -> RfmThresholds | None:
    """Stream every profile once and compute the quintile cuts; None if nobody ordered.

    Saved in the store's meta table unless ``save=False``.
    """
    ts = now if isinstance(now, (int, float)) else now.timestamp()
    rng = random.Random(seed)
    sample: list[tuple[float, float, float]] = []
    seen = 0
    for profile in store.iter_profiles():
        if not profile.orders or profile.last_order_at is None:
            continue
        row = ((ts - profile.last_order_at) / DAY, float(profile.orders), profile.spend)
        seen += 1
        if len(sample) < sample_size:
            sample.append(row)
        else:
            slot = rng.randrange(seen)
            if slot < sample_size:
                sample[slot] = row
    if not sample:
        return None
    thresholds = RfmThresholds(
        recency_days=_quintiles([r[0] for r in sample]),
        frequency=_quintiles([r[1] for r in sample]),
        monetary=_quintiles([r[2] for r in sample]),
        computed_at=ts,
        customers=seen,
        sample_size=len(sample),
    )
    if save:
        save_rfm_thresholds(store, thresholds)
    return thresholds


def save_rfm_thresholds(store: ProfileStore, thresholds: RfmThresholds) -> None:
    store.set_meta(META_NAME, msgspec.msgpack.encode(thresholds))


def load_rfm_thresholds(store: ProfileStore) -> RfmThresholds | None:
    raw = store.get_meta(META_NAME)
    return None if raw is None else msgspec.msgpack.decode(raw, type=RfmThresholds)
