"""Experiment statistics as GrowthBook's frequentist engine computes them, with ``math`` only.

Everything starts from one number and its one standard error (``Difference``): the relative
lift of a variant over the control, ``(mean_v - mean_c) / mean_c``, with the delta-method
variance ``var_c mean_v^2 / (mean_c^4 n_c) + var_v / (mean_c^2 n_v)``. The p-value, the
verdict and the interval all come from that estimate and that standard error, so they cannot
disagree. Means and per-unit variances go in, so the same core serves any metric: a
conversion rate (variance ``p (1 - p)``), revenue per visitor (the sample variance), a ratio.

Two ways to read it (``AnalyticsConfig.sequential``):

* **fixed horizon**: Welch's t-test, ``p = 2 (1 - F_t(|d / se|, nu))`` with Welch-Satterthwaite
  degrees of freedom ``nu``, and the interval ``d +/- F_t^-1(1 - alpha / 2, nu) se``. Valid when
  the result is read once, at a sample size fixed in advance.
* **sequential** (default): GrowthBook's asymptotic confidence sequences (Waudby-Smith et al.),
  valid however often the report is read. With ``n`` the visitors of both arms and ``N*`` the
  tuning parameter (the sample size at which the sequence is tightest),
  ``rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / N*)``, the half-width is
  ``se sqrt(n) sqrt(2 (n rho^2 + 1) ln(sqrt(n rho^2 + 1) / alpha) / (n rho)^2)`` and the
  always-valid p-value ``min(1, sqrt(n rho^2 + 1) exp(-rho^2 n z^2 / (2 (n rho^2 + 1))))``
  with ``z = d / se``: the sequence excludes 0 exactly when ``p < alpha``.

With several variants against one control, the p-values are adjusted across the campaign's
variants (Holm-Bonferroni by default, or Benjamini-Hochberg), the verdict is "adjusted p <
alpha", and each interval is drawn at the level ``alpha p / p_adjusted`` that the correction
spends on that variant (Bonferroni's ``alpha / m`` when Holm is at its strictest), so a
significant verdict always comes with an interval that excludes 0. (GrowthBook leaves its
intervals unadjusted; ``p_value`` here is the unadjusted one.) The absolute lift's interval
is the relative one times the control's rate, so it tells the same story in points.

The same reading serves every metric (``compare_metric``): revenue per visitor, a mean metric
whose variance comes from the sums of squares (``Sample.from_sums``), and average order value,
a ratio metric with the delta-method variance of a ratio (``Sample.ratio``), as GrowthBook's
``SampleMeanStatistic`` and ``RatioStatistic``. CUPED (``cuped_relative_difference``) is
gbstats' regression adjustment: each unit's metric minus ``theta`` times its pre-exposure
value, ``theta`` pooled over both arms, and ``frequentist_variance_relative_cuped`` for the
standard error. The Bayesian view (``Posterior``, ``engine = "bayesian"``) is GrowthBook's
default engine: a gaussian posterior on the relative lift (flat prior, or a proper one), the
chance to beat control and the expected loss (``risk``); its verdict is "chance beyond
1 - alpha / 2 either way", so it agrees with its credible interval too.

Sample ratio mismatch: a chi-square goodness-of-fit test of the observed visitors per
variant against the configured weights (``srm_test``). Visitors needed: the visitors per
arm that give the configured power to detect the configured minimum detectable effect,
by GrowthBook's power formula for relative lifts (``visitors_per_arm``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, get_args

from ..config.schema import AnalyticsConfig, Correction

__all__ = [
    "AnalyticsConfig",
    "CORRECTIONS",
    "Sample",
    "Difference",
    "Lift",
    "Moments",
    "Adjusted",
    "Posterior",
    "SampleRatio",
    "norm_cdf",
    "norm_ppf",
    "t_cdf",
    "t_ppf",
    "chi2_sf",
    "relative_difference",
    "sequential_rho",
    "sequential_halfwidth",
    "sequential_p_value",
    "adjust_p_values",
    "compare_variants",
    "compare_metric",
    "cuped_theta",
    "cuped_relative_difference",
    "two_proportion_test",
    "srm_test",
    "visitors_per_arm",
    "describe_method",
]

#: Multiple-comparison corrections across a campaign's variants, as ``[analytics] correction``.
CORRECTIONS: tuple[str, ...] = get_args(Correction)
_CORRECTION_NAMES = {"holm-bonferroni": "Holm-Bonferroni", "benjamini-hochberg": "Benjamini-Hochberg",
                     "none": "no correction"}


# -- distributions -------------------------------------------------------------------------------

def norm_cdf(x: float) -> float:
    """The standard normal CDF, Phi(x)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# Acklam's coefficients for the inverse normal CDF (relative error < 1.2e-9).
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_LOW = 0.02425


