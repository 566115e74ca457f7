"""Predictive model fit: BG/NBD + Gamma-Gamma over 100,000 customers' summaries.

100,000 is the most a fit ever sees: the batch job (``engine/predict.py``) keeps a reservoir
sample of ``SAMPLE_SIZE`` customers however large the store. The summaries are drawn from
the models themselves (BG/NBD with the paper's CDNOW parameters, alpha in days; Gamma-Gamma
with Fader and Hardie's CDNOW p, q, gamma), each customer observed for 1-365 days, so the
benchmark checks that the fit recovers the parameters it was given (within 10%).

A child process fits (``fit_bgnbd``, then ``fit_gamma_gamma`` on every customer's orders and
average order value, as the batch job does); figures: its CPU seconds and the growth of its
peak RSS during the fit. Targets: < 10 s, < 100 MB.

Run alone: ``python -m benchmarks.bench_predict``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from .bench_profiles import child_json, peak_rss_mb, row

CUSTOMERS = 100_000
TRUE_BGNBD = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}  # the paper's, in days
TRUE_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
TARGET_SECONDS = 10.0
TARGET_MB = 100.0


def summaries(n: int, seed: int = 7) -> tuple[Any, ...]:
    """(repeat purchases, recency, age in days, orders, average order value) per customer."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUE_BGNBD["r"], 1 / TRUE_BGNBD["alpha"], n)
    dropout = rng.beta(TRUE_BGNBD["a"], TRUE_BGNBD["b"], n)
    age = rng.uniform(1, 365, n)
    x, recency = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rate[i])
            if t > age[i]:
                break
            x[i] += 1
            recency[i] = t
            if rng.random() < dropout[i]:
                break
    orders = x + 1
    nu = rng.gamma(TRUE_GG["q"], 1 / TRUE_GG["gamma"], n)
    average = rng.gamma(TRUE_GG["p"] * orders, 1 / (orders * nu))
    return x, recency, age, orders, average


def fit_child(n: int) -> dict[str, Any]:
    from segmint.engine.predict import fit_bgnbd, fit_gamma_gamma

    data = summaries(n)
    fit_bgnbd(data[0][:1000], data[1][:1000], data[2][:1000])  # imports and first calls warmed
    before = peak_rss_mb()
    cpu = time.process_time()
    bgnbd = fit_bgnbd(data[0], data[1], data[2])
    gamma_gamma = fit_gamma_gamma(data[3], data[4])
    cpu = time.process_time() - cpu
    return {"cpu_seconds": cpu, "rss_growth_mb": peak_rss_mb() - before,
            "bgnbd": {k: getattr(bgnbd, k) for k in TRUE_BGNBD}, "gamma_gamma": {k: getattr(gamma_gamma, k) for k in TRUE_GG}}


def run(quick: bool) -> list[dict[str, Any]]:
    result = child_json(["benchmarks.bench_predict", "fit-child", str(CUSTOMERS)])
    fitted = {**result["bgnbd"], **result["gamma_gamma"]}
    truth = {**TRUE_BGNBD, **TRUE_GG}
    off = {k: abs(fitted[k] / truth[k] - 1) for k in truth}
    if max(off.values()) > 0.10:
        raise AssertionError(f"the fit did not recover the parameters it was given: {fitted} vs {truth}")
    figure = f"BG/NBD + Gamma-Gamma fit, {CUSTOMERS:,} customers' summaries"
    seconds, growth = result["cpu_seconds"], result["rss_growth_mb"]
    return [
        row(figure, seconds, "-", 0.0, 0.0, "s (CPU)", f"< {TARGET_SECONDS:g} s, parameters within 10%",
            seconds < TARGET_SECONDS, largest_parameter_error=round(max(off.values()), 4)),
        row("peak RSS growth of that fit (child process)", growth, "-", 0.0, 0.0, "MB", f"< {TARGET_MB:g} MB",
            growth < TARGET_MB),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["fit-child"]:
        print(json.dumps(fit_child(int(sys.argv[2]))))
    else:
        for r in run("--quick" in sys.argv):
            print(r)
