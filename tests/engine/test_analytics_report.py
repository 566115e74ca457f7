"""The campaign report: metrics per variant, statements, JSON and CSV output."""

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.analytics import (
    AnalyticsConfig,
    Lift,
    build_report,
    configured_splits,
    lift_statement,
    two_proportion_test,
    visitors_per_arm,
)
from segmint.engine.config import load_config
from segmint.engine.config.schema import Campaign, Variant
from segmint.engine.errors import ConfigError
from segmint.engine.events import Click, Impression, Order, OrderItem
from segmint.engine.stores import MemoryStore

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _events():
    events = []
    for i in range(4):  # variant B: 4 visitors, 6 impressions, 2 clicks, 2 orders
        events.append(Impression(campaign="promo", variant="B", skus=["s1"], visitor_id=f"b{i}",
                                 at=T0 + timedelta(hours=i)))
    events += [Impression(campaign="promo", variant="B", skus=["s1"], visitor_id="b0", at=T0 + timedelta(hours=5)),
               Impression(campaign="promo", variant="B", skus=["s1"], visitor_id="b1", at=T0 + timedelta(hours=5)),
               Click(campaign="promo", variant="B", visitor_id="b0", at=T0 + timedelta(hours=6)),
               Click(campaign="promo", variant="B", visitor_id="b1", at=T0 + timedelta(hours=6)),
               Order(order_id="o1", visitor_id="b0", at=T0 + timedelta(days=1),
                     items=[OrderItem(sku="s1", price=30.0), OrderItem(sku="x", price=10.0)]),
               Order(order_id="o2", visitor_id="b0", at=T0 + timedelta(days=2),
                     items=[OrderItem(sku="x", price=20.0)])]
    for i in range(2):  # control: 2 visitors, 1 converts
        events.append(Impression(campaign="promo", variant="control", visitor_id=f"c{i}", at=T0))
    events.append(Order(order_id="o3", visitor_id="c0", at=T0 + timedelta(days=1),
                        items=[OrderItem(sku="x", price=50.0)]))
    events.append(Impression(campaign="solo", variant="default", visitor_id="s0", at=T0))
    return events


@pytest.fixture
def report():
    store = MemoryStore(clock=lambda: T0)
    store.append(_events())
    yield build_report(store, now=T0 + timedelta(days=10))
    store.close()


def test_metrics_per_variant(report):
    promo, solo = report.campaigns
    assert (promo.campaign, promo.control, solo.control) == ("promo", "control", None)
    control, b = promo.variants
    assert (b.exposures, b.visitors, b.clicks, b.orders, b.converted) == (6, 4, 2, 2, 1)
    assert b.ctr == pytest.approx(2 / 6)
    assert b.conversion_rate == pytest.approx(1 / 4)
    assert b.revenue == 60.0 and b.recommended_revenue == 30.0
    assert b.revenue_per_visitor == pytest.approx(15.0)
    assert b.average_order_value == pytest.approx(30.0)
    assert b.click_orders == 2
    assert control.is_control and control.conversion_rate == 0.5 and control.lift is None
    assert b.lift is not None and b.lift.relative == pytest.approx(-0.5)
    assert report.orders == 3 and report.revenue == 110.0 and report.attributed_orders == 3


def test_statements(report):
    promo, solo = report.campaigns
    assert promo.variants[0].statement == "control (baseline)"
    assert promo.variants[1].statement.startswith("not enough data yet: B vs control -50% +/- ")
    assert solo.variants[0].statement == "no control variant: lift cannot be measured"


def _lift(significant, relative, half, more=0):
    return Lift(control_rate=0.1, variant_rate=0.1 * (1 + relative), absolute=0.0, absolute_ci=(0, 0),
                relative=relative, relative_ci=(relative - half, relative + half), z=0, p_value=0.5,
                significant=significant, needed_per_arm=100, more_visitors=more)


