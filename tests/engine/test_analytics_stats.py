"""Lift statistics: GrowthBook's worked numbers, the distributions behind them, corrections across
variants, sample ratio mismatch, visitors needed, and the lift of known traffic."""

import math
import random
from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.analytics import (
    AnalyticsConfig,
    Sample,
    adjust_p_values,
    attribute,
    build_report,
    chi2_sf,
    compare_variants,
    norm_cdf,
    norm_ppf,
    relative_difference,
    report_from_attribution,
    sequential_halfwidth,
    sequential_p_value,
    sequential_rho,
    srm_test,
    t_cdf,
    t_ppf,
    two_proportion_test,
    visitors_per_arm,
)
from segmint.engine.events import Impression, Order, OrderItem
from segmint.engine.stores import SQLiteStore

UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)
FIXED = AnalyticsConfig(sequential=False)


@pytest.mark.parametrize(("p", "z"), [(0.5, 0.0), (0.975, 1.959963985), (0.8, 0.841621234),
                                      (0.001, -3.090232306), (1e-6, -4.753424309)])
def test_norm_ppf_matches_tabulated_quantiles(p, z):
    assert norm_ppf(p) == pytest.approx(z, abs=1e-7)
    assert norm_cdf(norm_ppf(p)) == pytest.approx(p, rel=1e-6)


def test_norm_ppf_rejects_probabilities_outside_0_1():
    with pytest.raises(ValueError):
        norm_ppf(1.0)


@pytest.mark.parametrize(("q", "dof", "t"), [(0.975, 1, 12.706204736), (0.975, 10, 2.228138852),
                                             (0.975, 30, 2.042272456), (0.995, 5, 4.032142984),
                                             (0.9, 2, 1.885618083), (0.9, 3, 1.637744354),
                                             (0.975, 1e6, 1.959963985)])
def test_student_t_matches_tabulated_quantiles(q, dof, t):
    assert t_ppf(q, dof) == pytest.approx(t, rel=1e-8)
    assert t_cdf(t_ppf(q, dof), dof) == pytest.approx(q, abs=1e-10)
    assert t_cdf(-t_ppf(q, dof), dof) == pytest.approx(1 - q, abs=1e-10)


@pytest.mark.parametrize(("x", "df"), [(3.841459, 1), (5.991465, 2), (7.814728, 3), (9.487729, 4),
                                       (11.070498, 5), (18.307038, 10)])
def test_chi_square_tail_matches_the_tabulated_5_percent_points(x, df):
    assert chi2_sf(x, df) == pytest.approx(0.05, abs=1e-6)
    assert chi2_sf(0.0, df) == 1.0


# -- GrowthBook's worked numbers (gbstats' own test cases, packages/stats/tests/frequentist) ---------

def _mean_sample(total, sum_squares, n):
    """gbstats' SampleMeanStatistic: the mean and the sample variance from sums."""
    return Sample(total / n, (sum_squares - total * total / n) / (n - 1), n)


def _fixed(control, variant):
    d = relative_difference(control, variant)
    half = t_ppf(0.975, d.dof) * d.se
    return d.estimate, d.se, (d.estimate - half, d.estimate + half), 2 * (1 - t_cdf(abs(d.z), d.dof))


def _sequential(control, variant, tuning):
    d = relative_difference(control, variant)
    rho = sequential_rho(0.05, tuning)
    half = sequential_halfwidth(d.se, d.n, rho, 0.05)
    return d.estimate, d.se, (d.estimate - half, d.estimate + half), sequential_p_value(d.estimate, d.se, d.n, rho)


@pytest.mark.parametrize(("result", "expected"), [
    # TwoSidedTTest, proportions 14/28 vs 16/30: lift, its standard error, the 95% CI, the p-value.
    (lambda: _fixed(Sample.proportion(14, 28), Sample.proportion(16, 30)),
     (0.06667, 0.2717, (-0.47767, 0.61101), 0.80707)),
    # TwoSidedTTest, means (sum 1396.87, sum of squares 52377.9767, n 3407 vs 2422.7, 134698.29, 3461).
    (lambda: _fixed(_mean_sample(1396.87, 52377.9767, 3407), _mean_sample(2422.7, 134698.29, 3461)),
     (0.70732, 0.37879, (-0.03526, 1.44989), 0.06191)),
    # SequentialTwoSidedTTest, the same means with n 3000, tuning parameter 1000.
    (lambda: _sequential(_mean_sample(1396.87, 52377.9767, 3000), _mean_sample(2422.7, 134698.29, 3461), 1000),
     (0.50336, 0.33341, (-0.55844, 1.56516), 1.0)),
    # SequentialTwoSidedTTest, proportions 1396/3000 vs 2422/3461, the default tuning 5000.
    (lambda: _sequential(Sample.proportion(1396, 3000), Sample.proportion(2422, 3461), 5000),
     (0.50386, 0.03386, (0.40098, 0.60675), 0.0)),
], ids=["fixed-proportions", "fixed-means", "sequential-means", "sequential-proportions"])
def test_numbers_equal_growthbooks_own_test_cases(result, expected):
    estimate, se, (low, high), p = result()
    assert [round(v, 5) for v in (estimate, se, low, high, p)] == \
        [expected[0], expected[1], *expected[2], expected[3]]


