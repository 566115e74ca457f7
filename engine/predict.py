"""Predictive fields: BG/NBD purchase model and Gamma-Gamma spend model, fitted in batch.

BG/NBD (Fader, Hardie and Lee, "Counting your customers the easy way", 2005) models each
customer's repeat purchases as a Poisson process (rate ~ Gamma(r, alpha)) that may end after
any purchase (dropout probability ~ Beta(a, b)). Fitted by maximum likelihood over every
customer's (frequency, recency, age); Gamma-Gamma (Fader, Hardie and Lee, "RFM and CLV",
2005; Fader and Hardie's note on the Gamma-Gamma model, 2013) models the average order value
(p, q, gamma). scipy provides the optimizer and the special functions (``pip install
"segmint[predict]"``); without it the fields are absent.

What a profile contributes (one customer = one profile with at least one order):

* frequency ``x`` = orders - 1, the repeat purchases. Every order counts, two on one day
  too: the profile keeps its order history only as counters and 90 days of daily buckets,
  so the distinct purchase days that ``lifetimes`` counts are not known.
* recency ``t_x`` = last order - first order, and age ``T`` = now - first order, in **days**:
  the fit and every prediction use days (the paper's CDNOW fit is in weeks; ``alpha`` scales
  with the unit, r, a and b do not).
* for Gamma-Gamma, the average value of *all* the customer's orders (``spend / orders``,
  ``orders`` transactions; the paper averages repeat purchases only, but a profile keeps the
  first order's value in its total only). Customers whose average is not positive are left
  out of that fit.

``compute_predict_model`` streams ``store.iter_profiles()`` once, keeping a uniform reservoir
sample (as ``rfm.py`` does) of at most ``SAMPLE_SIZE`` customers, so memory is bounded; below
that size every customer is in the fit. The model is saved in the store's meta table under
``"predict"`` (msgpack) and read back with ``load_predict_model``.

Fields (``predict_fields``), for a customer with orders once a model exists:
``p_alive`` (P(still active)), ``purchases_30d`` (expected purchases in the next 30 days),
``value_90d`` = expected purchases in the next 90 days x Gamma-Gamma expected average order
value (spend as ``spend.total`` counts it). A known property of BG/NBD: a customer with a
single order has ``p_alive`` 1 (dropout can only follow a purchase).
"""

from __future__ import annotations

import contextlib
import math
import random
from array import array
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import msgspec

from .profile import Profile

if TYPE_CHECKING:
    from .stores.base import ProfileStore

__all__ = [
    "BgNbdParams",
    "GammaGammaParams",
    "PredictModel",
    "PredictUnavailable",
    "INSTALL_HINT",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "p_alive",
    "expected_purchases",
    "expected_order_value",
    "compute_predict_model",
    "load_predict_model",
    "save_predict_model",
    "predict_fields",
    "scipy_available",
]

META_NAME = "predict"
DAY = 86400.0
#: Customers kept for the fit (a uniform reservoir sample beyond this many).
SAMPLE_SIZE = 100_000
#: A fit needs at least this many customers, and this many with a repeat purchase: with
#: fewer, the parameters are too uncertain to segment on and the fields stay absent.
MIN_CUSTOMERS = 100
MIN_REPEAT = 10
INSTALL_HINT = 'predictive fields need scipy: pip install "segmint[predict]"'
#: Bounds of the optimizer on the log of each parameter (e^-20 .. e^20): keeps the
#: likelihood finite while a search wanders.
_LOG_BOUND = 20.0


class PredictUnavailable(ImportError):
    """scipy is not installed: predictions need the ``predict`` extra."""


class BgNbdParams(msgspec.Struct, kw_only=True, frozen=True):
    """BG/NBD parameters (``alpha`` in the unit of the data it was fitted on)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


class GammaGammaParams(msgspec.Struct, kw_only=True, frozen=True):
    """Gamma-Gamma parameters of the average order value (``gamma`` in money)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float


class PredictModel(msgspec.Struct, kw_only=True, frozen=True):
    """What the batch job stores: both fits (time in days), when and over how many customers."""

    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams | None
    computed_at: float
    customers: int
    sample_size: int


@cache
def _scipy() -> tuple[Any, Any, Any]:
    """``(numpy, scipy.optimize, scipy.special)``, or ``PredictUnavailable``."""
    try:
        import numpy
        import scipy.optimize
        import scipy.special
    except ImportError as exc:
        raise PredictUnavailable(INSTALL_HINT) from exc
    return numpy, scipy.optimize, scipy.special