def test_lift_statement_wording():
    assert lift_statement("B", _lift(True, 0.12, 0.05)) == "B beats control by 12% +/- 5%, significant"
    assert lift_statement("B", _lift(True, -0.08, 0.031)) == "B trails control by 8% +/- 3.1%, significant"
    assert lift_statement("B", _lift(False, 0.01, 0.2, more=1234)) == \
        "not enough data yet: B vs control +1% +/- 20%, about 1,234 more visitors needed"
    assert lift_statement("B", _lift(False, -0.01, 0.02)) == "no significant difference: B vs control -1% +/- 2%"
    assert lift_statement("B", None, has_control=False) == "no control variant: lift cannot be measured"
    # The sequential interval (the default) is wider than the fixed-horizon one: the price of peeking.
    real = two_proportion_test(1000, 50_000, 1300, 50_000)
    assert lift_statement("B", real) == "B beats control by 30% +/- 18%, significant"
    fixed = two_proportion_test(1000, 50_000, 1300, 50_000, settings=AnalyticsConfig(sequential=False))
    assert lift_statement("B", fixed) == "B beats control by 30% +/- 10.6%, significant"


def test_json_and_csv_output(report):
    data = json.loads(json.dumps(report.to_dict()))
    assert data["campaigns"][0]["variants"][1]["lift"]["relative"] == pytest.approx(-0.5)
    assert data["campaigns"][0]["variants"][1]["daily"][0] == {"day": "2026-03-01", "visitors": 4, "converted": 1}
    assert "confidence sequences" in data["method"] and data["analysis"]["sequential"] is True
    assert data["campaigns"][0]["srm"] is None and data["campaigns"][0]["trusted"] is True
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert [(r["campaign"], r["variant"]) for r in rows] == [("promo", "control"), ("promo", "B"), ("solo", "default")]
    assert rows[1]["visitors"] == "4" and rows[1]["revenue"] == "60.0"
    assert rows[0]["lift_relative"] == ""


def test_campaign_filter_and_period(report):
    store = MemoryStore(clock=lambda: T0)
    store.append(_events())
    only = build_report(store, campaign="solo", now=T0 + timedelta(days=10))
    assert [c.campaign for c in only.campaigns] == ["solo"]
    before = build_report(store, until=T0 + timedelta(hours=3), now=T0 + timedelta(days=10))
    assert sum(v.visitors for v in before.campaigns[0].variants) == 2 + 3
    with pytest.raises(ValueError, match="since"):
        build_report(store, since=T0, until=T0, now=T0)


def test_sqlite_and_memory_stores_give_the_same_report(tmp_path):
    """The same events in either store give the same report, filters and identify links included."""
    from segmint.engine.events import Identify, PageView
    from segmint.engine.stores.sqlite import SQLiteStore

    events = _events() + [
        PageView(visitor_id="b2", at=T0 + timedelta(hours=1)),
        Impression(campaign="promo", variant="B", skus=["s2"], visitor_id="anon", at=T0 + timedelta(hours=2)),
        Identify(visitor_id="anon", customer_id="cust", at=T0 + timedelta(hours=3)),
        Order(order_id="o9", customer_id="cust", at=T0 + timedelta(hours=4), total=99.0, coupon="X",
              items=[OrderItem(sku="s2", price=40.0, quantity=2, discount=5.0, category="c")]),
    ]
    memory, sqlite = MemoryStore(clock=lambda: T0), SQLiteStore(str(tmp_path / "e.db"), clock=lambda: T0)
    try:
        for store in (memory, sqlite):
            store.append([e.__copy__() for e in events])
        for options in ({}, {"campaign": "promo"}, {"since": T0 + timedelta(hours=2)},
                        {"until": T0 + timedelta(hours=5)}):
            now = T0 + timedelta(days=10)
            fast, slow = build_report(sqlite, now=now, **options), build_report(memory, now=now, **options)
            assert fast.to_dict() == slow.to_dict()
        full = build_report(sqlite, now=T0 + timedelta(days=10))
        b = {(c.campaign, v.variant): v for c in full.campaigns for v in c.variants}[("promo", "B")]
        assert b.orders == 3 and b.recommended_revenue == 30.0 + 70.0  # o9's s2 line: 2 x (40 - 5)
        assert full.events == len(events) - 1  # the page view is not read
    finally:
        memory.close()
        sqlite.close()


