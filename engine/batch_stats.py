"""``BatchStats``: the product statistics, RFM thresholds and predictive model a runtime
serves from memory.

All are batch results over the whole store (never computed per request): bestsellers,
co-purchase and co-view counts from the event log, RFM quintile cuts and the BG/NBD and
Gamma-Gamma fits (``predict.py``) from every profile.
They are rebuilt every ``[stats] refresh_seconds`` and, so that a shop's first orders show
in bestsellers within seconds, soon after new orders arrive: no more often than
``cost_factor`` times the last rebuild's own duration, which caps the rebuild work under a
steady stream of orders at about a tenth of a core.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import msgspec

from .clock import Clock
from .predict import (INSTALL_HINT, MIN_CUSTOMERS, MIN_REPEAT, PredictModel, compute_predict_model,
                      load_predict_model, scipy_available)
from .product_stats import DEFAULT_WINDOWS, ProductStats
from .rfm import RfmThresholds, compute_rfm_thresholds, load_rfm_thresholds
from .stores import ProfileStore

__all__ = ["BatchStats", "STATS_POLL", "STATS_COST_FACTOR", "RFM_MAX_AGE", "PREDICT_MAX_AGE"]

log = logging.getLogger("segmint.batch_stats")

#: How often the stats thread asks ``refresh_if_due``.
STATS_POLL = 2.0
#: A rebuild after new orders waits at least this many times the last rebuild's duration.
STATS_COST_FACTOR = 10.0
#: RFM thresholds older than this are recomputed (they move slowly; a pass reads every profile).
RFM_MAX_AGE = timedelta(hours=6)
#: The predictive model is refitted as often (a fit reads every profile too; its parameters
#: describe the population and move as slowly; each customer's fields follow ``now``).
PREDICT_MAX_AGE = RFM_MAX_AGE


class BatchStats:
    def __init__(self, store: ProfileStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.products = ProductStats.empty()
        self.rfm: RfmThresholds | None = None
        self.predict: PredictModel | None = None
        #: What ``/health`` shows of the predictive model: ``{"status": "fitted", ...}``, or
        #: ``"waiting"``/``"unavailable"``/``"failed"`` with the ``reason`` (logged once each).
        self.predict_status: dict[str, Any] = {"status": "waiting", "reason": "not fitted yet"}
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
        self.predict = self._refresh_predict(now.timestamp())
        self._built = time.monotonic()
        self._cost = self._built - started
        return self.products

    def _refresh_predict(self, ts: float) -> PredictModel | None:
        """The stored model, refitted when missing or stale. A failing fit keeps the last
        model: the fields stay, the product statistics and RFM are rebuilt all the same."""
        if not scipy_available():  # checked first: a model another process fitted is no use either
            return self._predict_state(None, {"status": "unavailable", "reason": INSTALL_HINT})
        try:
            try:
                model = load_predict_model(self.store)
            except msgspec.DecodeError:  # written by another version of segmint: refit over it
                model = None
            if model is not None and ts - model.computed_at <= PREDICT_MAX_AGE.total_seconds():
                return self._predict_state(model, model)
            fitted = compute_predict_model(self.store, ts)
        except Exception as exc:  # noqa: BLE001 - a bad fit must not stop the other batch results
            return self._predict_state(self.predict, {"status": "failed",
                                                      "reason": f"{type(exc).__name__}: {exc}"}, exc)
        if fitted is None:
            return self._predict_state(model, model or {
                "status": "waiting", "reason": f"a fit needs {MIN_CUSTOMERS} customers with orders, "
                                               f"{MIN_REPEAT} of them with a repeat order"})
        return self._predict_state(fitted, fitted)

    def _predict_state(self, model: PredictModel | None, status: PredictModel | dict[str, Any],
                       exc: BaseException | None = None) -> PredictModel | None:
        """Keep the status for ``/health``; log a problem once, when it first appears."""
        if isinstance(status, PredictModel):
            status = {"status": "fitted", "computed_at": status.computed_at, "customers": status.customers,
                      "sample_size": status.sample_size, "bgnbd": msgspec.to_builtins(status.bgnbd),
                      "gamma_gamma": msgspec.to_builtins(status.gamma_gamma)}
        elif status != self.predict_status:
            (log.info if status["status"] == "waiting" else log.warning)(
                "segmint: no predictive fields: %s", status["reason"], exc_info=exc)
        self.predict_status = status
        return model

    def refresh_if_due(self, window_days: int, refresh_seconds: float) -> bool:
        """Rebuild when orders arrived (and the minimum gap passed) or every ``refresh_seconds``."""
        age = time.monotonic() - self._built
        due = age >= refresh_seconds or (
            self._orders_pending and age >= max(self.min_gap, self.cost_factor * self._cost))
        if due:
            self.refresh(window_days)
        return due
