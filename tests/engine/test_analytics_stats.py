"""Lift statistics: the z-test against known values, coverage of a known lift, A/A false positives."""

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.analytics import (
    attribute,
    build_report,
    norm_cdf,
    norm_ppf,
    report_from_attribution,
    two_proportion_test,
    visitors_per_arm,
)
from segmint.engine.events import Impression, Order, OrderItem
from segmint.engine.stores import SQLiteStore

UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(("p", "z"), [(0.5, 0.0), (0.975, 1.959963985), (0.8, 0.841621234),
                                      (0.001, -3.090232306), (1e-6, -4.753424309)])
def test_norm_ppf_matches_tabulated_quantiles(p, z):
    assert norm_ppf(p) == pytest.approx(z, abs=1e-7)
    assert norm_cdf(norm_ppf(p)) == pytest.approx(p, rel=1e-6)


def test_norm_ppf_rejects_probabilities_outside_0_1():
    with pytest.raises(ValueError):
        norm_ppf(1.0)


def test_z_test_matches_a_hand_computed_example():
    lift = two_proportion_test(200, 10_000, 260, 10_000)
    pooled = 460 / 20_000
    z = 0.006 / math.sqrt(pooled * (1 - pooled) * 2 / 10_000)
    assert lift.z == pytest.approx(z)
    assert lift.p_value == pytest.approx(2 * (1 - norm_cdf(z)))
    assert lift.significant
    half = 1.959964 * math.sqrt(0.02 * 0.98 / 10_000 + 0.026 * 0.974 / 10_000)
    assert lift.absolute_ci == pytest.approx((0.006 - half, 0.006 + half), rel=1e-5)
    assert lift.relative == pytest.approx(0.3)


def test_sample_size_matches_the_textbook_formula():
    # Fleiss without continuity correction, p1=0.10, p2=0.12, alpha 0.05, power 0.8: 3841.
    assert visitors_per_arm(0.10, 0.20) == 3841
    assert visitors_per_arm(0.02, 0.10) > visitors_per_arm(0.02, 0.30)


def test_not_significant_small_samples_say_how_many_more_visitors_are_needed():
    lift = two_proportion_test(20, 1000, 24, 1000)
    assert not lift.significant
    assert lift.needed_per_arm == visitors_per_arm(0.02, 0.20)
    assert lift.more_visitors == 2 * lift.needed_per_arm - 2000


def test_no_conversions_in_control_leaves_relative_lift_undefined():
    lift = two_proportion_test(0, 500, 3, 500)
    assert lift.relative is None and lift.needed_per_arm is None


def test_bad_counts_are_rejected():
    with pytest.raises(ValueError, match="control"):
        two_proportion_test(5, 0, 1, 10)
    with pytest.raises(ValueError, match="variant"):
        two_proportion_test(1, 10, 11, 10)


def _traffic(rng, visitors, rates, *, start=T0):
    """Real events: one impression per visitor, an order a day later for converters."""
    impressions, orders = [], []
    names = list(rates)
    for i in range(visitors):
        variant = names[i % len(names)]
        at = start + timedelta(seconds=3 * i)
        impressions.append(Impression(campaign="promo", variant=variant, skus=["s1"],
                                      visitor_id=f"v{i}", at=at))
        if rng.random() < rates[variant]:
            orders.append(Order(order_id=f"o{i}", visitor_id=f"v{i}", at=at + timedelta(days=1),
                                items=[OrderItem(sku="s1", price=20.0)]))
    return sorted(impressions + orders, key=lambda e: e.at)


def test_a_known_lift_is_significant_and_its_interval_contains_the_truth():
    events = _traffic(random.Random(2026), 100_000, {"control": 0.020, "B": 0.026})
    report = report_from_attribution(attribute(events), now=T0 + timedelta(days=30))
    (campaign,) = report.campaigns
    control, variant = campaign.variants
    assert (control.variant, variant.variant) == ("control", "B")
    assert control.visitors == variant.visitors == 50_000
    lift = variant.lift
    assert lift.significant
    low, high = lift.absolute_ci
    assert low < 0.006 < high
    low, high = lift.relative_ci
    assert low < 0.30 < high
    assert variant.statement.startswith("B beats control by ") and variant.statement.endswith("significant")


def test_an_aa_split_is_rarely_significant_over_200_simulations():
    rng = random.Random(7)
    n, p = 2000, 0.05
    significant = 0
    for _ in range(200):
        a = sum(rng.random() < p for _ in range(n))
        b = sum(rng.random() < p for _ in range(n))
        significant += two_proportion_test(a, n, b, n).significant
    # The test's false positive rate is alpha (5%): expect about 10 of 200, never a flood.
    assert 1 <= significant <= 20


def test_aa_splits_through_the_store_and_report_are_not_significant():
    rng = random.Random(11)
    verdicts = []
    for run in range(8):
        store = SQLiteStore(":memory:", clock=lambda: T0)
        try:
            events = _traffic(rng, 3000, {"control": 0.05, "A": 0.05}, start=T0 + timedelta(days=run))
            store.append(events)
            report = build_report(store, now=T0 + timedelta(days=60))
            (campaign,) = report.campaigns
            variant = campaign.variants[1]
            verdicts.append(variant.lift.significant)
            if not variant.lift.significant:
                assert variant.statement.startswith(("not enough data yet", "no significant difference"))
        finally:
            store.close()
    assert sum(verdicts) <= 1
