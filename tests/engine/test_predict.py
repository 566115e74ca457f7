"""BG/NBD and Gamma-Gamma: the published CDNOW fits, predictions, the batch job, no scipy."""

import csv
import logging
import math
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from segmint.engine import predict
from segmint.engine.batch_stats import PREDICT_MAX_AGE, BatchStats
from segmint.engine.clock import FrozenClock
from segmint.engine.document import profile_document
from segmint.engine.events import Order, OrderItem, PageView
from segmint.engine.predict import (
    BgNbdParams, GammaGammaParams, PredictModel, compute_predict_model, expected_order_value,
    expected_purchases, fit_bgnbd, fit_gamma_gamma, load_predict_model, p_alive,
)
from segmint.engine.profile import Profile
from segmint.engine.stores import MemoryStore

DATA = Path(__file__).parent / "data"
UTC = timezone.utc
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def read_csv(name):
    with open(DATA / name, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cdnow():
    rows = read_csv("cdnow_customers_summary.csv")
    return ([float(r["frequency"]) for r in rows], [float(r["recency"]) for r in rows],
            [float(r["T"]) for r in rows])


def test_bgnbd_reproduces_the_papers_cdnow_fit(cdnow):
    """Fader, Hardie and Lee (2005), 2,357 CDNOW customers over 39 weeks (time in weeks)."""
    assert len(cdnow[0]) == 2357
    fit = fit_bgnbd(*cdnow)
    for name, published in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert getattr(fit, name) == pytest.approx(published, rel=0.01), name
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.5)


def test_bgnbd_fit_in_days_scales_alpha_only(cdnow):
    x, tx, big_t = cdnow
    weeks = fit_bgnbd(x, tx, big_t)
    days = fit_bgnbd(x, [v * 7 for v in tx], [v * 7 for v in big_t])
    assert days.alpha == pytest.approx(7 * weeks.alpha, rel=1e-3)
    for name in ("r", "a", "b"):
        assert getattr(days, name) == pytest.approx(getattr(weeks, name), rel=1e-3)


def test_conditional_predictions_match_the_paper(cdnow):
    """The paper's customer 1 (x = 2, t_x = 30.43, T = 38.86): 1.226 purchases in the next 39 weeks."""
    fit = fit_bgnbd(*cdnow)
    assert expected_purchases(fit, 39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=0.002)
    assert p_alive(fit, 0, 0, 38.86) == 1.0  # no repeat purchase: BG/NBD cannot have dropped them
    # The longer the silence since the last purchase, the less likely still active.
    assert p_alive(fit, 5, 30, 38.86) > p_alive(fit, 5, 10, 38.86) > p_alive(fit, 5, 1, 38.86)


def test_gamma_gamma_reproduces_the_published_cdnow_fit():
    """Fader and Hardie's fit on the 946 CDNOW customers with repeat purchases."""
    rows = read_csv("cdnow_repeat_spend.csv")
    assert len(rows) == 946
    fit = fit_gamma_gamma([float(r["frequency"]) for r in rows], [float(r["monetary_value"]) for r in rows])
    for name, published in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert getattr(fit, name) == pytest.approx(published, rel=0.01), name
    # The population mean p * gamma / (q - 1) is what a customer's single order is shrunk toward.
    assert expected_order_value(fit, 1, 100.0) < 100.0
    assert expected_order_value(fit, 50, 100.0) == pytest.approx(100.0, rel=0.05)


MODEL = PredictModel(bgnbd=BgNbdParams(r=0.243, alpha=4.414 * 7, a=0.793, b=2.426, log_likelihood=0.0),
                     gamma_gamma=GammaGammaParams(p=6.25, q=3.74, gamma=15.44, log_likelihood=0.0),
                     computed_at=NOW.timestamp(), customers=1, sample_size=1)


def customer(store, cid, order_days_ago, price=50.0):
    store.append([Order(customer_id=cid, order_id=f"{cid}-{i}", at=NOW - timedelta(days=d),
                        items=[OrderItem(sku="s", price=price)]) for i, d in enumerate(order_days_ago)])
    return store.load(customer_id=cid)