def norm_ppf(p: float) -> float:
    """The standard normal quantile, Phi^-1(p), for ``0 < p < 1`` (Acklam's approximation)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"norm_ppf needs 0 < p < 1, got {p!r}")
    if p < _LOW:
        q = math.sqrt(-2.0 * math.log(p))
        return ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
                / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    if p > 1.0 - _LOW:
        return -norm_ppf(1.0 - p)
    q = p - 0.5
    r = q * q
    return ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
            / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))  # the even step
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))  # the odd step
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _beta_inc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


#: Past this many degrees of freedom Student's t is the normal to within 1e-6 (and the fraction loses digits).
_T_AS_NORMAL = 2e5


def _t_tail(t: float, dof: float) -> float:
    """P(T > t) for t >= 0 (computed in the tail, so small tails keep their digits)."""
    if dof >= _T_AS_NORMAL or math.isinf(dof):
        return 0.5 * math.erfc(t / math.sqrt(2.0))
    return 0.5 * _beta_inc(dof / 2.0, 0.5, dof / (dof + t * t))


def t_cdf(t: float, dof: float) -> float:
    """Student's t CDF with (possibly fractional) ``dof`` degrees of freedom."""
    tail = _t_tail(abs(t), dof)
    return 1.0 - tail if t > 0 else tail


def _t_pdf(t: float, dof: float) -> float:
    return math.exp(math.lgamma((dof + 1.0) / 2.0) - math.lgamma(dof / 2.0) - 0.5 * math.log(dof * math.pi)
                    - (dof + 1.0) / 2.0 * math.log1p(t * t / dof))


