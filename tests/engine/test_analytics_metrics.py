"""Revenue per visitor, average order value, CUPED and the Bayesian view: GrowthBook's worked
numbers, a seeded CUPED simulation, the revenue guardrail and what the report carries."""

import math
import random
import statistics
from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.analytics import (
    AnalyticsConfig,
    Moments,
    Posterior,
    Sample,
    attribute,
    compare_metric,
    compare_variants,
    cuped_relative_difference,
    cuped_theta,
    relative_difference,
    report_from_attribution,
    sequential_halfwidth,
    sequential_rho,
    t_ppf,
)
from segmint.engine.events import Identify, Impression, Order, OrderItem

UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)
FIXED = AnalyticsConfig(sequential=False)
BAYESIAN = AnalyticsConfig(engine="bayesian")


# -- GrowthBook's worked numbers (gbstats' own test cases) ------------------------------------------

def test_revenue_per_visitor_is_growthbooks_mean_metric():
    # TwoSidedTTest, means: sum 1396.87, sum of squares 52377.9767, n 3407 vs 2422.7, 134698.29, 3461.
    lift = compare_metric(Sample.from_sums(1396.87, 52377.9767, 3407),
                          {"B": Sample.from_sums(2422.7, 134698.29, 3461)}, FIXED)["B"]
    assert [round(v, 5) for v in (lift.relative, lift.se, *lift.relative_ci, lift.p_value)] == \
        [0.70732, 0.37879, -0.03526, 1.44989, 0.06191]


def test_a_ratio_whose_denominator_is_always_1_is_the_mean_metric():
    control = Sample.ratio(1396.87, 52377.9767, 3407, 3407, 1396.87, 3407)
    variant = Sample.ratio(2422.7, 134698.29, 3461, 3461, 2422.7, 3461)
    lift = compare_metric(control, {"B": variant}, FIXED)["B"]
    assert [round(v, 5) for v in (lift.relative, lift.se, lift.p_value)] == [0.70732, 0.37879, 0.06191]


def test_the_ratio_variance_is_the_delta_method_on_the_units_data():
    rng = random.Random(3)
    orders = [rng.randrange(1, 4) for _ in range(400)]
    revenue = [sum(rng.uniform(10, 90) for _ in range(k)) for k in orders]
    sample = Sample.ratio(sum(revenue), sum(r * r for r in revenue), sum(orders), sum(k * k for k in orders),
                          sum(r * k for r, k in zip(revenue, orders)), len(orders))
    aov = sum(revenue) / sum(orders)
    assert sample.mean == pytest.approx(aov)
    # Linearized: Var(revenue - AOV x orders) / mean(orders)^2 is the ratio's per-unit variance.
    linear = [r - aov * k for r, k in zip(revenue, orders)]
    assert sample.variance == pytest.approx(statistics.variance(linear) / statistics.mean(orders) ** 2)


def test_cuped_equals_growthbooks_regression_adjustment():
    # SequentialTwoSidedTTest with RegressionAdjustedStatistic, theta computed (gbstats' compute_theta).
    control = Moments(3000, 1396.87, 52377.9767, 16.87, 527.9767, 1)
    variant = Moments(3461, 2422.7, 134698.29, 22.7, 1348.29, 1)
    d = cuped_relative_difference(control, variant)
    half = sequential_halfwidth(d.se, d.n, sequential_rho(0.05, 5000), 0.05)
    assert [round(v, 5) for v in (d.estimate, d.se, d.estimate - half, d.estimate + half)] == \
        [0.50338, 0.33341, -0.50969, 1.51646]
    assert d.theta == pytest.approx(cuped_theta(control, variant)) != 0


def test_cuped_with_a_useless_covariate_is_the_plain_lift():
    control, variant = Moments(1000, 120, 120, 0, 0, 0, proportion=True), Moments(1000, 150, 150, 0, 0, 0, True)
    plain = relative_difference(Sample.proportion(120, 1000), Sample.proportion(150, 1000))
    adjusted = cuped_relative_difference(control, variant)
    assert adjusted.theta == 0
    assert (adjusted.estimate, adjusted.se) == pytest.approx((plain.estimate, plain.se))


