"""RFM thresholds streamed over a store, scores and the named segment grid."""

from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.events import Order, OrderItem, PageView
from segmint.engine.profile import Profile
from segmint.engine.rfm import (
    RFM_SEGMENTS, RfmThresholds, compute_rfm_thresholds, load_rfm_thresholds, rfm_scores, rfm_segment,
)
from segmint.engine.stores import MemoryStore

UTC = timezone.utc
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def fill(store, customers):
    """Customer i: i+1 orders of 10 * (i+1) each, the last one i days ago."""
    events = []
    for i in range(customers):
        for n in range(i % 10 + 1):
            events.append(Order(customer_id=f"c{i}", order_id=f"{i}-{n}", at=NOW - timedelta(days=i + n),
                                items=[OrderItem(sku="s", price=10.0 * (i + 1))]))
    store.append(events)
    store.append([PageView(visitor_id="browser", at=NOW)])  # no orders: not counted


def test_thresholds_are_quintiles_over_customers_with_orders_and_are_stored():
    store = MemoryStore()
    fill(store, 100)
    thresholds = compute_rfm_thresholds(store, NOW)
    assert thresholds.customers == 100 and thresholds.sample_size == 100
    # 20 % of customers have their last order at most 19 days ago, 20 % have 1-2 orders, ...
    assert thresholds.recency_days == (19.0, 39.0, 59.0, 79.0)
    assert thresholds.frequency == (2.0, 4.0, 6.0, 8.0)
    assert load_rfm_thresholds(store) == thresholds


def test_a_reservoir_smaller_than_the_population_stays_close():
    store = MemoryStore()
    fill(store, 400)
    exact = compute_rfm_thresholds(store, NOW, save=False)
    sampled = compute_rfm_thresholds(store, NOW, sample_size=100, save=False)
    assert sampled.sample_size == 100 and sampled.customers == 400
    for cut, approx in zip(exact.recency_days, sampled.recency_days):
        assert abs(cut - approx) <= 60  # about 15 percentiles of a 0-400 uniform spread at worst
    assert load_rfm_thresholds(store) is None


def test_no_customers_with_orders_gives_none():
    store = MemoryStore()
    store.append([PageView(visitor_id="v", at=NOW)])
    assert compute_rfm_thresholds(store, NOW) is None


TH = RfmThresholds(recency_days=(10, 20, 40, 80), frequency=(1, 2, 3, 5), monetary=(50, 100, 200, 500),
                   computed_at=0.0, customers=1, sample_size=1)


@pytest.mark.parametrize(("days", "orders", "spend", "expected"), [
    (1, 10, 1000.0, (5, 5, 5, "champions")),
    (10, 1, 50.0, (5, 1, 1, "new_customer")),      # on a cut: the better recency, the lower F/M
    (10.5, 2, 50.5, (4, 2, 2, "potential_loyalist")),
    (30, 4, 300.0, (3, 4, 4, "loyal")),
    (30, 3, 150.0, (3, 3, 3, "need_attention")),
    (60, 5, 600.0, (2, 4, 5, "at_risk")),
    (100, 6, 600.0, (1, 5, 5, "cant_lose")),
    (100, 1, 10.0, (1, 1, 1, "lost")),
    (60, 2, 10.0, (2, 2, 1, "hibernating")),
])
def test_scores_and_segments(days, orders, spend, expected):
    profile = Profile(key="c:x", orders=orders, spend=spend,
                      last_order_at=(NOW - timedelta(days=days)).timestamp())
    scores = rfm_scores(profile, TH, NOW)
    assert (scores["recency"], scores["frequency"], scores["monetary"], scores["segment"]) == expected
    assert scores["score"] == sum(expected[:3])


def test_the_grid_covers_every_score_pair_with_known_names():
    names = {rfm_segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert names == set(RFM_SEGMENTS)
    assert {"champions", "loyal", "potential_loyalist", "new_customer", "at_risk", "cant_lose",
            "hibernating", "lost"} <= names
