"""Attribution: windows, click-throughs, recommended-sku revenue, identify links, memory bound."""

from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.analytics import Attributor, attribute, build_report
from segmint.engine.events import Click, Identify, Impression, Order, OrderItem, PageView
from segmint.engine.stores import SQLiteStore

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


def seen(visitor="v1", variant="B", at=0.0, skus=("s1", "s2"), campaign="c", customer=None):
    return Impression(campaign=campaign, variant=variant, slot="home", skus=list(skus),
                      visitor_id=visitor, customer_id=customer, at=days(at))


def clicked(visitor="v1", variant="B", at=0.0, campaign="c"):
    return Click(campaign=campaign, variant=variant, slot="home", visitor_id=visitor, at=days(at))


def bought(order_id="o1", at=1.0, visitor="v1", customer=None, lines=(("s1", 10.0), ("x9", 5.0))):
    return Order(order_id=order_id, visitor_id=visitor if customer is None else None,
                 customer_id=customer, at=days(at),
                 items=[OrderItem(sku=sku, price=price) for sku, price in lines])


@pytest.mark.parametrize(("after", "attributed"), [(6.9, True), (7.0, True), (7.1, False)])
def test_an_order_is_attributed_only_within_the_window(after, attributed):
    result = attribute([seen(at=0), bought(at=after)])
    totals = result.totals[("c", "B")]
    assert (totals.orders, totals.converted) == ((1, 1) if attributed else (0, 0))
    assert result.orders == 1 and result.attributed_orders == int(attributed)


def test_the_window_is_configurable_and_counts_from_the_latest_exposure():
    assert attribute([seen(at=0), bought(at=2.5)], window_days=2).totals[("c", "B")].orders == 0
    # A second impression on day 5 starts a fresh window: the order on day 9 is inside it.
    result = attribute([seen(at=0), seen(at=5), bought(at=9)])
    assert result.totals[("c", "B")].orders == 1


def test_orders_with_no_exposure_are_not_attributed():
    result = attribute([seen(visitor="v1"), bought(order_id="o2", visitor="v2", at=1),
                        bought(order_id="o3", customer="42", at=2)])
    assert result.orders == 2 and result.attributed_orders == 0
    assert result.revenue == 30.0
    assert result.totals[("c", "B")].orders == 0


def test_a_click_before_the_order_makes_it_a_click_through():
    result = attribute([seen(at=0), clicked(at=0.5), bought(at=1),
                        seen(visitor="v2", at=0), bought(order_id="o2", visitor="v2", at=1),
                        clicked(visitor="v2", at=2)])
    totals = result.totals[("c", "B")]
    assert totals.clicks == 2 and totals.exposures == 2
    assert totals.orders == 2 and totals.click_orders == 1
    assert totals.click_revenue == 15.0 and totals.revenue == 30.0


def test_a_click_older_than_the_window_is_not_a_click_through():
    result = attribute([clicked(at=0), seen(at=6), bought(at=8)])
    totals = result.totals[("c", "B")]
    assert totals.orders == 1 and totals.click_orders == 0


def test_revenue_from_recommended_skus_is_counted_apart_from_the_order_total():
    lines = (("s1", 10.0), ("s2", 7.5), ("x9", 5.0))
    result = attribute([seen(skus=["s1", "s2"]), bought(lines=lines)])
    totals = result.totals[("c", "B")]
    assert totals.revenue == 22.5
    assert totals.recommended_revenue == 17.5


def test_recommended_revenue_uses_line_value_after_discount_and_quantity():
    order = Order(order_id="o1", visitor_id="v1", at=days(1),
                  items=[OrderItem(sku="s1", quantity=3, price=10.0, discount=2.0),
                         OrderItem(sku="x", price=4.0)])
    totals = attribute([seen(skus=["s1"]), order]).totals[("c", "B")]
    assert totals.recommended_revenue == 24.0 and totals.revenue == 28.0


def test_a_sku_shown_longer_ago_than_the_window_is_not_recommended_revenue():
    events = [seen(at=0, skus=["s1"]), seen(at=6, skus=["s2"]), bought(at=8, lines=(("s1", 10.0), ("s2", 3.0)))]
    totals = attribute(events).totals[("c", "B")]
    assert totals.orders == 1 and totals.recommended_revenue == 3.0