def scipy_available() -> bool:
    try:
        _scipy()
    except PredictUnavailable:
        return False
    return True


def _minimize(nll: Any, start: Sequence[float]) -> Any:
    """Minimize ``nll`` over log-parameters: L-BFGS-B, then Nelder-Mead when it stops short."""
    np, optimize, _ = _scipy()
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(start)
    with np.errstate(all="ignore"):
        result = optimize.minimize(nll, np.asarray(start, dtype=float), method="L-BFGS-B", bounds=bounds)
        if not result.success or not np.isfinite(result.fun):
            result = optimize.minimize(nll, result.x if np.isfinite(result.fun) else np.asarray(start, dtype=float),
                                       method="Nelder-Mead", bounds=bounds,
                                       options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-10})
    if not np.isfinite(result.fun):
        raise ArithmeticError(f"the likelihood did not converge ({result.message})")
    return result


def fit_bgnbd(frequency: Sequence[float], recency: Sequence[float], age: Sequence[float]) -> BgNbdParams:
    """Maximum-likelihood BG/NBD fit (eq. 6 of the paper) over customers' summaries.

    ``frequency``: repeat purchases; ``recency``: time of the last purchase since the first;
    ``age``: time since the first purchase (``T``), all in one unit (``alpha`` comes out in it).

    >>> fit_bgnbd(cdnow.frequency, cdnow.recency, cdnow.T)  # doctest: +SKIP
    BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=-9582.4)
    """
    np, _, special = _scipy()
    gammaln = special.gammaln
    x = np.asarray(frequency, dtype=float)
    tx = np.asarray(recency, dtype=float)
    big_t = np.asarray(age, dtype=float)
    repeat = x > 0

    def nll(log_params: Any) -> float:
        r, alpha, a, b = np.exp(log_params)
        a1 = gammaln(r + x) - gammaln(r) + r * math.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + big_t)
        # The second term exists only after a repeat purchase (the customer may have dropped
        # out right after it); b + x - 1 > 0 there.
        a4 = np.where(repeat, math.log(a) - np.log(np.where(repeat, b + x - 1, 1.0))
                      - (r + x) * np.log(alpha + tx), -np.inf)
        return -float(np.mean(a1 + a2 + np.logaddexp(a3, a4)))

    # Start with alpha at the data's time scale, so the result does not depend on the unit.
    scale = float(np.mean(big_t)) or 1.0
    result = _minimize(nll, [0.0, math.log(scale), 0.0, 0.0])
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return BgNbdParams(r=r, alpha=alpha, a=a, b=b, log_likelihood=-float(result.fun) * len(x))


def fit_gamma_gamma(transactions: Sequence[float], average_value: Sequence[float]) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit over customers' (transactions, average value).

    Every ``transactions`` must be >= 1 and every ``average_value`` > 0.
    """
    np, _, special = _scipy()
    gammaln = special.gammaln
    n = np.asarray(transactions, dtype=float)
    z = np.asarray(average_value, dtype=float)
    log_n, log_z = np.log(n), np.log(z)

    def nll(log_params: Any) -> float:
        p, q, g = np.exp(log_params)
        px = p * n
        ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * math.log(g) + (px - 1) * log_z
              + px * log_n - (px + q) * np.log(n * z + g))
        return -float(np.mean(ll))

    result = _minimize(nll, [0.0, 0.0, math.log(float(np.mean(z)))])
    p, q, g = (float(v) for v in np.exp(result.x))
    return GammaGammaParams(p=p, q=q, gamma=g, log_likelihood=-float(result.fun) * len(n))


def _alive_odds_log(m: BgNbdParams, x: float, tx: float, big_t: float) -> float:
    """log of (1 / P(alive) - 1): the odds that the customer dropped out after the last purchase."""
    return math.log(m.a / (m.b + x - 1)) + (m.r + x) * math.log((m.alpha + big_t) / (m.alpha + tx))


def p_alive(m: BgNbdParams, x: float, tx: float, big_t: float) -> float:
    """P(the customer is still active | x repeat purchases, recency tx, age T) (eq. 11)."""
    if x <= 0:
        return 1.0
    odds = _alive_odds_log(m, x, tx, big_t)
    return 0.0 if odds > 700 else 1.0 / (1.0 + math.exp(odds))


def expected_purchases(m: BgNbdParams, t: float, x: float, tx: float, big_t: float,
                       alive: float | None = None) -> float:
    """Expected purchases in the next ``t`` (after age T) given x, tx, T (eq. 10).

    ``alive``: ``p_alive(m, x, tx, big_t)`` when the caller has it already.
    """
    hyp2f1 = _scipy()[2].hyp2f1
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    tail = ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * float(hyp2f1(
        r + x, b + x, a + b + x - 1, t / (alpha + big_t + t)))
    if alive is None:
        alive = p_alive(m, x, tx, big_t)
    return (a + b + x - 1) / (a - 1) * (1.0 - tail) * alive


def expected_order_value(m: GammaGammaParams, transactions: float, average_value: float) -> float:
    """E(average order value | n transactions averaging ``average_value``): the population
    mean ``p * gamma / (q - 1)`` weighed against the customer's own average."""
    return m.p * (m.gamma + transactions * average_value) / (m.p * transactions + m.q - 1)


