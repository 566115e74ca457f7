"""``BatchStats``: the product statistics and RFM thresholds a runtime serves from memory.

Both are batch results over the whole store (never computed per request): bestsellers,
co-purchase and co-view counts from the event log, RFM quintile cuts from every profile.
They are rebuilt every ``[stats] refresh_seconds`` and, so that a shop's first orders show
in bestsellers within seconds, soon after new orders arrive: no more often than
``cost_factor`` times the last rebuild's own duration, which caps the rebuild work under a
steady stream of orders at about a tenth of a core.
"""

from __future__ import annotations

import time
from datetime import timedelta

from .clock import Clock
from .product_stats import DEFAULT_WINDOWS, ProductStats
from .rfm import RfmThresholds, compute_rfm_thresholds, load_rfm_thresholds
from .stores import ProfileStore

__all__ = ["BatchStats", "STATS_POLL", "STATS_COST_FACTOR", "RFM_MAX_AGE"]

#: How often the stats thread asks ``refresh_if_due``.
STATS_POLL = 2.0
#: A rebuild after new orders waits at least this many times the last rebuild's duration.
STATS_COST_FACTOR = 10.0
#: RFM thresholds older than this are recomputed (they move slowly; a pass reads every profile).
RFM_MAX_AGE = timedelta(hours=6)


class BatchStats:
    def __init__(self, store: ProfileStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.products = ProductStats.empty()
        self.rfm: RfmThresholds | None = None
        #: Minimum seconds between two order-triggered rebuilds, and the cost factor (tests set 0).
        self.min_gap = STATS_POLL
        self.cost_factor = STATS_COST_FACTOR
        self._orders_pending = False
        self._built = self._cost = 0.0

    def note_orders(self) -> None:
        """New orders were stored: rebuild soon."""
        self._orders_pending = True

    def refresh(self, window_days: int) -> ProductStats:
        """Rebuild the product statistics from the last ``max(90, window_days)`` days of orders
        and product views, and the RFM thresholds when they are stale."""
        started = time.monotonic()
        self._orders_pending = False
        now = self.clock()
        windows = sorted({*DEFAULT_WINDOWS, window_days})
        events = self.store.iter_events(since=now - timedelta(days=max(windows)), types=("order", "product_view"))
        self.products = ProductStats.build(events, now, windows=windows)
        thresholds = load_rfm_thresholds(self.store)
        if thresholds is None or now.timestamp() - thresholds.computed_at > RFM_MAX_AGE.total_seconds():
            thresholds = compute_rfm_thresholds(self.store, now) or thresholds
        self.rfm = thresholds
        self._built = time.monotonic()
        self._cost = self._built - started
        return self.products

    def refresh_if_due(self, window_days: int, refresh_seconds: float) -> bool:
        """Rebuild when orders arrived (and the minimum gap passed) or every ``refresh_seconds``."""
        age = time.monotonic() - self._built
        due = age >= refresh_seconds or (
            self._orders_pending and age >= max(self.min_gap, self.cost_factor * self._cost))
        if due:
            self.refresh(window_days)
        return due