def test_the_control_group_converts_with_no_recommended_revenue():
    result = attribute([seen(variant="control", skus=()), bought(at=1)])
    totals = result.totals[("c", "control")]
    assert totals.exposures == 1 and totals.converted == 1
    assert totals.revenue == 15.0 and totals.recommended_revenue == 0.0


def test_identify_links_anonymous_exposures_to_the_customers_later_order():
    events = [seen(visitor="anon", at=0),
              Identify(visitor_id="anon", customer_id="42", at=days(0.5)),
              bought(customer="42", at=2)]
    totals = attribute(events).totals[("c", "B")]
    assert (totals.visitors, totals.converted, totals.orders) == (1, 1, 1)
    assert totals.recommended_revenue == 10.0


def test_an_event_with_both_ids_links_like_identify():
    events = [seen(visitor="anon", at=0),
              PageView(visitor_id="anon", customer_id="42", at=days(0.2)),   # not read: no link
              seen(visitor="anon", customer="42", at=0.5),                   # carries both ids
              bought(customer="42", at=2)]
    totals = attribute(events).totals[("c", "B")]
    # The same human was seen anonymously and as the customer: one visitor, not two.
    assert (totals.visitors, totals.exposures, totals.converted) == (1, 2, 1)


def test_after_a_link_the_visitors_own_later_events_belong_to_the_customer():
    events = [Identify(visitor_id="anon", customer_id="42", at=days(0)),
              seen(visitor="anon", at=1), bought(customer="42", at=2)]
    assert attribute(events).totals[("c", "B")].orders == 1


def test_merging_two_converted_runs_counts_one_conversion():
    events = [seen(visitor="anon", at=0), bought(order_id="o1", visitor="anon", at=0.1),
              seen(visitor="x", customer="42", at=0.2), bought(order_id="o2", customer="42", at=0.3),
              Identify(visitor_id="anon", customer_id="42", at=days(0.4))]
    totals = attribute(events).totals[("c", "B")]
    assert (totals.visitors, totals.converted, totals.orders) == (1, 1, 2)
    assert sum(n for n, _ in totals.daily.values()) == 1
    assert sum(c for _, c in totals.daily.values()) == 1


def test_a_visitor_seen_in_two_variants_counts_in_both():
    totals = attribute([seen(variant="A"), seen(variant="B"), bought()]).totals
    assert totals[("c", "A")].orders == totals[("c", "B")].orders == 1


def test_a_visitor_returning_after_a_silence_longer_than_the_window_is_a_new_run():
    totals = attribute([seen(at=0), seen(at=3), seen(at=20)]).totals[("c", "B")]
    assert totals.visitors == 2 and totals.exposures == 3
    assert sorted(n for n, _ in totals.daily.values()) == [1, 1]