def t_ppf(p: float, dof: float) -> float:
    """Student's t quantile, the inverse of ``t_cdf``: Newton on the tail from Cornish-Fisher's
    start, kept inside a bracket that bisection narrows whenever a step would leave it."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_ppf needs 0 < p < 1, got {p!r}")
    if p < 0.5:
        return -t_ppf(1.0 - p, dof)
    z = norm_ppf(p)
    if dof >= _T_AS_NORMAL or math.isinf(dof):
        return z
    # The start is within ~1e-6 for the large dof of a web experiment, so Newton takes a step
    # or two; the bracket keeps small dof (heavy tails) safe.
    x = z + (z ** 3 + z) / (4.0 * dof) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96.0 * dof * dof)
    target, low, high = 1.0 - p, 0.0, math.inf
    for _ in range(200):
        error = _t_tail(x, dof) - target
        if error > 0:
            low = x
        else:
            high = x
        step = x + error / _t_pdf(x, dof)
        x_next = step if low < step < high else (low + high) / 2.0 if high < math.inf else 2.0 * x
        if abs(x_next - x) <= 1e-13 * x:
            return x_next
        x = x_next
    return x


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable with integer ``df`` (closed forms, no series cut-off)."""
    if df < 1:
        raise ValueError(f"chi2_sf needs df >= 1, got {df!r}")
    if x <= 0.0:
        return 1.0
    half = x / 2.0
    if df % 2 == 0:  # e^-h sum_{i < df/2} h^i / i!
        term = total = math.exp(-half)
        for i in range(1, df // 2):
            term *= half / i
            total += term
        return min(1.0, total)
    total = math.erfc(math.sqrt(half))  # df = 1, then the odd terms h^(i-1/2) e^-h / Gamma(i+1/2)
    term = math.exp(-half) * math.sqrt(half) / math.gamma(1.5) if df > 1 else 0.0
    for i in range(1, (df - 1) // 2 + 1):
        total += term
        term *= half / (i + 0.5)
    return min(1.0, total)


# -- one estimate, one standard error ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Sample:
    """One arm of one metric: its mean, the per-unit variance and the number of units."""

    mean: float
    variance: float
    n: int

    @classmethod
    def proportion(cls, converted: int, visitors: int) -> Sample:
        """A conversion rate: variance ``p (1 - p)`` (as GrowthBook's proportion metrics)."""
        p = converted / visitors
        return cls(p, p * (1.0 - p), visitors)

    @classmethod
    def from_sums(cls, total: float, sum_squares: float, n: int) -> Sample:
        """A mean metric (revenue per visitor) from its sums: the sample variance, as GrowthBook's
        ``SampleMeanStatistic``."""
        mean = total / n
        return cls(mean, _sample_variance(total, sum_squares, n), n)

    @classmethod
    def ratio(cls, numerator: float, numerator_squares: float, denominator: float,
              denominator_squares: float, products: float, n: int) -> Sample:
        """A ratio metric (average order value: revenue / orders) over ``n`` units, each with a
        numerator and a denominator: the ratio of the sums and its delta-method per-unit variance
        (GrowthBook's ``RatioStatistic``; ``products`` is the sum of numerator x denominator)."""
        mean_m, mean_d = numerator / n, denominator / n
        if mean_d == 0:
            return cls(0.0, 0.0, n)
        var_m = _sample_variance(numerator, numerator_squares, n)
        var_d = _sample_variance(denominator, denominator_squares, n)
        cov = _sample_covariance(numerator, denominator, products, n)
        variance = (var_m / mean_d ** 2 + var_d * mean_m ** 2 / mean_d ** 4
                    - 2.0 * cov * mean_m / mean_d ** 3)
        return cls(mean_m / mean_d, max(0.0, variance), n)


def _sample_variance(total: float, sum_squares: float, n: int) -> float:
    return max(0.0, (sum_squares - total * total / n) / (n - 1)) if n > 1 else 0.0


def _sample_covariance(x: float, y: float, products: float, n: int) -> float:
    return (products - x * y / n) / (n - 1) if n > 1 else 0.0


@dataclass(frozen=True, slots=True)
class Difference:
    """An effect with its one standard error; ``dof`` (Welch) for the t-test, ``n`` (both arms)
    for the sequential bound."""

    estimate: float
    se: float
    dof: float
    n: int

    @property
    def z(self) -> float:
        return self.estimate / self.se if self.se > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Adjusted(Difference):
    """A CUPED-adjusted difference and the slope ``theta`` it was adjusted with."""

    theta: float = 0.0


def _welch_dof(control: Sample, variant: Sample) -> float:
    top = (control.variance / control.n + variant.variance / variant.n) ** 2
    bottom = sum(s.variance ** 2 / (s.n ** 2 * (s.n - 1)) for s in (control, variant) if s.n > 1)
    return top / bottom if bottom > 0 else math.inf


def relative_difference(control: Sample, variant: Sample) -> Difference | None:
    """``mean_v / mean_c - 1`` with its delta-method standard error; None when the control's
    mean is 0 (a relative change of 0 is undefined)."""
    if control.mean == 0:
        return None
    mc, mv = control.mean, variant.mean
    var = control.variance * mv * mv / (mc ** 4 * control.n) + variant.variance / (mc * mc * variant.n)
    return Difference((mv - mc) / mc, math.sqrt(var), _welch_dof(control, variant), control.n + variant.n)


# -- CUPED: the same lift, less noise ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Moments:
    """One arm's sums over its units of a metric ``y`` and of ``x``, the same unit's value before
    its first exposure (the covariate): what CUPED needs, accumulated in the attribution pass.
    ``proportion``: ``y`` is 0 or 1 (converted), with variance ``p (1 - p)``."""

    n: int
    y: float
    y2: float
    x: float
    x2: float
    xy: float
    proportion: bool = False

    @property
    def post(self) -> Sample:
        if self.proportion:
            return Sample.proportion(int(round(self.y)), self.n)
        return Sample.from_sums(self.y, self.y2, self.n)

    @property
    def pre_variance(self) -> float:
        return _sample_variance(self.x, self.x2, self.n)

    @property
    def covariance(self) -> float:
        return _sample_covariance(self.x, self.y, self.xy, self.n)


def cuped_theta(control: Moments, variant: Moments) -> float:
    """GrowthBook's ``compute_theta``: the regression slope of the metric on its pre-exposure
    value over both arms pooled (0 when either has no variance)."""
    joint = Moments(control.n + variant.n, control.y + variant.y, control.y2 + variant.y2,
                    control.x + variant.x, control.x2 + variant.x2, control.xy + variant.xy,
                    control.proportion)
    pre, post = joint.pre_variance, joint.post.variance
    return joint.covariance / pre if pre > 0 and post > 0 else 0.0


def cuped_relative_difference(control: Moments, variant: Moments,
                              theta: float | None = None) -> Adjusted | None:
    """The relative lift of the CUPED-adjusted means ``mean_y - theta mean_x`` over the control's
    unadjusted mean, with GrowthBook's ``frequentist_variance_relative_cuped`` standard error;
    ``theta`` defaults to ``cuped_theta``. None when the control's mean is 0."""
    a, b = control.post, variant.post
    if a.mean == 0:
        return None
    if theta is None:
        theta = cuped_theta(control, variant)
    adjusted = [Sample(s.mean - theta * m.x / m.n,
                       max(0.0, s.variance + theta * theta * m.pre_variance - 2.0 * theta * m.covariance), m.n)
                for s, m in ((a, control), (b, variant))]
    mean_a2 = a.mean * a.mean
    v_variant = adjusted[1].variance / (b.n * mean_a2)
    v_control = (a.variance * b.mean * b.mean / mean_a2 - 2.0 * theta * control.covariance * b.mean / a.mean
                 + theta * theta * control.pre_variance) / (a.n * mean_a2)
    return Adjusted((adjusted[1].mean - adjusted[0].mean) / a.mean, math.sqrt(max(0.0, v_variant + v_control)),
                    _welch_dof(*adjusted), a.n + b.n, theta)


# -- the Bayesian view ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Posterior:
    """GrowthBook's default Bayesian engine (``EffectBayesianABTest``): a gaussian posterior on the
    relative lift, from the lift and its one standard error and a gaussian prior (flat unless
    ``proper_prior``)."""

    mean: float
    sd: float

    @classmethod
    def of(cls, d: Difference, settings: AnalyticsConfig) -> Posterior:
        if not settings.proper_prior:
            return cls(d.estimate, d.se)
        precision = 1.0 / d.se ** 2 + 1.0 / settings.prior_sd ** 2
        mean = (d.estimate / d.se ** 2 + settings.prior_mean / settings.prior_sd ** 2) / precision
        return cls(mean, math.sqrt(1.0 / precision))

    @property
    def chance_to_win(self) -> float:
        """P(lift > 0): the chance that the variant beats the control."""
        return norm_cdf(self.mean / self.sd)

    @property
    def risk(self) -> tuple[float, float]:
        """Expected loss, relative, of choosing (the control, the variant): the lift given up by
        choosing it, averaged over the posterior (truncated normal means, as gbstats' ``get_risk``)."""
        z = self.mean / self.sd
        density = self.sd * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        control_better = norm_cdf(-z)
        return (self.mean * (1.0 - control_better) + density, density - self.mean * control_better)


# -- reading it: fixed horizon or sequential ------------------------------------------------------

def sequential_rho(alpha: float, tuning: float) -> float:
    """GrowthBook's mixing parameter from the tuning parameter ``N*`` (two-sided)."""
    log_alpha = math.log(alpha)
    return math.sqrt((-2.0 * log_alpha + math.log(-2.0 * log_alpha + 1.0)) / tuning)


def sequential_halfwidth(se: float, n: int, rho: float, alpha: float) -> float:
    """Half-width of the asymptotic confidence sequence at ``n`` units (both arms)."""
    nr2 = n * rho * rho
    return se * math.sqrt(n) * math.sqrt(2.0 * (nr2 + 1.0) * math.log(math.sqrt(nr2 + 1.0) / alpha)
                                         / (n * rho) ** 2)


def sequential_p_value(estimate: float, se: float, n: int, rho: float) -> float:
    """The always-valid p-value: 1 / e-value, capped at 1 (GrowthBook's reparameterization)."""
    nr2p1 = n * rho * rho + 1.0
    exponent = rho * rho * n * (estimate / se) ** 2 / (2.0 * nr2p1)
    return min(1.0, math.sqrt(nr2p1) * math.exp(-exponent))


def _p_value(d: Difference, settings: AnalyticsConfig) -> float:
    if d.se <= 0:
        return 1.0  # no variance: GrowthBook's "default output"
    if settings.sequential:
        return sequential_p_value(d.estimate, d.se, d.n, sequential_rho(settings.alpha, settings.sequential_tuning))
    return 2.0 * (1.0 - t_cdf(abs(d.z), d.dof))


def _halfwidth(d: Difference, alpha: float, settings: AnalyticsConfig) -> float:
    if d.se <= 0:
        return 0.0
    if settings.sequential:
        # rho stays the configured one, so the sequence at ``alpha`` excludes 0 iff p < alpha.
        return sequential_halfwidth(d.se, d.n, sequential_rho(settings.alpha, settings.sequential_tuning), alpha)
    return t_ppf(1.0 - alpha / 2.0, d.dof) * d.se


def adjust_p_values(p_values: Sequence[float], correction: str) -> list[float]:
    """Adjusted p-values across a family (one campaign's variants), in the input order.

    >>> [round(p, 3) for p in adjust_p_values([0.01, 0.04, 0.03], "holm-bonferroni")]
    [0.03, 0.06, 0.06]
    >>> [round(p, 3) for p in adjust_p_values([0.01, 0.04, 0.03], "benjamini-hochberg")]
    [0.03, 0.04, 0.04]
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; one of {', '.join(CORRECTIONS)}")
    m = len(p_values)
    if correction == "none" or m < 2:
        return list(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    if correction == "holm-bonferroni":  # step down: running max of (m - rank) p
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[i]))
            adjusted[i] = running
    else:  # Benjamini-Hochberg, step up: running min from the largest of m p / (rank + 1)
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, m * p_values[i] / (rank + 1))
            adjusted[i] = running
    return adjusted


# -- the lift of each variant ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Lift:
    """A variant against the control on one metric. Rates and lifts are fractions (0.12 = 12%);
    ``control_rate`` and ``variant_rate`` are the metric's means (revenue per visitor, average
    order value) when it is not conversion.

    The verdict (``significant``) and both intervals come from the same standard errors at the
    same level (``confidence``), so a significant lift's ``relative_ci`` excludes 0 and a
    non-significant one's contains it.
    """

    control_rate: float
    variant_rate: float
    absolute: float
    #: ``relative_ci`` times the control's rate (None with it): the same interval in points.
    absolute_ci: tuple[float, float] | None
    #: None when the control converted nobody (a relative change of 0 is undefined).
    relative: float | None
    relative_ci: tuple[float, float] | None
    #: The relative lift over its standard error (the t statistic).
    z: float
    #: Unadjusted: the t-test's, or the always-valid one when sequential.
    p_value: float
    significant: bool
    #: Visitors per arm to detect the configured minimum detectable effect (None: no rate yet).
    needed_per_arm: int | None
    #: About how many more visitors (both arms, at the current split) until then; 0 if reached.
    more_visitors: int | None
    #: The standard error of ``relative`` (0 when undefined).
    se: float = 0.0
    #: After the correction across the campaign's variants (equal to ``p_value`` for one variant).
    p_value_adjusted: float | None = None
    #: The level of both intervals: 1 - alpha, or narrower when a correction spends less on it.
    confidence: float = 0.95
    #: ``"sequential"``, ``"fixed"`` or ``"bayesian"`` (then the intervals are credible intervals
    #: and the verdict is the chance to beat control; the p-values stay, for reference).
    method: str = "sequential"
    correction: str = "holm-bonferroni"
    #: Bayesian: P(the variant beats the control). None with the frequentist engine.
    chance_to_win: float | None = None
    #: Bayesian: the relative lift expected to be lost by choosing the variant (GrowthBook's risk).
    expected_loss: float | None = None
    #: Bayesian: the same for keeping the control.
    expected_loss_control: float | None = None
    #: CUPED's slope when the lift was adjusted for the pre-exposure values; None when not.
    cuped_theta: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_counts(name: str, converted: int, visitors: int) -> None:
    if visitors <= 0 or not 0 <= converted <= visitors:
        raise ValueError(f"{name}: need 0 <= converted <= visitors and visitors > 0, "
                         f"got {converted} of {visitors}")


def compare_variants(control: tuple[int, int], variants: Mapping[str, tuple[int, int]],
                     settings: AnalyticsConfig | None = None, *,
                     differences: Mapping[str, Difference | None] | None = None) -> dict[str, Lift]:
    """Each variant's conversion ``(converted, visitors)`` against the control's, corrected
    across the variants. ``differences``: the lifts already adjusted (CUPED), by variant.

    >>> lifts = compare_variants((1000, 50_000), {"B": (1300, 50_000), "C": (1010, 50_000)})
    >>> [(name, round(lift.relative, 2), lift.significant) for name, lift in lifts.items()]
    [('B', 0.3, True), ('C', 0.01, False)]
    """
    settings = settings or AnalyticsConfig()
    _check_counts("control", *control)
    for name, counts in variants.items():
        _check_counts(f"variant {name}", *counts)
    base = Sample.proportion(*control)
    arms = max(1, len(variants))
    bayesian = settings.engine == "bayesian"  # one look's width (a flat prior), no correction
    # The more arms, the stricter each comparison: plan for alpha / arms (Bonferroni).
    plan_alpha = settings.alpha / arms if settings.correction != "none" and not bayesian else settings.alpha
    needed = None
    if 0.0 < base.mean < 1.0:
        needed = visitors_per_arm(base.mean, settings.mde, alpha=plan_alpha, power=settings.power,
                                  tuning=settings.sequential_tuning if settings.sequential and not bayesian else None)
    return compare_metric(base, {name: Sample.proportion(*counts) for name, counts in variants.items()},
                          settings, differences=differences, needed_per_arm=needed)


def compare_metric(control: Sample, variants: Mapping[str, Sample], settings: AnalyticsConfig | None = None, *,
                   differences: Mapping[str, Difference | None] | None = None,
                   needed_per_arm: int | None = None) -> dict[str, Lift]:
    """Each variant's mean (a rate, revenue per visitor, a ratio) against the control's, read as
    ``settings`` says and corrected across the variants. ``differences``: the lifts already
    computed some other way (CUPED), by variant; the rest are ``relative_difference``.

    >>> lifts = compare_metric(Sample.from_sums(1396.87, 52377.9767, 3407),
    ...                        {"B": Sample.from_sums(2422.7, 134698.29, 3461)}, AnalyticsConfig(sequential=False))
    >>> round(lifts["B"].relative, 5), round(lifts["B"].p_value, 5)
    (0.70732, 0.06191)
    """
    settings = settings or AnalyticsConfig()
    base = control
    relatives = {name: (differences or {}).get(name) or relative_difference(base, s) for name, s in variants.items()}
    raw = {name: _p_value(d, settings) if d is not None else 1.0 for name, d in relatives.items()}
    tested = [name for name, d in relatives.items() if d is not None]
    bayesian = settings.engine == "bayesian"
    # GrowthBook's Bayesian engine does not correct across variants; neither does this one.
    adjusted = dict(zip(tested, adjust_p_values([raw[n] for n in tested],
                                                "none" if bayesian else settings.correction)))
    arms = max(1, len(variants))
    lifts = {}
    for name, sample in variants.items():
        rel = relatives[name]
        p, p_adj = raw[name], adjusted.get(name, 1.0)
        # The level the correction spends on this variant: the interval excludes 0 iff p_adj < alpha.
        alpha = settings.alpha * p / p_adj if p > 0 and p_adj > 0 else settings.alpha / arms
        absolute = sample.mean - base.mean
        relative_ci = absolute_ci = None
        posterior = None
        significant = rel is not None and rel.se > 0 and p_adj < settings.alpha
        if rel is not None and bayesian:
            alpha = settings.alpha
            if rel.se > 0:
                posterior = Posterior.of(rel, settings)
                half = norm_ppf(1.0 - alpha / 2.0) * posterior.sd
                # The credible interval at 1 - alpha excludes 0 exactly when the chance to win
                # is beyond 1 - alpha / 2 either way: the verdict and the interval agree.
                relative_ci = (posterior.mean - half, posterior.mean + half)
                ctw = posterior.chance_to_win
                significant = ctw > 1.0 - alpha / 2.0 or ctw < alpha / 2.0
            else:
                relative_ci, significant = (rel.estimate, rel.estimate), False
        elif rel is not None:
            half = _halfwidth(rel, alpha, settings)
            relative_ci = (rel.estimate - half, rel.estimate + half)
        if relative_ci is not None:
            # The same interval in the metric's units (absolute = relative x the control's mean),
            # so the two intervals and the verdict tell one story.
            absolute_ci = (relative_ci[0] * base.mean, relative_ci[1] * base.mean)
        more = None
        if needed_per_arm is not None:
            # Traffic keeps its current split: the smaller arm decides how long it takes.
            total = base.n + sample.n
            more = max(0, math.ceil(total * max(needed_per_arm / base.n, needed_per_arm / sample.n)) - total)
        risk = posterior.risk if posterior is not None else (None, None)
        theta = rel.theta if isinstance(rel, Adjusted) else None
        lifts[name] = Lift(
            control_rate=base.mean, variant_rate=sample.mean, absolute=absolute, absolute_ci=absolute_ci,
            relative=(posterior.mean if posterior is not None else rel.estimate) if rel is not None else None,
            relative_ci=relative_ci, z=rel.z if rel is not None else 0.0, p_value=p, significant=significant,
            needed_per_arm=needed_per_arm, more_visitors=more, se=rel.se if rel is not None else 0.0,
            p_value_adjusted=p_adj, confidence=1.0 - alpha,
            method="bayesian" if bayesian else "sequential" if settings.sequential else "fixed",
            correction="none" if bayesian else settings.correction,
            chance_to_win=posterior.chance_to_win if posterior is not None else (0.5 if bayesian and rel is not None else None),
            expected_loss=risk[1], expected_loss_control=risk[0], cuped_theta=theta,
        )
    return lifts


def two_proportion_test(control_converted: int, control_visitors: int, variant_converted: int,
                        variant_visitors: int, *, settings: AnalyticsConfig | None = None) -> Lift:
    """One variant's conversion against the control's (``compare_variants`` for one arm).

    >>> lift = two_proportion_test(1000, 50_000, 1300, 50_000)
    >>> round(lift.relative, 2), lift.significant
    (0.3, True)
    """
    return compare_variants((control_converted, control_visitors),
                            {"variant": (variant_converted, variant_visitors)}, settings)["variant"]


# -- sample ratio mismatch -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SampleRatio:
    """The chi-square test of the observed split against the configured weights."""

    #: Visitors per variant with a configured weight above 0 (the arms tested).
    observed: dict[str, int]
    #: Configured shares (the weights normalized to sum to 1).
    expected: dict[str, float]
    chi2: float
    p_value: float
    #: p < the threshold: something assigns or records visitors unevenly.
    mismatch: bool
    threshold: float
    #: Visitors of variants the config no longer assigns (removed, renamed or at weight 0):
    #: history, left out of the test.
    left_out: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def message(self) -> str:
        split = " / ".join(f"{name} {self.observed[name]:,} ({self.expected[name]:.0%} expected)"
                           for name in self.expected)
        if self.left_out:
            split += "; left out, not assigned by the config: " + ", ".join(
                f"{name} {n:,}" for name, n in self.left_out.items())
        if not self.mismatch:
            return f"split as configured (chi-square p = {self.p_value:.3g}): {split}"
        return (f"SAMPLE RATIO MISMATCH (chi-square p = {self.p_value:.2g} < {self.threshold:g}): {split}. "
                "Visitors are assigned or recorded unevenly, so this campaign's lift must not be trusted.")


def srm_test(observed: Mapping[str, int], weights: Mapping[str, float], *,
             threshold: float = 0.001) -> SampleRatio | None:
    """Chi-square goodness of fit of visitors per variant against the configured weights.

    Variants the config does not assign (not in ``weights``, or at weight 0) are history, for
    instance the ``default`` arm of a campaign that has since been split: they are left out.
    None when there is nothing to test (fewer than two weighted arms, or no visitors in them).

    >>> srm_test({"control": 5000, "B": 5400}, {"control": 1, "B": 1}).mismatch
    True
    """
    arms = [name for name, weight in weights.items() if weight > 0]
    counts = {name: int(observed.get(name, 0)) for name in arms}
    total = sum(counts.values())
    if len(arms) < 2 or total <= 0:
        return None
    total_weight = sum(weights[name] for name in arms)
    shares = {name: weights[name] / total_weight for name in arms}
    chi2 = sum((counts[name] - shares[name] * total) ** 2 / (shares[name] * total) for name in arms)
    p = chi2_sf(chi2, len(arms) - 1)
    left_out = {name: int(n) for name, n in observed.items() if name not in counts and n}
    return SampleRatio(observed=counts, expected=shares, chi2=chi2, p_value=p, mismatch=p < threshold,
                       threshold=threshold, left_out=left_out)


# -- visitors needed ------------------------------------------------------------------------------

def _unit_variance(control_rate: float, effect: float) -> tuple[float, float]:
    """The relative lift's delta-method variance times the visitors per arm, and the lift."""
    mu_a = control_rate
    mu_b = min(max(mu_a * (1.0 + effect), 1e-12), 1.0 - 1e-12)
    return mu_a * (1 - mu_a) * mu_b * mu_b / mu_a ** 4 + mu_b * (1 - mu_b) / mu_a ** 2, mu_b / mu_a - 1.0


def _power(unit_variance: float, lift: float, per_arm: int, alpha: float, tuning: float | None) -> float:
    """GrowthBook's two-sided power for a relative ``lift`` with ``per_arm`` visitors per arm."""
    z = norm_ppf(1.0 - alpha / 2.0)
    sigma = math.sqrt(unit_variance / per_arm)
    if tuning is not None:  # the sequence's half-width, read as z sigma-tilde
        sigma = sequential_halfwidth(sigma, 2 * per_arm, sequential_rho(alpha, tuning), alpha) / z
    shift = lift / sigma
    return 1.0 - norm_cdf(z - shift) + norm_cdf(-z - shift)


def visitors_per_arm(control_rate: float, relative_effect: float, *, alpha: float = 0.05,
                     power: float = 0.80, tuning: float | None = None) -> int:
    """Visitors each arm needs for ``power`` to detect ``relative_effect`` over ``control_rate``
    (GrowthBook's power for the delta-method relative lift; ``tuning``: sequential with that N*).

    >>> visitors_per_arm(0.10, 0.20)   # 10% -> 12%, fixed horizon
    4616
    """
    if not 0.0 < control_rate < 1.0:
        raise ValueError(f"control_rate must be between 0 and 1 (exclusive), got {control_rate!r}")
    if relative_effect == 0:
        raise ValueError("relative_effect must not be 0")
    unit, lift = _unit_variance(control_rate, relative_effect)
    # The one-sided closed form is a hair above the answer for a fixed horizon and below it for
    # a sequential one (wider intervals), so the search starts there.
    start = (norm_ppf(1.0 - alpha / 2.0) + norm_ppf(power)) ** 2 * unit / (lift * lift)
    low, high = max(1, math.floor(start) - 1), max(2, math.ceil(start))
    while low > 1 and _power(unit, lift, low, alpha, tuning) >= power:
        low //= 2
    while _power(unit, lift, high, alpha, tuning) < power:
        low, high = high, high * 2
    while high - low > 1:  # power rises with the sample: the smallest n that reaches it
        middle = (low + high) // 2
        if _power(unit, lift, middle, alpha, tuning) < power:
            low = middle
        else:
            high = middle
    return high


def describe_method(settings: AnalyticsConfig) -> str:
    """One sentence naming what the report computed (the report's ``method``)."""
    if settings.engine == "bayesian":
        prior = (f"a normal prior (mean {settings.prior_mean:g}, sd {settings.prior_sd:g})" if settings.proper_prior
                 else "a flat prior")
        reading = (f"Bayesian (GrowthBook's default engine): chance to beat control and expected loss from a "
                   f"gaussian posterior with {prior}, a winner beyond {1 - settings.alpha / 2:.1%} either way, "
                   "no correction across variants")
    elif settings.sequential:
        reading = (f"sequential: GrowthBook's asymptotic confidence sequences (tuning N* = "
                   f"{settings.sequential_tuning:g}), valid however often the report is read; "
                   f"{_CORRECTION_NAMES[settings.correction]} across a campaign's variants")
    else:
        reading = ("fixed horizon: Welch's t-test and t interval, valid when read once at a planned size; "
                   f"{_CORRECTION_NAMES[settings.correction]} across a campaign's variants")
    cuped = ("CUPED-adjusted for each visitor's orders and spend before exposure" if settings.cuped
             else "not CUPED-adjusted")
    return (f"relative lift with its delta-method standard error, one for test and interval; {reading}; "
            f"alpha {settings.alpha:g}; conversion, revenue per visitor (Welch) and average order value "
            f"(ratio, delta method), {cuped}; sample ratio mismatch by chi-square against the configured weights "
            f"at p < {settings.srm_threshold:g}; visitors needed for a {settings.mde:.0%} relative minimum "
            f"detectable effect at {settings.power:.0%} power; bots (user agents in [middleware] bot_user_agents) "
            "are never tracked, so never counted")