@pytest.mark.parametrize(("control", "variant", "expected"), [
    # GaussianEffectABTest, means (sum 100, sum of squares 1002.25, n 10 vs 105, 1111.5, 10).
    (Sample.from_sums(100, 1002.25, 10), Sample.from_sums(105, 1111.5, 10),
     (0.05, 0.03572, -0.02, 0.12, 0.91923, 0.05131, 0.00131)),
    # GaussianEffectABTest, proportions 49/100 vs 51/100.
    (Sample.proportion(49, 100), Sample.proportion(51, 100),
     (0.04082, 0.14725, -0.24779, 0.32943, 0.60918, 0.0814, 0.04058)),
], ids=["means", "proportions"])
def test_bayesian_numbers_equal_growthbooks_own_test_cases(control, variant, expected):
    lift = compare_metric(control, {"B": variant}, BAYESIAN)["B"]
    posterior = Posterior.of(relative_difference(control, variant), BAYESIAN)
    got = (lift.relative, posterior.sd, *lift.relative_ci, lift.chance_to_win, lift.expected_loss_control,
           lift.expected_loss)
    assert [round(v, 5) for v in got] == list(expected)
    assert lift.method == "bayesian" and lift.correction == "none"


def test_a_proper_prior_shrinks_the_lift_toward_its_mean():
    d = relative_difference(Sample.proportion(49, 100), Sample.proportion(51, 100))
    settings = AnalyticsConfig(engine="bayesian", proper_prior=True, prior_mean=0.0, prior_sd=0.3)
    posterior = Posterior.of(d, settings)
    precision = 1 / d.se ** 2 + 1 / 0.3 ** 2  # gbstats: data precision plus prior precision
    assert posterior.sd == pytest.approx(math.sqrt(1 / precision))
    assert posterior.mean == pytest.approx(d.estimate / d.se ** 2 / precision)
    assert 0 < posterior.mean < d.estimate


def test_the_bayesian_verdict_and_its_credible_interval_never_disagree():
    rng = random.Random(11)
    for _ in range(300):
        n = rng.randrange(500, 5000)
        base = rng.uniform(0.02, 0.2)
        counts = {"B": (int(n * base * rng.uniform(0.8, 1.3)), n), "C": (int(n * base * rng.uniform(0.8, 1.3)), n)}
        for lift in compare_variants((int(n * base), n), counts, BAYESIAN).values():
            low, high = lift.relative_ci
            assert lift.significant == (low > 0 or high < 0)
            assert lift.significant == (lift.chance_to_win > 0.975 or lift.chance_to_win < 0.025)


# -- CUPED: narrower intervals, the same coverage ---------------------------------------------------

def _arm(rng, n, lift):
    """Per visitor: spend before exposure and revenue after, correlated (a returning buyer)."""
    pre = [rng.lognormvariate(3.0, 0.8) if rng.random() < 0.6 else 0.0 for _ in range(n)]
    post = [max(0.0, (0.7 * x + rng.gauss(12.0, 10.0)) * (1 + lift)) for x in pre]
    return Moments(n, sum(post), sum(y * y for y in post), sum(pre), sum(x * x for x in pre),
                   sum(x * y for x, y in zip(pre, post)))


def test_cuped_narrows_the_revenue_interval_and_keeps_its_coverage():
    rng = random.Random(20261204)
    truth, runs = 0.10, 300
    covered = {"plain": 0, "cuped": 0}
    widths = {"plain": [], "cuped": []}
    for _ in range(runs):
        control, variant = _arm(rng, 1000, 0.0), _arm(rng, 1000, truth)
        for name, d in (("plain", relative_difference(control.post, variant.post)),
                        ("cuped", cuped_relative_difference(control, variant))):
            half = t_ppf(0.975, d.dof) * d.se
            covered[name] += d.estimate - half <= truth <= d.estimate + half
            widths[name].append(2 * half)
    # 300 runs: a 95% interval covers 285 times, give or take 7.5 (two standard errors).
    assert 277 <= covered["plain"] <= 293 and 277 <= covered["cuped"] <= 293
    assert statistics.mean(widths["cuped"]) < 0.8 * statistics.mean(widths["plain"])


# -- through attribution and the report -------------------------------------------------------------

def _buyers(campaign_events, rng, n, variant, share, price, history=0.0):
    """``n`` visitors in ``variant``; ``share`` of them buy one order of about ``price``. With
    ``history``, half of them bought before their exposure, and those buy again more often and
    for more (a correlated pre-period)."""
    events = []
    for i in range(n):
        visitor, spent = f"{variant}-{i}", 0.0
        if history and rng.random() < 0.5:
            spent = round(history * rng.uniform(0.2, 2.0), 2)
            events.append(Order(order_id=f"h-{visitor}", visitor_id=visitor, at=T0,
                                items=[OrderItem(sku="h", price=spent)]))
        events.append(Impression(campaign="c", variant=variant, visitor_id=visitor, at=T0 + timedelta(days=1)))
        if rng.random() < (share * 1.5 if spent else share * 0.5 if history else share):
            value = price * rng.uniform(0.8, 1.2) + spent
            events.append(Order(order_id=f"o-{visitor}", visitor_id=visitor, at=T0 + timedelta(days=2),
                                items=[OrderItem(sku="s", price=round(value, 2))]))
    campaign_events.extend(events)


