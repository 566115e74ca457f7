"""markdowns, bundles, user_based and the who-is-it strategies (new_vs_returning, discount_affinity)."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def recommend(name, params=None, profile=None, stats=None, document=None):
    ctx = StrategyContext(profile=profile or Profile(key="v:new"), catalog=CATALOG, now=NOW,
                          stats=stats or ProductStats.empty(), strategies=STRATEGIES, document=document or {})
    return [p.sku for p in run_strategy(name, ctx, params)]


# -- markdowns -----------------------------------------------------------------------------

def test_markdowns_deepest_first_older_models_first_on_ties():
    # E3 60% off; E1 and F4 both 50% (E1 is older); E5 is 50% but out of stock; then 25, 20.2,
    # 20 and 15 percent. M1's compare_at_price equals its price: not a markdown.
    assert recommend("markdowns") == ["E3", "E1", "F4", "M4", "F2", "E4", "S3"]


def test_markdowns_min_discount_and_category():
    assert recommend("markdowns", {"min_discount_pct": 25}) == ["E3", "E1", "F4", "M4"]
    assert recommend("markdowns", {"categories": ["electronics"], "max_price": 300}) == ["E3", "E1"]


# -- bundles -------------------------------------------------------------------------------

SKINCARE_BUYER = Profile(key="c:jack", orders=6, category_items={"skincare": 9}, purchased_skus=["S1", "S2"])
MAKEUP_SALES = ProductStats.build([order("c1", 5, ("M3", 5)), order("c2", 5, ("M6", 4)),
                                   order("c3", 5, ("M4", 2))], NOW)


def total(skus):
    return sum(CATALOG.get(s).price for s in skus)


def test_makeup_bundle_for_a_skincare_buyer_under_100():
    got = recommend("bundles", {"categories": ["makeup"], "max_total": 100}, SKINCARE_BUYER, MAKEUP_SALES)
    # Best sellers first: M3 (38); M6 (65) would break the cap; M4 (45) fits (83); nothing else does.
    assert got == ["M3", "M4"]
    assert total(got) <= 100


def test_bundles_spread_over_the_categories_never_bought():
    got = recommend("bundles", {"max_total": 100}, SKINCARE_BUYER, MAKEUP_SALES)
    # One per category first (makeup M3, fashion F1; no electronics fits), then makeup M1.
    assert got == ["M3", "F1", "M1"]
    assert total(got) == 81
    assert all(CATALOG.get(s).category != "skincare" for s in got)


def test_no_bundle_below_min_items():
    assert recommend("bundles", {"categories": ["makeup"], "max_total": 40}, SKINCARE_BUYER, MAKEUP_SALES) == []
    assert recommend("bundles", {"categories": ["makeup"], "max_total": 40, "min_items": 1},
                     SKINCARE_BUYER, MAKEUP_SALES) == ["M3"]


def test_no_bundle_for_a_visitor_who_bought_every_category():
    everything = Profile(key="c:1", category_items={c: 1 for c in CATALOG.categories})
    assert recommend("bundles", profile=everything) == []


def test_bundles_refuse_a_fallback():
    with pytest.raises(ConfigError, match="no fallback"):
        validate_params(STRATEGIES["bundles"], {"fallback": "bestsellers"})


@settings(max_examples=100, deadline=None)
@given(max_total=st.floats(min_value=1, max_value=1500), limit=st.integers(1, 6),
       bought=st.sets(st.sampled_from(["makeup", "skincare", "fashion", "electronics"]), max_size=3))
def test_bundles_never_break_the_price_cap(max_total, limit, bought):
    profile = Profile(key="c:p", category_items={c: 1 for c in bought}, cart=[CartItem(sku="M1")])
    got = recommend("bundles", {"max_total": max_total, "limit": limit, "min_items": 1}, profile, MAKEUP_SALES)
    assert total(got) <= max_total
    assert len(got) <= limit
    assert not {CATALOG.get(s).category for s in got} & bought
    assert "M1" not in got and "M5" not in got  # in the cart; out of stock


# -- user_based ----------------------------------------------------------------------------

HISTORY = ProductStats.build([
    order("c1", 100, ("S1", 1), ("S2", 1)),
    order("c2", 80, ("S1", 1), ("M3", 1)),
    order("c3", 70, ("S1", 1)), order("c3", 60, ("M3", 1)),
    order("c4", 50, ("S2", 1), ("F1", 1)),
    order("c5", 20, ("E2", 2)), order("c6", 30, ("E1", 1)),
], NOW)


def test_user_based_items_co_purchased_with_the_visitors_history():
    lapsed_vip = Profile(key="c:monica", orders=5, spend=2400, purchased_skus=["S1"], category_items={"skincare": 5})
    # M3 was bought with S1 by two customers, S2 by one; S1 itself is never offered again.
    assert recommend("user_based", profile=lapsed_vip, stats=HISTORY) == ["M3", "S2"]
    long_ago = msgspec.structs.replace(lapsed_vip, purchased_at=(NOW.timestamp() - 400 * 86400,))
    assert recommend("user_based", profile=long_ago, stats=HISTORY) == ["M3", "S2"]  # however old


def test_user_based_falls_back_to_bestsellers_of_the_visitors_categories():
    tech_buyer = Profile(key="c:t", orders=1, purchased_skus=["E4"], category_items={"electronics": 1})
    assert recommend("user_based", profile=tech_buyer, stats=HISTORY) == ["E2", "E1"]
    assert recommend("user_based", {"exclude_purchased": False}, profile=tech_buyer, stats=HISTORY) == ["E2", "E1"]


def test_user_based_for_an_unknown_visitor_is_empty_then_falls_back():
    assert recommend("user_based", stats=HISTORY) == []
    # The fallback runs with its own defaults: bestsellers of the last 30 days.
    assert recommend("user_based", {"fallback": "bestsellers", "limit": 3}, stats=HISTORY) == ["E2", "E1"]


# -- new_vs_returning ----------------------------------------------------------------------

VIEWS = ProductStats.build([
    {"type": "product_view", "visitor_id": "x", "sku": "F2", "at": NOW - timedelta(hours=1)},
    {"type": "product_view", "visitor_id": "x", "sku": "F4", "at": NOW - timedelta(minutes=50)},
    order("c1", 2, ("E2", 5)), order("c2", 3, ("S4", 2)),
], NOW)


@pytest.mark.parametrize(("profile", "document", "expected"), [
    (Profile(key="v:first", visits=1), {}, ["E2", "S4"]),
    (Profile(key="v:back", visits=3, viewed_skus=["F2"]), {}, ["F4"]),
    (Profile(key="c:imported", orders=2, viewed_skus=["F2"]), {}, ["F4"]),
    (Profile(key="v:doc", viewed_skus=["F2"]), {"visitor": {"is_returning": True}}, ["F4"]),
])
def test_new_vs_returning(profile, document, expected):
    assert recommend("new_vs_returning", profile=profile, stats=VIEWS, document=document) == expected


def test_new_vs_returning_strategies_are_params_and_common_params_pass_on():
    first = Profile(key="v:first", visits=1)
    assert recommend("new_vs_returning", {"new": "new_arrivals", "limit": 2}, first) == ["E2", "F3"]
    assert recommend("new_vs_returning", {"new": "markdowns", "categories": ["fashion"]}, first) == ["F4", "F2"]


def test_new_vs_returning_rejects_unknown_and_cyclic_strategies():
    nvr = STRATEGIES["new_vs_returning"]
    with pytest.raises(ConfigError) as info:
        validate_params(nvr, {"returning": "viewed_basd"}, strategies=STRATEGIES)
    assert (info.value.path, info.value.suggestion) == ("$.returning", "viewed_based")
    with pytest.raises(ConfigError, match="cycle"):
        validate_params(nvr, {"new": "new_vs_returning"}, strategies=STRATEGIES)


# -- discount_affinity ---------------------------------------------------------------------

SEEKER = Profile(key="c:jessie", orders=4, discounted_orders=3)
FULL_PRICE = Profile(key="c:fp", orders=4, discounted_orders=0)
MARKDOWNS = ["E3", "E1", "F4"]
NEW_ARRIVALS = ["E2", "F3", "S4"]


@pytest.mark.parametrize(("profile", "params", "document", "expected"), [
    (SEEKER, {}, {}, MARKDOWNS),
    (FULL_PRICE, {}, {}, NEW_ARRIVALS),
    (Profile(key="v:none"), {}, {}, NEW_ARRIVALS),                      # no orders: never high
    (SEEKER, {"threshold": 0.8}, {}, NEW_ARRIVALS),                     # 0.75 share < 0.8
    (Profile(key="c:b", orders=10, discounted_orders=3), {}, {}, MARKDOWNS),  # 0.3: default threshold
    (Profile(key="c:b", orders=10, discounted_orders=3), {}, {"discount": {"share": 0.3, "band": "mid"}},
     NEW_ARRIVALS),                                                     # the document's band decides
    (FULL_PRICE, {"threshold": 0.5}, {"discount": {"share": 0.6, "band": "high"}}, MARKDOWNS),
])
def test_discount_affinity(profile, params, document, expected):
    assert recommend("discount_affinity", {"limit": 3, **params}, profile, document=document) == expected


def test_discount_affinity_strategies_are_params():
    got = recommend("discount_affinity", {"high": "bestsellers", "low": "markdowns", "limit": 2}, FULL_PRICE)
    assert got == ["E3", "E1"]
    with pytest.raises(ConfigError) as info:
        validate_params(STRATEGIES["discount_affinity"], {"threshold": 1.5})
    assert info.value.path == "$.threshold"