def test_document_has_predict_fields_in_days_for_customers_once_a_model_exists():
    store = MemoryStore()
    profile = customer(store, "c", [210, 150, 120], price=40.0)
    doc = profile_document(profile, NOW, predict=MODEL)
    x, tx, big_t = 2.0, 90.0, 210.0  # orders - 1, last - first and now - first, in days
    bg = MODEL.bgnbd
    assert doc["predict"]["p_alive"] == pytest.approx(p_alive(bg, x, tx, big_t))
    assert doc["predict"]["purchases_30d"] == pytest.approx(expected_purchases(bg, 30, x, tx, big_t))
    assert doc["predict"]["value_90d"] == pytest.approx(
        expected_purchases(bg, 90, x, tx, big_t) * expected_order_value(MODEL.gamma_gamma, 3, 40.0))
    assert 0 < doc["predict"]["purchases_30d"] < doc["predict"]["value_90d"]
    assert all(type(v) is float for v in doc["predict"].values())  # plain floats, not numpy scalars
    # Absent until a fit exists, for visitors without orders, and when only other keys are wanted.
    assert "predict" not in profile_document(profile, NOW)
    assert "predict" not in profile_document(Profile(key="v:x", visits=3), NOW, predict=MODEL)
    assert "predict" not in profile_document(profile, NOW, predict=MODEL, only={"orders"})
    assert "predict" in profile_document(profile, NOW, predict=MODEL, only={"predict"})


def test_value_90d_absent_without_a_spend_model():
    profile = customer(MemoryStore(), "c", [30, 10])
    doc = profile_document(profile, NOW, predict=PredictModel(
        bgnbd=MODEL.bgnbd, gamma_gamma=None, computed_at=0.0, customers=1, sample_size=1))
    assert set(doc["predict"]) == {"p_alive", "purchases_30d"}


def fill(store, customers=300):
    """A shop where one customer in three buys again, a few quickly and a few who stopped."""
    events = []
    for i in range(customers):
        first = 30 + (i * 7) % 300
        days = [first] + [first - k * (5 + i % 20) for k in range(1, i % 6) if first - k * (5 + i % 20) >= 0]
        if i % 3:
            days = days[:1]
        events += [Order(customer_id=f"c{i}", order_id=f"{i}-{n}", at=NOW - timedelta(days=d),
                         items=[OrderItem(sku="s", price=20.0 + i % 50)]) for n, d in enumerate(days)]
    store.append(events)
    store.append([PageView(visitor_id="browser", at=NOW)])  # no orders: not a customer


def test_compute_streams_the_store_fits_and_stores_the_model():
    store = MemoryStore()
    fill(store)
    model = compute_predict_model(store, NOW)
    assert (model.customers, model.sample_size) == (300, 300)
    bg = model.bgnbd
    assert all(math.isfinite(v) and v > 0 for v in (bg.r, bg.alpha, bg.a, bg.b))
    assert model.gamma_gamma is not None and model.gamma_gamma.p > 0
    assert load_predict_model(store) == model
    sampled = compute_predict_model(store, NOW, sample_size=150, save=False)
    assert (sampled.customers, sampled.sample_size) == (300, 150)
    assert load_predict_model(store) == model


def test_too_few_customers_fits_nothing():
    store = MemoryStore()
    fill(store, customers=predict.MIN_CUSTOMERS - 1)
    assert compute_predict_model(store, NOW) is None
    assert load_predict_model(store) is None


