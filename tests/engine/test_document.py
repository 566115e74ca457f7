"""Derived fields against hand-computed expectations for the seed scenarios."""

from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.document import profile_document
from segmint.engine.events import (
    CartLine, CartUpdate, Click, Impression, Order, OrderItem, PageView, ProductView, Return,
    ReturnItem,
)
from segmint.engine.folding import fold
from segmint.engine.profile import Profile
from segmint.engine.rfm import RfmThresholds

UTC = timezone.utc
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def ago(days=0.0, minutes=0.0):
    return NOW - timedelta(days=days, minutes=minutes)


def order(n, days_ago, lines, coupon=None):
    items = [OrderItem(sku=sku, category=cat, quantity=q, price=price, discount=disc)
             for sku, cat, q, price, disc in lines]
    return Order(customer_id="c", order_id=f"o{n}", at=ago(days_ago), items=items, coupon=coupon)


def build(events, key="c:c"):
    profile = Profile(key=key)
    for e in sorted(events, key=lambda e: e.at):
        fold(profile, e)
    return profile


def test_lapsed_vip_spent_over_2000_and_has_not_ordered_in_45_days():
    profile = build([order(i, days, [("coat", "outerwear", 1, 600.0, 0.0)])
                     for i, days in enumerate((200, 150, 100, 50))])
    doc = profile_document(profile, NOW)
    assert doc["spend"]["total"] == 2400.0
    assert doc["customer_segment"]["outbounds_value_total"] == 2400.0
    assert doc["days_since_last_purchase"] == pytest.approx(50.0)
    assert doc["orders"]["last_at"] == ago(50) == doc["customer_segment"]["last_purchase_date"]
    assert doc["orders"]["first_at"] == ago(200)
    assert doc["orders"]["avg_days_between"] == pytest.approx(50.0)  # (200 - 50) / 3
    assert doc["customer_segment"]["outbounds_avg_time_delta"] == pytest.approx(50.0)
    assert doc["orders"]["count"] == doc["customer_segment"]["outbounds_count"] == 4
    assert doc["spend"]["avg_order_value"] == doc["orders"]["avg_value"] == 600.0
    assert (doc["orders"]["count_30d"], doc["orders"]["count_90d"]) == (0, 1)


def test_skincare_buyer_who_never_bought_makeup():
    profile = build([
        order(1, 40, [("serum", "skincare", 2, 25.0, 0.0)]),
        order(2, 20, [("cream", "skincare", 1, 30.0, 0.0), ("mask", "skincare", 2, 10.0, 0.0)]),
        ProductView(customer_id="c", sku="lipstick", category="makeup", at=ago(10)),
        ProductView(customer_id="c", sku="mascara", category="makeup", at=ago(9)),
    ])
    doc = profile_document(profile, NOW)
    category = doc["category"]
    assert category["items"] == {"skincare": 5}
    assert category["spend"] == {"skincare": 100.0}
    assert category["views"] == {"makeup": 2}
    assert category["bought"] == ["skincare"] and "makeup" not in category["items"]
    assert category["top"] == "skincare" and category["affinity"] == {"skincare": 1.0}
    assert 80 <= doc["spend"]["total"] <= 120
    assert doc["viewed"]["skus"] == ["mascara", "lipstick"]
    assert doc["purchased"]["skus"][0] in {"cream", "mask"} and set(doc["purchased"]["skus"]) == {
        "serum", "cream", "mask"}


def test_category_affinity_is_the_share_of_items():
    profile = build([order(1, 5, [("a", "hair", 3, 1.0, 0.0), ("b", "body", 1, 1.0, 0.0)])])
    doc = profile_document(profile, NOW)
    assert doc["category"]["affinity"] == {"hair": 0.75, "body": 0.25}
    assert doc["category"]["top"] == "hair"


@pytest.mark.parametrize(("discounted", "share", "band"), [(3, 0.6, "high"), (1, 0.2, "mid"), (0, 0.0, "low")])
def test_discount_seeker_share_and_band(discounted, share, band):
    events = []
    for i in range(5):
        if i < discounted and i % 2 == 0:
            events.append(order(i, 30 - i, [("tv", "tv", 1, 100.0, 20.0)]))  # 20 off per unit
        elif i < discounted:
            events.append(order(i, 30 - i, [("tv", "tv", 1, 100.0, 0.0)], coupon="SAVE10"))
        else:
            events.append(order(i, 30 - i, [("tv", "tv", 1, 100.0, 0.0)]))
    doc = profile_document(build(events), NOW)
    assert doc["discount"]["orders"] == discounted
    assert doc["discount"]["share"] == pytest.approx(share) == doc["affinity"]["discount"]
    assert doc["discount"]["band"] == band
    line_discounted = len([i for i in range(discounted) if i % 2 == 0])
    assert doc["discount"]["total"] == 20.0 * line_discounted


