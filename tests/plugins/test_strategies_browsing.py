"""bestsellers, new_arrivals, recently_viewed, viewed_based, manual, cart_reminder on a small shop."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from segmint.engine.catalog import load_catalog_file
from segmint.engine.errors import ConfigError
from segmint.engine.hooks import get_plugin_manager
from segmint.engine.product_stats import ProductStats
from segmint.engine.profile import CartItem, Profile
from segmint.engine.strategy import StrategyContext, run_strategy, validate_params
from segmint.plugins import DEFAULT_PLUGINS

NOW = datetime(2024, 6, 30, 12, tzinfo=timezone.utc)
CATALOG = load_catalog_file(Path(__file__).with_name("shop_catalog.json"))
STRATEGY_MODULES = tuple(m for m in DEFAULT_PLUGINS if ".strategy_" in m)


def registry():
    pm = get_plugin_manager(builtins=STRATEGY_MODULES, load_entrypoints=False)
    found = {}
    for result in pm.hook.segmint_register_strategies():
        for strategy in result:
            found.setdefault(strategy.name, strategy)
    return found


STRATEGIES = registry()


def order(customer, days_ago, *lines):
    return {"type": "order", "customer_id": customer, "at": NOW - timedelta(days=days_ago),
            "items": [{"sku": sku, "category": CATALOG.get(sku).category, "quantity": qty} for sku, qty in lines]}


def view(visitor, minute, sku):
    return {"type": "product_view", "visitor_id": visitor, "sku": sku, "category": CATALOG.get(sku).category,
            "at": NOW - timedelta(hours=2) + timedelta(minutes=minute)}


SALES = ProductStats.build([
    order("c1", 3, ("S2", 5)), order("c2", 2, ("M5", 10)), order("c3", 10, ("M3", 4)),
    order("c4", 20, ("E2", 3)), order("c5", 60, ("F3", 8)), order("c6", 25, ("F1", 2)),
], NOW)


def recommend(name, params=None, profile=None, stats=SALES, exclude=(), document=None, now=NOW):
    ctx = StrategyContext(profile=profile or Profile(key="v:new"), catalog=CATALOG, now=now, stats=stats,
                          strategies=STRATEGIES, exclude=frozenset(exclude), document=document or {})
    return [p.sku for p in run_strategy(name, ctx, params)]


# -- bestsellers ---------------------------------------------------------------------------

def test_bestsellers_in_the_last_30_days_skip_out_of_stock():
    assert recommend("bestsellers") == ["S2", "M3", "E2", "F1"]  # M5 sold most but is out of stock


def test_bestsellers_windows_and_category():
    assert recommend("bestsellers", {"window_days": 7}) == ["S2"]
    assert recommend("bestsellers", {"window_days": 90}) == ["F3", "S2", "M3", "E2", "F1"]
    assert recommend("bestsellers", {"window_days": None, "category": "fashion"}) == ["F3", "F1"]
    assert recommend("bestsellers", {"categories": ["makeup", "electronics"]}) == ["M3", "E2"]


def test_bestsellers_fall_back_to_new_arrivals_when_too_few():
    got = recommend("bestsellers", {"window_days": 7, "limit": 4, "fallback": "new_arrivals"})
    assert got == ["S2", "E2", "F3", "S4"]


def test_bestsellers_without_sales_history_is_empty():
    assert recommend("bestsellers", stats=ProductStats.empty()) == []


# -- new_arrivals --------------------------------------------------------------------------

def test_new_arrivals_newest_first():
    assert recommend("new_arrivals") == ["E2", "F3", "S4", "F1", "M3", "S2", "M1", "S3"]  # M5 out of stock


def test_new_arrivals_undated_last_and_max_age():
    assert recommend("new_arrivals", {"categories": ["electronics"]}) == ["E2", "E4", "E1", "E3", "E6"]
    assert recommend("new_arrivals", {"max_age_days": 30}) == ["E2", "F3", "S4"]
    assert recommend("new_arrivals", {"max_age_days": 30}, now=NOW + timedelta(days=365)) == []


def bought(*skus_days):
    """A customer who bought each sku that many days before NOW."""
    return Profile(key="c:b", orders=len(skus_days), purchased_skus=tuple(sku for sku, _ in skus_days),
                   purchased_at=tuple((NOW - timedelta(days=days)).timestamp() for _, days in skus_days))


def test_no_strategy_recommends_what_was_just_bought_unless_allowed():
    lamp_buyer = bought(("E2", 0.01), ("F3", 45))  # E2 just ordered; F3 45 days ago: not "just"
    assert recommend("new_arrivals", profile=lamp_buyer)[:7] == ["F3", "S4", "F1", "M3", "S2", "M1", "S3"]
    assert recommend("new_arrivals", {"exclude_purchased": False}, profile=lamp_buyer)[0] == "E2"
    assert recommend("new_arrivals", {"purchased_within_days": 60}, profile=lamp_buyer)[:2] == ["S4", "F1"]
    assert recommend("bestsellers", profile=bought(("S2", 3))) == ["M3", "E2", "F1"]
    # A cart is the point of the reminder, even when its items were bought before.
    again = bought(("S1", 2), ("M3", 2))
    again.cart, again.cart_updated_at = cart_profile(20).cart, cart_profile(20).cart_updated_at
    assert recommend("cart_reminder", profile=again) == ["S1", "M3"]


# -- recently_viewed -----------------------------------------------------------------------

def test_recently_viewed_most_recent_first_without_cart_or_page_items():
    profile = Profile(key="v:1", viewed_skus=["S2", "M5", "E1", "F1", "M2"], cart=[CartItem(sku="F1")])
    assert recommend("recently_viewed", profile=profile) == ["S2", "E1", "M2"]
    assert recommend("recently_viewed", profile=profile, exclude={"S2"}) == ["E1", "M2"]
    assert recommend("recently_viewed", {"exclude_in_cart": False, "limit": 3}, profile=profile) == ["S2", "E1", "F1"]


def test_recently_viewed_skips_skus_no_longer_in_the_catalog():
    assert recommend("recently_viewed", profile=Profile(key="v:1", viewed_skus=["GONE", "S1"])) == ["S1"]


# -- viewed_based --------------------------------------------------------------------------

def test_viewed_based_co_views_then_co_purchases_then_category_bestsellers():
    stats = ProductStats.build([
        view("v1", 0, "S2"), view("v1", 1, "S3"),
        view("v2", 0, "S2"), view("v2", 1, "S3"),
        view("v3", 0, "S2"), view("v3", 1, "M3"),
        order("c1", 5, ("S2", 1), ("S4", 1)),
        order("c2", 5, ("S1", 3)), order("c3", 5, ("F1", 2)),
    ], NOW)
    profile = Profile(key="v:9", visits=2, viewed_skus=["S2"], category_views={"skincare": 1, "fashion": 4})
    # S3 (co-viewed twice), S4 and M3 (once each; S4 bought by no one else, while M3 shares a
    # co-view among S2's three), then skincare bestsellers (S1; S2 was viewed; S4 already
    # chosen), then bestsellers of the most browsed category (fashion: F1).
    assert recommend("viewed_based", profile=profile, stats=stats) == ["S3", "S4", "M3", "S1", "F1"]
    # include_viewed: S2 comes back, in its place among skincare bestsellers (3 units of S1, 1 of S2).
    assert recommend("viewed_based", {"include_viewed": True}, profile=profile, stats=stats) == \
        ["S3", "S4", "M3", "S1", "S2", "F1"]


def test_viewed_based_prefers_a_specific_partner_to_one_seen_with_everything():
    # M3 was viewed after S2 three times, S3 twice; but 400 visitors look at M3 alone: being
    # seen with S2 says little about M3, everything about S3 (item-kNN's cosine similarity).
    stats = ProductStats.build([
        *(e for v in ("v1", "v2") for e in (view(v, 0, "S2"), view(v, 1, "S3"))),
        *(e for v in ("v3", "v4", "v5") for e in (view(v, 0, "S2"), view(v, 1, "M3"))),
        *(view(f"p{i}", 0, "M3") for i in range(400)),
    ], NOW)
    assert stats.co_viewed("S2") == [("M3", 3), ("S3", 2)]  # the raw counts
    profile = Profile(key="v:9", viewed_skus=["S2"])
    assert recommend("viewed_based", {"limit": 2}, profile=profile, stats=stats) == ["S3", "M3"]


def test_viewed_based_weighs_the_latest_view_most():
    stats = ProductStats.build([view("v1", 0, "E1"), view("v1", 1, "E2"), view("v2", 0, "F2"),
                                view("v2", 1, "F4")], NOW)
    latest_fashion = Profile(key="v:1", viewed_skus=["F2", "E1"])
    assert recommend("viewed_based", {"limit": 2}, profile=latest_fashion, stats=stats) == ["F4", "E2"]
    latest_tech = Profile(key="v:1", viewed_skus=["E1", "F2"])
    assert recommend("viewed_based", {"limit": 2}, profile=latest_tech, stats=stats) == ["E2", "F4"]
    # A view they also bought weighs twice: F2, viewed before E1 but bought, leads.
    bought_fashion = Profile(key="c:1", viewed_skus=["E1", "F2"], purchased_skus=["F2"])
    assert recommend("viewed_based", {"limit": 2}, profile=bought_fashion, stats=stats) == ["F4", "E2"]


def test_viewed_based_with_no_views_uses_its_fallback():
    assert recommend("viewed_based") == []
    assert recommend("viewed_based", {"fallback": "bestsellers", "limit": 2}) == ["S2", "M3"]


# -- manual --------------------------------------------------------------------------------

def test_manual_keeps_the_merchandisers_order():
    assert recommend("manual", {"skus": ["E6", "M5", "GONE", "S1", "E6"]}) == ["E6", "S1"]


def test_manual_needs_skus():
    with pytest.raises(ConfigError, match="skus"):
        validate_params(STRATEGIES["manual"], {})
    with pytest.raises(ConfigError, match="skus"):
        validate_params(STRATEGIES["manual"], {"skus": []})


def test_manual_cannot_be_a_default_delegate():
    with pytest.raises(ConfigError, match="needs params of its own") as info:
        validate_params(STRATEGIES["bestsellers"], {"fallback": "manual"}, strategies=STRATEGIES)
    assert info.value.path == "$.fallback"


# -- cart_reminder -------------------------------------------------------------------------

def cart_profile(idle_minutes, last_order_minutes_ago=None):
    updated = (NOW - timedelta(minutes=idle_minutes)).timestamp()
    last_order = None if last_order_minutes_ago is None else (NOW - timedelta(minutes=last_order_minutes_ago)).timestamp()
    return Profile(key="v:c", cart=[CartItem(sku="S1"), CartItem(sku="M3", quantity=2), CartItem(sku="E5")],
                   cart_updated_at=updated, last_order_at=last_order, orders=int(last_order is not None))


def test_cart_reminder_after_the_cart_sat_idle():
    assert recommend("cart_reminder", profile=cart_profile(20)) == ["S1", "M3"]  # E5 out of stock
    assert recommend("cart_reminder", profile=cart_profile(10)) == []
    assert recommend("cart_reminder", {"idle_minutes": 5}, profile=cart_profile(10)) == ["S1", "M3"]
    assert recommend("cart_reminder", {"idle_minutes": 15}, profile=cart_profile(15)) == ["S1", "M3"]


def test_cart_reminder_not_after_an_order():
    assert recommend("cart_reminder", profile=cart_profile(30, last_order_minutes_ago=20)) == []
    assert recommend("cart_reminder", profile=cart_profile(30, last_order_minutes_ago=60)) == ["S1", "M3"]


def test_cart_reminder_with_an_empty_cart():
    assert recommend("cart_reminder", profile=Profile(key="v:e", cart_updated_at=NOW.timestamp() - 3600)) == []