def _summary(profile: Profile, ts: float) -> tuple[float, float, float] | None:
    """(x, t_x, T) in days, or None without orders. Clamped so that 0 <= t_x <= T."""
    first, last = profile.first_order_at, profile.last_order_at
    if not profile.orders or first is None or last is None:
        return None
    age = max(0.0, ts - first) / DAY
    return float(profile.orders - 1), min(age, max(0.0, last - first) / DAY), age


def predict_fields(profile: Profile, model: PredictModel, ts: float) -> dict[str, float] | None:
    """The ``predict`` group of ``profile`` at ``ts`` (epoch seconds), or None (no orders,
    or no scipy). A value that does not come out finite is left out."""
    summary = _summary(profile, ts)
    if summary is None or not scipy_available():
        return None
    x, tx, big_t = summary
    bg, gg = model.bgnbd, model.gamma_gamma
    alive = p_alive(bg, x, tx, big_t)
    fields: dict[str, float] = {"p_alive": alive}
    # Edge parameters (a == 1 exactly, p * n + q == 1) divide by zero: the value is left out
    # rather than failing the page's decision.
    with contextlib.suppress(ArithmeticError):
        purchases = expected_purchases(bg, 30.0, x, tx, big_t, alive)
        if math.isfinite(purchases) and purchases >= 0:
            fields["purchases_30d"] = purchases
    if gg is not None:
        with contextlib.suppress(ArithmeticError):
            value = expected_purchases(bg, 90.0, x, tx, big_t, alive) * expected_order_value(
                gg, profile.orders, profile.spend / profile.orders)
            if math.isfinite(value) and value >= 0:
                fields["value_90d"] = value
    return fields


def compute_predict_model(
    store: ProfileStore, now: datetime | float, *, sample_size: int = SAMPLE_SIZE,
    save: bool = True, seed: int = 0,
) -> PredictModel | None:
    """Stream every profile once and fit both models; None while there are fewer than
    ``MIN_CUSTOMERS`` customers or ``MIN_REPEAT`` with a repeat purchase.

    Raises ``PredictUnavailable`` (before reading the store) when scipy is missing. Saved in
    the store's meta table unless ``save=False``.
    """
    _scipy()
    ts = now if isinstance(now, (int, float)) else now.timestamp()
    rng = random.Random(seed)
    # Columns of the reservoir: repeat purchases, recency, age, orders, average order value.
    cols = tuple(array("d") for _ in range(5))
    seen = 0
    for profile in store.iter_profiles():
        summary = _summary(profile, ts)
        if summary is None:
            continue
        row = (*summary, float(profile.orders), profile.spend / profile.orders)
        seen += 1
        if len(cols[0]) < sample_size:
            for col, value in zip(cols, row):
                col.append(value)
        else:
            slot = rng.randrange(seen)
            if slot < sample_size:
                for col, value in zip(cols, row):
                    col[slot] = value
    x, tx, big_t, orders, average = cols
    if len(x) < MIN_CUSTOMERS or sum(1 for v in x if v > 0) < MIN_REPEAT:
        return None
    bgnbd = fit_bgnbd(x, tx, big_t)
    spenders = [i for i, v in enumerate(average) if v > 0]
    gamma_gamma = (fit_gamma_gamma([orders[i] for i in spenders], [average[i] for i in spenders])
                   if len(spenders) >= MIN_CUSTOMERS else None)
    model = PredictModel(bgnbd=bgnbd, gamma_gamma=gamma_gamma, computed_at=ts, customers=seen,
                         sample_size=len(x))
    if save:
        save_predict_model(store, model)
    return model


def save_predict_model(store: ProfileStore, model: PredictModel) -> None:
    store.set_meta(META_NAME, msgspec.msgpack.encode(model))


def load_predict_model(store: ProfileStore) -> PredictModel | None:
    raw = store.get_meta(META_NAME)
    return None if raw is None else msgspec.msgpack.decode(raw, type=PredictModel)