def test_frequent_low_value_buyer():
    events = [order(i, 60 - 5 * i, [("sock", "basics", 1 + i % 2, 4.0, 0.0)]) for i in range(12)]
    doc = profile_document(build(events), NOW)
    items = sum(1 + i % 2 for i in range(12))  # 18
    assert doc["orders"]["count"] == 12 and doc["orders"]["items"] == items
    assert doc["orders"]["avg_basket_size"] == doc["customer_segment"]["basket_size_avg"] == items / 12
    assert doc["spend"]["total"] == 4.0 * items
    assert doc["orders"]["avg_days_between"] == pytest.approx(5.0)


def test_frequent_returner_ratio_is_a_percentage():
    events = [order(1, 30, [("dress", "dresses", 6, 50.0, 0.0)]),
              order(2, 20, [("dress2", "dresses", 4, 50.0, 0.0)]),
              Return(customer_id="c", order_id="o1", at=ago(25), items=[ReturnItem(sku="dress", quantity=3)]),
              Return(customer_id="c", order_id="o2", at=ago(15), items=[ReturnItem(sku="dress2", quantity=1)])]
    doc = profile_document(build(events), NOW)
    assert doc["returns"] == {"count": 2, "items": 4, "ratio": 40.0}
    assert doc["customer_segment"]["returns_articles_ratio"] == 40.0


def test_net_spend_subtracts_the_refunded_amounts_of_returns():
    events = [order(1, 30, [("dress", "dresses", 2, 50.0, 0.0)]),
              Return(customer_id="c", order_id="o1", at=ago(25), items=[ReturnItem(sku="dress")], amount=45.0),
              Return(customer_id="c", order_id="o1", at=ago(20), items=[ReturnItem(sku="dress")])]  # amount unknown
    doc = profile_document(build(events), NOW)
    assert doc["spend"] == {"total": 100.0, "refunded": 45.0, "net": 55.0, "avg_order_value": 100.0}
    assert profile_document(Profile(key="v:v"), NOW)["spend"] == {"total": 0.0, "refunded": 0.0, "net": 0.0}


def test_new_and_returning_visitors():
    first = build([PageView(visitor_id="v", at=ago(minutes=10))], key="v:v")
    doc = profile_document(first, NOW)
    assert doc["visitor"]["is_new"] and not doc["visitor"]["is_returning"]
    assert doc["visitor"]["visits"] == 1 and not doc["visitor"]["is_customer"]
    again = build([PageView(visitor_id="v", at=ago(days=3)), PageView(visitor_id="v", at=ago(minutes=10))],
                  key="v:v")
    doc = profile_document(again, NOW)
    assert doc["visitor"]["is_returning"] and not doc["visitor"]["is_new"]
    assert doc["visitor"]["first_seen"] == ago(days=3) and doc["visitor"]["last_seen"] == ago(minutes=10)
    assert doc["days_since_last_visit"] == pytest.approx(10 / 1440)


def test_a_customer_with_imported_orders_is_returning_without_page_views():
    buyer = build([order(1, 40, [("dress", "dresses", 1, 50.0, 0.0)])])
    doc = profile_document(buyer, NOW)
    assert buyer.visits == 0
    assert doc["visitor"]["is_returning"] and not doc["visitor"]["is_new"]


def test_windows_count_whole_days_today_included():
    # NOW is 12:00; "days ago" at 12:00 lands on the calendar day that many days back.
    days = [0, 6, 7, 29, 30, 89, 90]
    profile = build([order(i, d, [("a", "x", 1, 1.0, 0.0)]) for i, d in enumerate(days)]
                    + [PageView(customer_id="c", at=ago(d, minutes=1)) for d in days])
    doc = profile_document(profile, NOW)
    assert (doc["orders"]["count_7d"], doc["orders"]["count_30d"], doc["orders"]["count_90d"]) == (2, 4, 6)
    assert (doc["visitor"]["visits_7d"], doc["visitor"]["visits_30d"], doc["visitor"]["visits_90d"]) == (2, 4, 6)
    assert doc["orders"]["count"] == 7


def test_cart_idle_minutes_and_an_order_empties_the_cart():
    cart = CartUpdate(customer_id="c", at=ago(minutes=20),
                      items=[CartLine(sku="a", quantity=2, price=5.0), CartLine(sku="b", price=1.0)])
    doc = profile_document(build([cart]), NOW)
    assert doc["cart"] == {"items": 3, "value": 11.0, "skus": ["a", "b"], "idle_minutes": pytest.approx(20.0)}
    doc = profile_document(build([cart, order(1, 0.001, [("a", "x", 2, 5.0, 0.0)])]), NOW)
    assert doc["cart"] == {"items": 0, "value": 0.0, "skus": []}


