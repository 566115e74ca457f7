"""Lift of a variant against the control: a two-proportion z-test, confidence intervals and
the sample size still needed, with ``math`` only (no scipy).

The method, stated once so the report can say what it did:

* **Test**: two-sided two-proportion z-test with the *pooled* rate under the null hypothesis
  "same conversion rate": ``z = (p_v - p_c) / sqrt(p (1 - p) (1/n_c + 1/n_v))``; significant
  when the p-value ``2 (1 - Phi(|z|))`` is below ``alpha`` (0.05).
* **Absolute lift** ``p_v - p_c`` with a Wald interval from the *unpooled* standard error.
* **Relative lift** ``p_v / p_c - 1`` with a delta-method interval (symmetric, so it can be
  read as "12% +/- 5%").
* **Sample size**: visitors per arm for 80% power at alpha 0.05 (Fleiss' formula without
  continuity correction), using the observed control rate and the observed relative effect,
  or a minimum detectable effect of 10% relative when the observed one is smaller.

The normal quantile uses Acklam's rational approximation (relative error < 1.2e-9).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "ALPHA",
    "POWER",
    "MIN_DETECTABLE_EFFECT",
    "METHOD",
    "Lift",
    "norm_cdf",
    "norm_ppf",
    "two_proportion_test",
    "visitors_per_arm",
]

ALPHA = 0.05
POWER = 0.80
#: The smallest relative effect worth waiting for when the observed one is smaller.
MIN_DETECTABLE_EFFECT = 0.10
METHOD = ("two-sided two-proportion z-test (pooled), 95% Wald CI for the absolute lift, "
          "delta-method CI for the relative lift; sample size for 80% power at alpha 0.05")


def norm_cdf(x: float) -> float:
    """The standard normal CDF, Phi(x)."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# Acklam's coefficients for the inverse normal CDF.
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


def visitors_per_arm(control_rate: float, relative_effect: float, *, alpha: float = ALPHA,
                     power: float = POWER) -> int:
    """Visitors each arm needs to detect ``relative_effect`` (e.g. 0.10) over ``control_rate``.

    >>> visitors_per_arm(0.02, 0.30)   # 2.0% -> 2.6%
    9798
    """
    if not 0.0 < control_rate < 1.0:
        raise ValueError(f"control_rate must be between 0 and 1 (exclusive), got {control_rate!r}")
    p1 = control_rate
    p2 = min(max(p1 * (1.0 + relative_effect), 1e-12), 1.0 - 1e-12)
    if p2 == p1:
        raise ValueError("relative_effect must not be 0")
    z_alpha, z_beta = norm_ppf(1.0 - alpha / 2.0), norm_ppf(power)
    mean = (p1 + p2) / 2.0
    top = (z_alpha * math.sqrt(2.0 * mean * (1.0 - mean))
           + z_beta * math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2)))
    return math.ceil(top * top / ((p2 - p1) ** 2))


@dataclass(frozen=True, slots=True)
class Lift:
    """A variant against the control. Rates and lifts are fractions (0.12 = 12%)."""

    control_rate: float
    variant_rate: float
    absolute: float
    absolute_ci: tuple[float, float]
    #: None when the control converted nobody (a relative change of 0 is undefined).
    relative: float | None
    relative_ci: tuple[float, float] | None
    z: float
    p_value: float
    significant: bool
    #: Visitors per arm for 80% power (None when the control has no conversions yet).
    needed_per_arm: int | None
    #: About how many more visitors (both arms, at the current split) until then; 0 if reached.
    more_visitors: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def two_proportion_test(
    control_converted: int, control_visitors: int, variant_converted: int, variant_visitors: int,
    *, alpha: float = ALPHA, power: float = POWER,
) -> Lift:
    """Compare conversion ``variant_converted / variant_visitors`` with the control's.

    >>> lift = two_proportion_test(1000, 50_000, 1300, 50_000)
    >>> round(lift.relative, 2), lift.significant
    (0.3, True)
    """
    for name, converted, visitors in (("control", control_converted, control_visitors),
                                      ("variant", variant_converted, variant_visitors)):
        if visitors <= 0 or not 0 <= converted <= visitors:
            raise ValueError(f"{name}: need 0 <= converted <= visitors and visitors > 0, "
                             f"got {converted} of {visitors}")
    pc, pv = control_converted / control_visitors, variant_converted / variant_visitors
    z_crit = norm_ppf(1.0 - alpha / 2.0)
    pooled = (control_converted + variant_converted) / (control_visitors + variant_visitors)
    se0 = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control_visitors + 1.0 / variant_visitors))
    diff = pv - pc
    z = diff / se0 if se0 > 0 else 0.0
    p_value = 2.0 * (1.0 - norm_cdf(abs(z)))
    var_c, var_v = pc * (1.0 - pc) / control_visitors, pv * (1.0 - pv) / variant_visitors
    half = z_crit * math.sqrt(var_c + var_v)
    relative = relative_ci = None
    if pc > 0:
        relative = pv / pc - 1.0
        # Delta method for the ratio pv / pc: Var ~= var_v / pc^2 + pv^2 var_c / pc^4.
        rel_half = z_crit * math.sqrt(var_v / pc ** 2 + pv * pv * var_c / pc ** 4)
        relative_ci = (relative - rel_half, relative + rel_half)
    needed = more = None
    if 0.0 < pc < 1.0:
        effect = relative if relative is not None and abs(relative) >= MIN_DETECTABLE_EFFECT \
            else MIN_DETECTABLE_EFFECT
        needed = visitors_per_arm(pc, effect, alpha=alpha, power=power)
        # Traffic keeps its current split: the smaller arm decides how long it takes.
        total = control_visitors + variant_visitors
        scale = max(needed / control_visitors, needed / variant_visitors)
        more = max(0, math.ceil(total * scale) - total)
    return Lift(
        control_rate=pc, variant_rate=pv, absolute=diff, absolute_ci=(diff - half, diff + half),
        relative=relative, relative_ci=relative_ci, z=z, p_value=p_value,
        significant=p_value < alpha and se0 > 0, needed_per_arm=needed, more_visitors=more,
    )