def test_batch_job_fits_with_the_rfm_thresholds_and_refits_when_stale():
    store = MemoryStore()
    fill(store)
    clock = FrozenClock(NOW)
    batch = BatchStats(store, clock)
    batch.refresh(30)
    assert batch.rfm is not None and batch.predict == load_predict_model(store)
    assert batch.predict_status["status"] == "fitted" and batch.predict_status["customers"] == 300
    fitted_at = batch.predict.computed_at
    clock.advance(PREDICT_MAX_AGE / 2)
    batch.refresh(30)
    assert batch.predict.computed_at == fitted_at  # fresh: read back, not refitted
    clock.advance(PREDICT_MAX_AGE)
    batch.refresh(30)
    assert batch.predict.computed_at == (NOW + PREDICT_MAX_AGE * 1.5).timestamp()


def test_a_failing_fit_keeps_the_last_model_and_the_other_batch_results(monkeypatch, caplog):
    store = MemoryStore()
    fill(store)
    clock = FrozenClock(NOW)
    batch = BatchStats(store, clock)
    batch.refresh(30)
    good = batch.predict

    def broken(*args, **kwargs):
        raise ArithmeticError("the likelihood did not converge")

    monkeypatch.setattr("segmint.engine.batch_stats.compute_predict_model", broken)
    clock.advance(PREDICT_MAX_AGE * 2)
    with caplog.at_level(logging.WARNING, logger="segmint"):
        batch.refresh(30)
        batch.refresh(30)
    assert batch.predict == good and batch.rfm is not None
    assert batch.predict_status == {"status": "failed",
                                    "reason": "ArithmeticError: the likelihood did not converge"}
    assert [r.getMessage() for r in caplog.records].count(
        "segmint: no predictive fields: ArithmeticError: the likelihood did not converge") == 1  # once
    monkeypatch.undo()
    batch.refresh(30)  # mended: refitted
    assert batch.predict_status["status"] == "fitted" and batch.predict.computed_at == clock().timestamp()


@pytest.fixture
def without_scipy(monkeypatch):
    """As if scipy were not installed: its imports fail (and the cached import is forgotten)."""
    predict._scipy.cache_clear()
    for name in [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "scipy", None)
    yield
    monkeypatch.undo()
    predict._scipy.cache_clear()


def test_without_scipy_the_batch_job_logs_the_install_hint_once_and_fields_stay_absent(without_scipy, caplog):
    store = MemoryStore()
    fill(store)
    batch = BatchStats(store, FrozenClock(NOW))
    with caplog.at_level(logging.WARNING, logger="segmint"):
        batch.refresh(30)
        batch.refresh(30)
    hint = 'segmint: no predictive fields: predictive fields need scipy: pip install "segmint[predict]"'
    assert [r.getMessage() for r in caplog.records] == [hint]
    assert batch.predict is None and batch.predict_status["status"] == "unavailable"
    assert batch.rfm is not None  # the rest of the batch job runs as before
    assert load_predict_model(store) is None
    with pytest.raises(predict.PredictUnavailable, match=r"segmint\[predict\]"):
        compute_predict_model(store, NOW)
    # A model another process fitted is not used either: no hyp2f1 here.
    profile = store.load(customer_id="c3")
    assert "predict" not in profile_document(profile, NOW, predict=MODEL)


def test_edge_parameters_leave_the_value_out_instead_of_failing_the_document():
    """a == 1 exactly (the optimizer's start, kept when the data say nothing about it)."""
    profile = customer(MemoryStore(), "c", [60, 20])
    edge = PredictModel(bgnbd=BgNbdParams(r=0.5, alpha=30.0, a=1.0, b=2.0, log_likelihood=0.0),
                        gamma_gamma=GammaGammaParams(p=0.5, q=0.0, gamma=10.0, log_likelihood=0.0),
                        computed_at=0.0, customers=1, sample_size=1)
    assert set(profile_document(profile, NOW, predict=edge)["predict"]) == {"p_alive"}


def test_a_stored_model_that_does_not_decode_is_refitted_over():
    store = MemoryStore()
    fill(store)
    store.set_meta("predict", b"\x81\xa1x\x01")  # a map another version might have written
    batch = BatchStats(store, FrozenClock(NOW))
    batch.refresh(30)
    assert batch.predict_status["status"] == "fitted" and load_predict_model(store) == batch.predict