def test_campaign_history():
    events = [Impression(visitor_id="v", campaign="winback", at=ago(minutes=m)) for m in (30, 20)]
    events.append(Click(visitor_id="v", campaign="winback", at=ago(minutes=19)))
    doc = profile_document(build(events, key="v:v"), NOW)
    assert doc["campaign"] == {"winback": {"impressions": 2, "clicks": 1, "last_at": ago(minutes=20)}}


def test_undefined_values_are_absent_keys_not_none():
    doc = profile_document(Profile(key="v:new"), NOW)
    assert doc["orders"] == {"count": 0, "items": 0, "count_7d": 0, "count_30d": 0, "count_90d": 0}
    for group, key in [("orders", "last_at"), ("orders", "avg_days_between"), ("discount", "share"),
                       ("discount", "band"), ("returns", "ratio"), ("category", "top"),
                       ("cart", "idle_minutes"), ("customer_segment", "last_purchase_date")]:
        assert key not in doc[group], (group, key)
    for key in ("days_since_last_purchase", "days_since_last_visit", "rfm"):
        assert key not in doc

    def walk(value):
        assert value is not None
        if isinstance(value, dict):
            for inner in value.values():
                walk(inner)
    walk(doc)


def test_one_order_has_no_average_gap():
    doc = profile_document(build([order(1, 3, [("a", "x", 1, 1.0, 0.0)])]), NOW)
    assert "avg_days_between" not in doc["orders"] and "outbounds_avg_time_delta" not in doc["customer_segment"]


def test_datetimes_are_aware_utc_and_now_may_be_epoch_seconds():
    profile = build([order(1, 3, [("a", "x", 1, 1.0, 0.0)])])
    doc = profile_document(profile, NOW)
    assert doc["orders"]["last_at"].tzinfo is not None and doc["orders"]["last_at"].utcoffset() == timedelta(0)
    assert profile_document(profile, NOW.timestamp()) == doc


def test_the_document_does_not_alias_the_profile():
    profile = build([order(1, 3, [("a", "x", 1, 1.0, 0.0)]), ProductView(customer_id="c", sku="a", at=ago(1))])
    doc = profile_document(profile, NOW)
    doc["category"]["items"]["x"] = 99
    doc["viewed"]["skus"].append("zzz")
    doc["extra"]["tier"] = "changed"  # a plugin's value (segmint_enrich_document)
    assert profile.category_items == {"x": 1} and profile.viewed_skus == ("a",)
    assert profile_document(profile, NOW)["extra"] == {}


def test_rfm_group_with_thresholds():
    thresholds = RfmThresholds(recency_days=(10, 20, 40, 80), frequency=(1, 2, 3, 5),
                               monetary=(50, 100, 200, 500), computed_at=NOW.timestamp(),
                               customers=100, sample_size=100)
    profile = build([order(i, d, [("a", "x", 1, 150.0, 0.0)]) for i, d in enumerate((60, 30, 15))])
    doc = profile_document(profile, NOW, rfm=thresholds)
    # 15 days: recency 4; 3 orders: frequency 3; spend 450: monetary 4
    assert doc["rfm"] == {"recency": 4, "frequency": 3, "monetary": 4, "score": 11,
                          "segment": "potential_loyalist"}
    assert profile.__segmint_document__(NOW) == profile_document(profile, NOW)


def test_a_partial_document_has_what_a_filter_reads_and_decides_it_the_same():
    from segmint.engine.filters import compile_filter

    profile = Profile(key="c:1", customer_id="1", orders=3, items=5, spend=2500.0, visits=4,
                      last_order_at=NOW.timestamp() - 60 * 86400, category_items={"shoes": 5},
                      viewed_skus=["a"], returned_items=1)
    full = profile_document(profile, NOW)
    lapsed_vip = compile_filter({"spend.total": {"$gte": 2000}, "days_since_last_purchase": {"$gte": 45}})
    assert lapsed_vip.fields == {"spend", "days_since_last_purchase"}
    partial = profile_document(profile, NOW, only=lapsed_vip.fields)
    assert {"spend", "days_since_last_purchase"} <= partial.keys()
    assert not {"visitor", "category", "viewed", "cart", "campaign", "extra"} & partial.keys()
    assert all(partial[key] == full[key] for key in partial)  # a section is never half built
    either = compile_filter({"$or": [{"visitor.visits": {"$gte": 9}}, {"category.top": "shoes"}]})
    assert either.fields == {"visitor", "category"}
    for f in (lapsed_vip, either, compile_filter({})):
        assert f.matches(profile_document(profile, NOW, only=f.fields), NOW) == f.matches(full, NOW)
    assert profile_document(profile, NOW, only=None) == full