# -- sample ratio mismatch and the [analytics] table -----------------------------------------------

def _split_events(control: int, b: int):
    events = [Impression(campaign="promo", variant="control", visitor_id=f"c{i}", at=T0) for i in range(control)]
    events += [Impression(campaign="promo", variant="B", skus=["s1"], visitor_id=f"b{i}", at=T0) for i in range(b)]
    events += [Order(order_id=f"o{i}", visitor_id=f"b{i}", at=T0 + timedelta(hours=1),
                     items=[OrderItem(sku="s1", price=10.0)]) for i in range(0, b, 10)]
    events += [Order(order_id=f"p{i}", visitor_id=f"c{i}", at=T0 + timedelta(hours=1),
                     items=[OrderItem(sku="s1", price=10.0)]) for i in range(0, control, 12)]
    return events


def _campaign(weights):
    return Campaign(id="promo", slots=["home"], strategy="bestsellers",
                    variants=[Variant(name=name, weight=w, control=name == "holdout") for name, w in weights.items()])


def test_configured_splits_name_the_holdout_as_it_is_recorded():
    campaigns = [_campaign({"holdout": 1, "B": 3}), Campaign(id="solo", slots=["home"], strategy="bestsellers")]
    assert configured_splits(campaigns) == {"promo": {"control": 1, "B": 3}}


def test_a_sample_ratio_mismatch_flags_the_campaign_in_statements_json_and_csv():
    store = MemoryStore(clock=lambda: T0)
    store.append(_split_events(1000, 1200))
    splits = configured_splits([_campaign({"holdout": 1, "B": 1})])
    report = build_report(store, now=T0 + timedelta(days=10), splits=splits)
    (promo,) = report.campaigns
    assert promo.srm.mismatch and not promo.trusted
    assert promo.srm.observed == {"control": 1000, "B": 1200} and promo.srm.expected == {"control": 0.5, "B": 0.5}
    assert promo.variants[1].statement.startswith("do not trust (sample ratio mismatch): ")
    data = json.loads(json.dumps(report.to_dict()))["campaigns"][0]
    assert data["trusted"] is False and data["srm"]["mismatch"] is True
    assert "must not be trusted" in data["srm"]["message"]
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert rows[1]["srm_mismatch"] == "True" and float(rows[1]["srm_p_value"]) < 0.001
    # The configured 1:1.2 split is what was observed: trusted, and no flag in the statement.
    splits = configured_splits([_campaign({"holdout": 5, "B": 6})])
    fine = build_report(store, now=T0 + timedelta(days=10), splits=splits)
    assert fine.campaigns[0].trusted and not fine.campaigns[0].variants[1].statement.startswith("do not trust")
    store.close()


def test_the_analytics_table_sets_how_the_report_reads_lifts(tmp_path):
    path = tmp_path / "segmint.toml"
    path.write_text('[analytics]\nsequential = false\ncorrection = "benjamini-hochberg"\nmde = 0.05\n'
                    'sequential_tuning = 20000\n')
    analysis = load_config(path).analytics
    assert (analysis.sequential, analysis.correction, analysis.mde, analysis.alpha) == \
        (False, "benjamini-hochberg", 0.05, 0.05)
    store = MemoryStore(clock=lambda: T0)
    store.append(_split_events(1000, 1000))
    report = build_report(store, now=T0 + timedelta(days=10), analysis=analysis)
    assert report.analysis == analysis and "fixed horizon" in report.method and "Benjamini-Hochberg" in report.method
    lift = report.campaigns[0].variants[1].lift
    assert lift.method == "fixed" and lift.correction == "benjamini-hochberg"
    assert lift.control_rate == 0.084 and lift.needed_per_arm == visitors_per_arm(0.084, 0.05)  # the mde, fixed
    assert json.loads(json.dumps(report.to_dict(), default=str))["analysis"]["mde"] == 0.05
    store.close()