def test_more_conversion_with_less_revenue_per_visitor_trips_the_guardrail():
    rng, events = random.Random(5), []
    _buyers(events, rng, 4000, "control", 0.05, 100.0)
    _buyers(events, rng, 4000, "B", 0.07, 40.0)  # converts more, sells much less
    report = report_from_attribution(attribute(sorted(events, key=lambda e: e.at)), now=T0 + timedelta(days=9))
    (campaign,) = report.campaigns
    control, b = campaign.variants
    assert b.lift.significant and b.lift.relative > 0
    assert b.revenue_lift.significant and b.revenue_lift.relative < 0 and b.revenue_guardrail
    assert "guardrail" in b.statement and not control.revenue_guardrail
    assert b.aov_lift.significant and b.aov_lift.relative == pytest.approx(b.average_order_value
                                                                        / control.average_order_value - 1)
    assert b.revenue_lift.control_rate == pytest.approx(control.revenue_per_visitor)
    row = next(r for r in report.rows() if r["variant"] == "B")
    assert row["revenue_guardrail"] is True and row["revenue_lift_relative"] < 0


def test_a_variant_that_earns_more_is_not_flagged():
    rng, events = random.Random(6), []
    _buyers(events, rng, 3000, "control", 0.05, 50.0)
    _buyers(events, rng, 3000, "B", 0.05, 80.0)
    report = report_from_attribution(attribute(sorted(events, key=lambda e: e.at)), now=T0 + timedelta(days=9))
    b = report.campaigns[0].variants[1]
    assert b.revenue_lift.significant and b.revenue_lift.relative > 0 and not b.revenue_guardrail


def test_the_report_adjusts_with_the_visitors_history_when_cuped_is_on():
    rng, events = random.Random(8), []
    _buyers(events, rng, 2000, "control", 0.3, 50.0, history=60.0)
    _buyers(events, rng, 2000, "B", 0.3, 55.0, history=60.0)
    attribution = attribute(sorted(events, key=lambda e: e.at))
    on = report_from_attribution(attribution, now=T0 + timedelta(days=9)).campaigns[0].variants[1]
    off = report_from_attribution(attribution, now=T0 + timedelta(days=9),
                                  analysis=AnalyticsConfig(cuped=False)).campaigns[0].variants[1]
    assert off.revenue_lift.cuped_theta is None and off.lift.cuped_theta is None
    for adjusted, plain in ((on.revenue_lift, off.revenue_lift), (on.lift, off.lift)):
        assert adjusted.cuped_theta > 0 and adjusted.se < plain.se  # the history explains some noise
    assert on.revenue_lift.se < 0.9 * off.revenue_lift.se


def test_the_json_carries_revenue_bayesian_numbers_and_multi_arm_exposure():
    events = [Impression(campaign="c", variant=v, visitor_id=f"{v}{i}", at=T0 + timedelta(hours=i))
              for i in range(40) for v in ("control", "B")]
    events += [Order(order_id=f"o{i}", visitor_id=f"B{i}", at=T0 + timedelta(days=2, hours=i),
                     items=[OrderItem(sku="s", price=10.0 + i)]) for i in range(0, 40, 3)]
    events += [Order(order_id=f"c{i}", visitor_id=f"control{i}", at=T0 + timedelta(days=2, hours=i),
                     items=[OrderItem(sku="s", price=12.0 + i)]) for i in range(0, 40, 4)]
    events += [Identify(visitor_id="B1", customer_id="42", at=T0 + timedelta(days=3)),
               Identify(visitor_id="control1", customer_id="42", at=T0 + timedelta(days=3))]
    report = report_from_attribution(attribute(sorted(events, key=lambda e: e.at)), now=T0 + timedelta(days=9),
                                     analysis=BAYESIAN)
    data = report.to_dict()
    (campaign,) = data["campaigns"]
    assert campaign["multi_arm_visitors"] == 1
    b = campaign["variants"][1]
    assert {"revenue_lift", "aov_lift", "revenue_guardrail"} <= set(b)
    for lift in (b["lift"], b["revenue_lift"], b["aov_lift"]):
        assert lift["method"] == "bayesian"
        assert 0 < lift["chance_to_win"] < 1 and lift["expected_loss"] >= 0
    assert "chance to beat control" in b["statement"]
    assert data["analysis"]["engine"] == "bayesian"