def test_rho_follows_from_the_tuning_parameter():
    # rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / N*), GrowthBook's docs (power-technical).
    assert sequential_rho(0.05, 5000) == pytest.approx(
        math.sqrt((-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 5000))
    assert sequential_rho(0.05, 5000) == pytest.approx(0.0398399, rel=1e-5)


def test_the_report_path_gives_growthbooks_numbers_for_either_method():
    lift = two_proportion_test(14, 28, 16, 30, settings=FIXED)
    assert (round(lift.relative, 5), round(lift.se, 5), round(lift.p_value, 5)) == (0.06667, 0.2717, 0.80707)
    assert tuple(round(v, 5) for v in lift.relative_ci) == (-0.47767, 0.61101)
    assert lift.method == "fixed" and lift.confidence == pytest.approx(0.95) and not lift.significant
    lift = two_proportion_test(1396, 3000, 2422, 3461)
    assert tuple(round(v, 5) for v in lift.relative_ci) == (0.40098, 0.60675)
    assert lift.method == "sequential" and lift.significant


def test_the_absolute_interval_is_the_relative_one_in_points_so_both_agree_with_the_verdict():
    # Near p = 0.05 a separate absolute test could call it the other way; here it cannot.
    for variant in range(1085, 1110):
        lift = two_proportion_test(1000, 20_000, variant, 20_000, settings=FIXED)
        assert lift.absolute == pytest.approx(variant / 20_000 - 0.05)
        assert lift.absolute_ci == pytest.approx(tuple(r * 0.05 for r in lift.relative_ci))
        assert lift.significant == (lift.absolute_ci[0] > 0) == (lift.relative_ci[0] > 0)


# -- several arms ------------------------------------------------------------------------------

def test_holm_and_benjamini_hochberg_adjust_as_their_textbook_definitions():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 -> 4p, 3p, 2p, 1p, running max.
    assert adjust_p_values(p, "holm-bonferroni") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: m p / rank from the largest down, running min: 0.04, 0.04, 0.02, 0.02.
    assert adjust_p_values(p, "benjamini-hochberg") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_p_values(p, "none") == p
    assert adjust_p_values([0.2], "holm-bonferroni") == [0.2]
    with pytest.raises(ValueError, match="holm-bonferroni"):
        adjust_p_values(p, "bonferoni")


def test_a_variant_significant_alone_is_not_after_the_correction_and_its_interval_says_so():
    control, b, c = (1000, 20_000), (1100, 20_000), (1000, 20_000)
    alone = compare_variants(control, {"B": b}, FIXED)["B"]
    assert 0.025 < alone.p_value < 0.05 and alone.significant and alone.relative_ci[0] > 0
    holm = compare_variants(control, {"B": b, "C": c}, FIXED)
    assert holm["B"].p_value == pytest.approx(alone.p_value)
    assert holm["B"].p_value_adjusted == pytest.approx(2 * alone.p_value)
    assert not holm["B"].significant and holm["B"].relative_ci[0] < 0 < holm["B"].relative_ci[1]
    # Holm spends alpha / 2 on the smallest p-value: the interval is the 97.5% one.
    assert holm["B"].confidence == pytest.approx(0.975)
    assert holm["B"].correction == "holm-bonferroni"
    none = compare_variants(control, {"B": b, "C": c}, AnalyticsConfig(sequential=False, correction="none"))
    assert none["B"].significant and none["B"].relative_ci == pytest.approx(alone.relative_ci)


# -- sample ratio mismatch ---------------------------------------------------------------------

def test_srm_is_a_chi_square_test_against_the_configured_weights():
    balanced = srm_test({"control": 5000, "B": 5150}, {"control": 1, "B": 1})
    chi2 = 2 * 75 ** 2 / 5075
    assert balanced.chi2 == pytest.approx(chi2) and balanced.p_value == pytest.approx(chi2_sf(chi2, 1))
    assert not balanced.mismatch and "split as configured" in balanced.message
    skewed = srm_test({"control": 5000, "B": 5400}, {"control": 1, "B": 1})
    assert skewed.p_value == pytest.approx(8.8e-5, rel=0.02) and skewed.mismatch
    assert "must not be trusted" in skewed.message
    # Weights are shares: 1:3 expects 2,500 / 7,500.
    assert not srm_test({"control": 2480, "B": 7520}, {"control": 1, "B": 3}).mismatch
    three = srm_test({"control": 3000, "B": 3000, "C": 3300}, {"control": 1, "B": 1, "C": 1})
    assert three.chi2 == pytest.approx(2 * 100 ** 2 / 3100 + 200 ** 2 / 3100)
    assert three.p_value == pytest.approx(chi2_sf(three.chi2, 2))


def test_srm_leaves_out_variants_the_config_no_longer_assigns_and_skips_what_it_cannot_test():
    # A campaign split after running alone: its old "default" visitors are history, not a mismatch.
    split = srm_test({"control": 1000, "B": 1010, "default": 5000, "paused": 40},
                     {"control": 1, "B": 1, "paused": 0})
    assert not split.mismatch and split.observed == {"control": 1000, "B": 1010}
    assert split.left_out == {"default": 5000, "paused": 40}
    assert "left out, not assigned by the config: default 5,000, paused 40" in split.message
    assert srm_test({"control": 10, "B": 10}, {"control": 1, "B": 0}) is None  # one weighted arm
    assert srm_test({}, {"control": 1, "B": 1}) is None


# -- visitors needed -----------------------------------------------------------------------------

def test_visitors_needed_follow_growthbooks_power_for_a_relative_lift():
    # Fixed horizon, 10% -> 12% (mde 20%): n = (z_0.975 + z_0.8)^2 Var_1 / mde^2, with the
    # delta-method variance of one visitor per arm: s_c^2 mu_t^2 / mu_c^4 + s_t^2 / mu_c^2.
    var_1 = 0.1 * 0.9 * 0.12 ** 2 / 0.1 ** 4 + 0.12 * 0.88 / 0.1 ** 2
    closed_form = (norm_ppf(0.975) + norm_ppf(0.8)) ** 2 * var_1 / 0.2 ** 2
    assert visitors_per_arm(0.10, 0.20) == math.ceil(closed_form) == 4616
    # A sequential reading needs more visitors for the same power; a larger effect, fewer.
    assert visitors_per_arm(0.10, 0.20, tuning=5000) > visitors_per_arm(0.10, 0.20)
    assert visitors_per_arm(0.02, 0.10) > visitors_per_arm(0.02, 0.30)


def test_visitors_needed_plan_for_the_configured_mde_not_the_observed_effect():
    settings = AnalyticsConfig(sequential=False, mde=0.2)
    for variant in (24, 40):  # observed lifts of 20% and 100%: the plan is the same
        lift = two_proportion_test(20, 1000, variant, 1000, settings=settings)
        assert lift.needed_per_arm == visitors_per_arm(0.02, 0.2)
    lift = two_proportion_test(20, 1000, 24, 1000, settings=settings)
    assert not lift.significant and lift.more_visitors == 2 * lift.needed_per_arm - 2000
    smaller = two_proportion_test(20, 1000, 24, 1000, settings=AnalyticsConfig(sequential=False, mde=0.1))
    assert smaller.needed_per_arm > lift.needed_per_arm


def test_no_conversions_in_control_leaves_relative_lift_undefined_and_no_verdict():
    lift = two_proportion_test(0, 500, 30, 500)
    assert lift.relative is None and lift.relative_ci is None and lift.needed_per_arm is None
    assert not lift.significant and lift.p_value == 1.0


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


def test_an_aa_split_read_once_is_significant_about_alpha_of_the_time():
    rng = random.Random(7)
    n, p = 2000, 0.05
    fixed = sequential = 0
    for _ in range(200):
        a = sum(rng.random() < p for _ in range(n))
        b = sum(rng.random() < p for _ in range(n))
        fixed += two_proportion_test(a, n, b, n, settings=FIXED).significant
        sequential += two_proportion_test(a, n, b, n).significant
    # The fixed test's false positive rate is alpha (5%): about 10 of 200, never a flood; the
    # sequential one, valid for every look, is stricter at any single one.
    assert 1 <= fixed <= 20
    assert sequential <= fixed


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