def test_a_bad_analytics_value_names_the_field_line_and_the_accepted_values(tmp_path):
    path = tmp_path / "segmint.toml"
    path.write_text('[analytics]\ncorrection = "bonferroni"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems or [info.value]
    assert problem.path == "$.analytics.correction" and problem.line == 2
    assert "'holm-bonferroni', 'benjamini-hochberg', 'none'" in str(info.value)
    assert "did you mean 'holm-bonferroni'" in str(info.value)


def _daily_traffic(days=10, per_day=400, rates=(0.05, 0.08)):
    """Two weeks of a holdout test: each day's visitors, some of whom order the next hour."""
    import random

    rng = random.Random(5)
    events = []
    for day in range(days):
        for i in range(per_day):
            variant, rate = (("control", rates[0]), ("B", rates[1]))[i % 2]
            at = T0 + timedelta(days=day, minutes=i)
            visitor = f"d{day}-{i}"
            events.append(Impression(campaign="promo", variant=variant, visitor_id=visitor, at=at))
            if rng.random() < rate:
                events.append(Order(order_id=f"o{day}-{i}", visitor_id=visitor, at=at + timedelta(hours=1),
                                    items=[OrderItem(sku="x", price=20.0)]))
    return sorted(events, key=lambda e: e.at)


def test_the_cumulative_lift_reads_day_by_day_and_ends_at_the_reports_lift():
    store = MemoryStore(clock=lambda: T0)
    store.append(_daily_traffic())
    report = build_report(store, now=T0 + timedelta(days=20), checkpoint=False)
    control, b = report.campaigns[0].variants
    assert control.cumulative == ()  # the control is the baseline, no lift of its own
    assert [p.day for p in b.cumulative] == [p.day for p in b.daily]  # one point per day with exposures
    visitors = [p.visitors for p in b.cumulative]
    assert visitors == sorted(visitors) and visitors[-1] == b.visitors
    assert [p.control_visitors for p in b.cumulative][-1] == control.visitors
    last = b.cumulative[-1]  # the last evening is the report itself
    assert (last.relative, last.relative_ci, last.significant) == (
        b.lift.relative, b.lift.relative_ci, b.lift.significant)
    early = b.cumulative[1]  # two days of data: the same method on fewer visitors, a wider band
    assert early.relative_ci[1] - early.relative_ci[0] > last.relative_ci[1] - last.relative_ci[0]
    day = b.to_dict()["cumulative"][0]
    assert set(day) == {"day", "visitors", "control_visitors", "relative", "relative_ci", "significant"}
    assert day["day"] == T0.date().isoformat()
    assert "daily" in b.to_dict() and "lift" in b.to_dict()  # the existing keys stay
    store.close()


def test_the_cyclic_gc_is_paused_for_the_pass_and_restored_after():
    """The pass keeps millions of acyclic objects alive; the collector is off while it reads
    (and saves its state) and back on after, also when reading fails."""
    import gc

    store = MemoryStore(clock=lambda: T0)
    store.append(_events())
    seen = []

    class Watched:
        def __init__(self, fail=False):
            self.fail = fail

        def __getattr__(self, name):
            return getattr(store, name)

        def attribution_rows(self, **options):
            seen.append(gc.isenabled())
            if self.fail:
                raise OSError("the disk went away")
            return (row for row in ())  # rows a report can close (eventlog.Rows)

    assert gc.isenabled()
    build_report(Watched(), now=T0 + timedelta(days=10))
    assert seen and not any(seen) and gc.isenabled()
    with pytest.raises(OSError):
        build_report(Watched(fail=True), now=T0 + timedelta(days=10))
    assert gc.isenabled()