def test_daily_cohorts_credit_the_conversion_to_the_day_of_first_exposure():
    events = [seen(visitor="v1", at=0), seen(visitor="v2", at=1), bought(visitor="v1", at=3)]
    daily = attribute(events).totals[("c", "B")].daily
    first = int(days(0).timestamp() // 86400)
    assert daily == {first: [1, 1], first + 1: [1, 0]}


def test_a_click_without_variant_joins_the_visitors_live_run():
    click = Click(campaign="c", slot="home", visitor_id="v1", at=days(0.5))
    totals = attribute([seen(), click, bought()]).totals
    assert set(totals) == {("c", "B")}
    assert totals[("c", "B")].click_orders == 1


def test_campaign_filter_and_until_bound_the_pass():
    events = [seen(campaign="a"), seen(campaign="b"), bought(at=1), seen(visitor="v9", campaign="a", at=3)]
    result = attribute(events, campaign="a", until=days(2))
    assert set(result.totals) == {("a", "B")}
    assert result.totals[("a", "B")].exposures == 1
    assert result.events == 3 and result.last_at == days(1)


def test_memory_holds_only_people_active_within_the_window():
    # 20,000 visitors, one an hour for 833 days: at most a week's worth are ever held.
    attributor = Attributor(window_days=7)
    for i in range(20_000):
        attributor.feed(Impression(campaign="c", variant="B", visitor_id=f"v{i}",
                                   at=T0 + timedelta(hours=i)))
    result = attributor.result()
    assert result.totals[("c", "B")].visitors == 20_000
    assert result.peak_people <= 7 * 24 + 1024 + 1   # the window plus one sweep interval
    assert result.evicted_people == 0


def test_the_people_cap_evicts_the_least_recently_active_and_says_so():
    attributor = Attributor(window_days=7, max_people=10)
    for i in range(50):
        attributor.feed(seen(visitor=f"v{i}", at=i / 1000))
    result = attributor.result()
    assert result.peak_people == 10 and result.evicted_people == 40


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window_days"):
        Attributor(window_days=0)


def test_the_report_reads_the_store_in_time_order_and_since_skips_older_events():
    store = SQLiteStore(":memory:", clock=lambda: T0)
    try:
        # Appended out of order: the store's log is read oldest first.
        store.append([bought(at=1)])
        store.append([seen(at=0), seen(visitor="v2", at=3), bought(order_id="o2", visitor="v2", at=4)])
        report = build_report(store, now=days(30))
        (variant,) = report.campaigns[0].variants
        assert (variant.visitors, variant.orders, variant.revenue) == (2, 2, 30.0)
        later = build_report(store, since=days(2), now=days(30))
        assert later.campaigns[0].variants[0].orders == 1 and later.orders == 1
    finally:
        store.close()


# -- the sums behind revenue per visitor, average order value and CUPED ---------------------------

def test_per_run_sums_match_each_visitors_revenue_orders_and_pre_exposure_history():
    import random

    rng = random.Random(7)
    events, runs = [], []  # runs: (variant, pre spend, pre orders, revenue, orders)
    for i in range(300):
        visitor, variant = f"v{i}", rng.choice(("B", "control"))
        before = [round(rng.uniform(5, 80), 2) for _ in range(rng.randrange(0, 3))]
        after = [round(rng.uniform(5, 80), 2) for _ in range(rng.randrange(0, 3))]
        events += [bought(f"p{i}-{k}", at=0.1 + 0.01 * k, visitor=visitor, lines=(("x", price),))
                   for k, price in enumerate(before)]
        events.append(seen(visitor, variant, at=1.0))
        events += [bought(f"q{i}-{k}", at=2.0 + 0.01 * k, visitor=visitor, lines=(("x", price),))
                   for k, price in enumerate(after)]
        runs.append((variant, sum(before), len(before), sum(after), len(after)))
    result = attribute(sorted(events, key=lambda e: e.at))
    for variant in ("B", "control"):
        mine = [r for r in runs if r[0] == variant]
        t = result.totals[("c", variant)]
        expected = {
            "visitors": len(mine), "converted": sum(1 for r in mine if r[4]), "orders": sum(r[4] for r in mine),
            "revenue": sum(r[3] for r in mine), "revenue_squares": sum(r[3] ** 2 for r in mine),
            "order_squares": sum(r[4] ** 2 for r in mine), "revenue_orders": sum(r[3] * r[4] for r in mine),
            "pre_spend": sum(r[1] for r in mine), "pre_spend_squares": sum(r[1] ** 2 for r in mine),
            "pre_orders": sum(r[2] for r in mine), "pre_order_squares": sum(r[2] ** 2 for r in mine),
            "spend_revenue": sum(r[1] * r[3] for r in mine),
            "orders_converted": sum(r[2] for r in mine if r[4]),
        }
        assert {name: getattr(t, name) for name in expected} == pytest.approx(expected)


def test_merged_runs_sum_as_one_visitor_with_the_earlier_runs_history():
    events = [
        bought("p1", at=0.0, customer="42", lines=(("x", 30.0),)),      # the customer's history: 30, 1 order
        seen("v1", "B", at=1.0, customer="42"),                          # run 1: pre (30, 1)
        seen("v2", "B", at=1.5),                                         # run 2, anonymous: pre (0, 0)
        bought("o2", at=2.0, visitor="v2", lines=(("x", 10.0),)),        # run 2: 10
        bought("o1", at=2.5, customer="42", lines=(("x", 20.0),)),       # run 1: 20
        Identify(visitor_id="v2", customer_id="42", at=days(3.0)),       # one human: one run of 30, 2 orders
    ]
    t = attribute(events).totals[("c", "B")]
    assert (t.visitors, t.converted, t.orders, t.revenue) == (1, 1, 2, 30.0)
    assert (t.revenue_squares, t.order_squares, t.revenue_orders) == (900.0, 4, 60.0)
    assert (t.pre_spend, t.pre_spend_squares, t.pre_orders, t.pre_order_squares) == (30.0, 900.0, 1, 1)
    assert (t.spend_revenue, t.orders_converted) == (900.0, 1)


def test_people_exposed_to_several_arms_are_counted_once_per_campaign_after_merges():
    events = [
        seen("v1", "A", at=0.0), seen("v2", "B", at=0.1), seen("v3", "B", at=0.2),
        Identify(visitor_id="v1", customer_id="42", at=days(0.5)),
        Identify(visitor_id="v2", customer_id="42", at=days(0.6)),   # 42 saw A and B: one person
        Identify(visitor_id="v3", customer_id="42", at=days(0.7)),   # still the same one
        seen("v4", "A", at=1.0, campaign="d"), seen("v4", "A", at=1.1, campaign="d"),  # one arm only
        seen("v5", "A", at=1.0, campaign="d"), seen("v5", "control", at=1.2, campaign="d"),  # two arms
    ]
    assert attribute(events).multi_arm == {"c": 1, "d": 1}


def test_two_people_each_counted_then_merged_are_one():
    events = [seen("v1", "A", at=0.0), seen("v1", "B", at=0.1), seen("v2", "A", at=0.2), seen("v2", "B", at=0.3),
              Identify(visitor_id="v1", customer_id="42", at=days(0.5)),
              Identify(visitor_id="v2", customer_id="42", at=days(0.6))]
    assert attribute(events).multi_arm == {"c": 1}


def test_a_person_silent_for_longer_than_the_window_is_someone_new_whether_swept_or_not():
    # Two events: no sweep runs between them. Before, the person kept the expired run of A and
    # was counted as exposed to two arms; a sweep in between would have said one.
    result = attribute([seen(variant="A", at=0), seen(variant="B", at=8)])
    assert result.multi_arm == {}
    assert (result.totals[("c", "A")].visitors, result.totals[("c", "B")].visitors) == (1, 1)


def test_an_order_counts_the_most_recently_shown_skus_however_often_the_run_was_trimmed():
    from segmint.engine.analytics.attribution import MAX_SKUS

    # 300 skus shown one by one (a trim at 401 never runs), then an order of the oldest and newest.
    events = [seen(skus=[f"s{i}"], at=i / 1000) for i in range(300)]
    events.append(bought(at=1, lines=(("s0", 10.0), ("s299", 5.0))))
    assert MAX_SKUS < 300
    assert attribute(events).totals[("c", "B")].recommended_revenue == 5.0


def test_an_exposures_row_counts_as_its_impressions_and_clicks_one_by_one():
    from segmint.engine.analytics import EXPOSURES, Exposures

    shown = [seen(at=0, skus=("s1", "s2")), seen(at=1, skus=("s2", "s3")), clicked(at=1.5), seen(at=2, skus=("s4",))]
    after = [seen(visitor="v2", at=2.2), bought(at=3, lines=(("s1", 10.0), ("s3", 4.0), ("x", 1.0)))]
    one_by_one = attribute(shown + after)
    folded = Attributor()
    folded.feed_rows([(days(0).timestamp(), EXPOSURES,
                       Exposures("v1", "c", "B", 3, days(2).timestamp(),
                                 {"s1": days(0).timestamp(), "s2": days(1).timestamp(),
                                  "s3": days(1).timestamp(), "s4": days(2).timestamp()},
                                 clicks=1, last_click=days(1.5).timestamp()))])
    folded.feed_all(after)
    assert folded.result() == one_by_one
    totals = one_by_one.totals[("c", "B")]
    assert (totals.exposures, totals.clicks, totals.click_orders, totals.recommended_revenue) == (4, 1, 1, 14.0)
