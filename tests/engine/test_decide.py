"""decide(): per slot, the first campaign by priority that admits the visitor, with reasons."""

import json
import logging
import textwrap
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from segmint.engine.catalog import Catalog, Product
from segmint.engine.config.compile import compile_config
from segmint.engine.config.load import parse_config
from segmint.engine.decide import decide
from segmint.engine.document import profile_document
from segmint.engine.hooks import hookimpl
from segmint.engine.product_stats import ProductStats
from segmint.engine.profile import CampaignStats, Profile
from segmint.engine.strategy import StrategyParams
from segmint.engine.campaigns import assign_variant

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
PRODUCTS = [Product(sku=f"p{i}", name=f"Product {i}", url=f"/p/{i}", price=10.0 * i, category="c")
            for i in range(1, 9)]


class FixedParams(StrategyParams, kw_only=True, frozen=True, forbid_unknown_fields=True):
    skus: tuple[str, ...] = ()


class Fixed:
    """Returns the listed skus: decisions are then easy to predict."""

    name = "fixed"
    Params = FixedParams

    def recommend(self, ctx, params):
        return [ctx.catalog.get(sku) for sku in params.skus]


class Explode:
    name = "explode"
    Params = StrategyParams

    def recommend(self, ctx, params):
        raise RuntimeError("boom")


class TestPlugin:
    @hookimpl
    def segmint_register_strategies(self):
        return [Fixed(), Explode()]

    @hookimpl
    def segmint_load_catalog(self, config):
        return Catalog(PRODUCTS)


def compiled(text: str):
    config = parse_config(textwrap.dedent(text))
    return compile_config(config, extra_plugins=[TestPlugin()])


def run(state, profile=None, slots=("home",), path="/", visitor="visitor-1", now=NOW, segments=None, **kw):
    profile = profile or Profile(key="c:1", customer_id="1", orders=3, spend=500.0, last_order_at=(now - timedelta(days=60)).timestamp())
    return decide(
        state.campaigns, profile=profile, document=profile_document(profile, now), slots=slots, path=path,
        visitor_key=visitor, now=now, segments=segments if segments is not None else state.segments,
        strategies=state.strategies, catalog=state.catalog, stats=ProductStats.empty(), **kw,
    )


def campaign(id, skus=("p1", "p2"), extra=""):
    return f"""
[[campaigns]]
id = "{id}"
slots = ["home"]
strategy = "fixed"
params = {{ skus = {json.dumps(list(skus))} }}
{extra}
"""


def test_higher_priority_wins_and_ties_keep_file_order():
    state = compiled(campaign("first") + campaign("second", extra="priority = 0") + campaign("top", ["p3"], "priority = 5"))
    slot = run(state).slots["home"]
    assert (slot.campaign, slot.skus, slot.reasons) == ("top", ["p3"], [])
    state = compiled(campaign("first", ["p4"]) + campaign("second"))
    assert run(state).slots["home"].campaign == "first"


def test_segment_that_does_not_match_falls_through_with_reason():
    state = compiled("""
[segments.big]
filter = { "spend.total" = { "$gte" = 1000 } }
""" + campaign("vip", extra='segment = "big"\npriority = 1') + campaign("everyone"))
    slot = run(state).slots["home"]
    assert slot.campaign == "everyone"
    assert slot.reasons == ["campaign vip: visitor is not in segment big"]
    rich = Profile(key="c:2", spend=5000.0, orders=2)
    decision = run(state, profile=rich)
    assert decision.slots["home"].campaign == "vip"
    assert decision.slots["home"].segment == "big"
    assert decision.segments == ["big"]


def test_inline_filter():
    state = compiled(campaign("lapsed", extra='filter = { "days_since_last_purchase" = { "$gte" = 45 } }\npriority = 1')
                     + campaign("other"))
    assert run(state).slots["home"].campaign == "lapsed"
    recent = Profile(key="c:1", orders=1, spend=50.0, last_order_at=(NOW - timedelta(days=30)).timestamp())
    assert run(state, profile=recent).slots["home"].reasons == [
        "campaign lapsed: visitor does not match the campaign's filter"]


def test_pages_patterns():
    state = compiled(campaign("pdp-only", extra='pages = ["/products/*"]\npriority = 1') + campaign("anywhere"))
    assert run(state, path="/products/p1").slots["home"].campaign == "pdp-only"
    slot = run(state, path="/cart").slots["home"]
    assert slot.campaign == "anywhere"
    assert "page '/cart' is not in pages" in slot.reasons[0]


def test_schedule_window():
    state = compiled(campaign("summer", extra="priority = 1\nschedule = { start = 2026-06-01T00:00:00Z, end = 2026-09-01T00:00:00Z }")
                     + campaign("always"))
    assert run(state).slots["home"].campaign == "summer"
    early = run(state, now=datetime(2026, 5, 31, tzinfo=timezone.utc)).slots["home"]
    assert early.campaign == "always" and "not started" in early.reasons[0]
    late = run(state, now=datetime(2026, 9, 1, tzinfo=timezone.utc)).slots["home"]
    assert late.campaign == "always" and "ended" in late.reasons[0]


def test_frequency_cap_counts_recent_impressions_within_the_period():
    state = compiled(campaign("capped", extra='priority = 1\nfrequency_cap = { impressions = 2, period = "1d" }')
                     + campaign("fallback"))
    ts = NOW.timestamp()
    seen_today = CampaignStats(impressions=5, recent=[ts - 3600, ts - 7200, ts - 3 * 86400])
    profile = Profile(key="v:x", campaigns={"capped": seen_today})
    slot = run(state, profile=profile).slots["home"]
    assert slot.campaign == "fallback"
    assert "frequency cap reached (2 impressions per 1d)" in slot.reasons[0]
    once_today = CampaignStats(impressions=5, recent=[ts - 3600, ts - 2 * 86400, ts - 3 * 86400])
    assert run(state, profile=Profile(key="v:x", campaigns={"capped": once_today})).slots["home"].campaign == "capped"


def visitor_in(state, campaign_id, variant_name):
    (campaign,) = [c for c in state.campaigns if c.id == campaign_id]
    for i in range(10_000):
        if assign_variant(campaign.seed, f"v{i}", campaign.variants).name == variant_name:
            return f"v{i}"
    raise AssertionError("no visitor found")


def test_variants_override_strategy_params_title_and_coupon_and_control_is_a_holdout():
    state = compiled(campaign("ab", extra="""title = "Base"
coupon = { code = "BASE10", percent = 10 }
priority = 1
variants = [
  { name = "A", weight = 1 },
  { name = "B", weight = 1, params = { skus = ["p5"] }, title = "B title", coupon = { code = "B5", amount = 5 } },
  { name = "holdout", weight = 1, control = true },
]""") + campaign("next"))
    a = run(state, visitor=visitor_in(state, "ab", "A")).slots["home"]
    assert (a.variant, a.skus, a.title, a.coupon.code, a.shown) == ("A", ["p1", "p2"], "Base", "BASE10", True)
    b = run(state, visitor=visitor_in(state, "ab", "B")).slots["home"]
    assert (b.variant, b.skus, b.title, b.coupon.code, b.coupon.amount) == ("B", ["p5"], "B title", "B5", 5)
    held = run(state, visitor=visitor_in(state, "ab", "holdout")).slots["home"]
    assert (held.campaign, held.variant, held.control, held.products, held.shown) == ("ab", "holdout", True, [], False)


def test_too_few_products_falls_through_with_reason():
    state = compiled(campaign("thin", ["p1"], "min_items = 2\npriority = 1") + campaign("thick", ["p1", "p2", "p3"], "min_items = 2"))
    slot = run(state).slots["home"]
    assert slot.campaign == "thick"
    assert slot.reasons == ["campaign thin: strategy fixed returned 1 product, fewer than min_items 2"]


def test_failing_strategy_skips_its_campaign_not_the_page(caplog):
    state = compiled("""
[[campaigns]]
id = "broken"
slots = ["home"]
strategy = "explode"
priority = 1
""" + campaign("works"))
    with caplog.at_level(logging.ERROR, logger="segmint.decide"):
        slot = run(state).slots["home"]
    assert slot.campaign == "works"
    assert slot.reasons[0].startswith("campaign broken: strategy explode failed:")
    assert "boom" in slot.reasons[0]
    assert "strategy explode" in caplog.text and "broken" in caplog.text


def test_products_shown_in_one_slot_are_not_repeated_in_the_next():
    state = compiled("""
[[campaigns]]
id = "both"
slots = ["home", "pdp"]
strategy = "fixed"
params = { skus = ["p1", "p2", "p3", "p4"], limit = 2 }
""")
    decision = run(state, slots=["home", "pdp"], exclude=["p1"])
    assert decision.slots["home"].skus == ["p2", "p3"]
    assert decision.slots["pdp"].skus == ["p4"]


def test_segment_membership_is_evaluated_once_per_decision():
    state = compiled("""
[segments.big]
filter = { "spend.total" = { "$gte" = 1 } }
""" + campaign("one", ["p1"], 'segment = "big"\nmin_items = 2\npriority = 2') + campaign("two", extra='segment = "big"\npriority = 1'))
    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def matches(self, doc, now=None):
            calls.append(1)
            return self.inner.matches(doc, now)

    decision = run(state, segments={"big": Counting(state.segments["big"])})
    assert decision.slots["home"].campaign == "two"
    assert len(calls) == 1


def test_slot_nobody_targets_says_so():
    state = compiled(campaign("home-only"))
    decision = run(state, slots=["home", "sidebar"])
    assert decision.slots["sidebar"].campaign is None
    assert decision.slots["sidebar"].reasons == ["no campaign targets slot 'sidebar'"]


def test_decision_to_dict_is_json_ready():
    state = compiled(campaign("c", extra='coupon = { code = "X", percent = 5 }'))
    decision = run(state)
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["slots"]["home"]["campaign"] == "c"
    assert data["slots"]["home"]["products"][0]["sku"] == "p1"
    assert data["slots"]["home"]["coupon"] == {"code": "X", "percent": 5.0, "amount": None}
    assert data["now"].startswith("2026-06-01T12:00:00")
    assert msgspec.json.decode(msgspec.json.encode(decision))["visitor_key"] == "visitor-1"


@pytest.mark.parametrize("slots", [["home", "home"], ("home",)])
def test_repeated_slots_are_decided_once(slots):
    state = compiled(campaign("c"))
    assert list(run(state, slots=slots).slots) == ["home"]



def test_the_document_is_built_only_when_a_rule_or_strategy_reads_it():
    from segmint.engine.decide import LazyDocument

    built: list[int] = []
    profile = Profile(key="c:1", customer_id="1", orders=3, spend=500.0)

    def lazy() -> LazyDocument:
        return LazyDocument(lambda: built.append(1) or profile_document(profile, NOW))

    def decide_with(state, document):
        return decide(state.campaigns, profile=profile, document=document, slots=("home",), path="/",
                      visitor_key="v", now=NOW, segments=state.segments, strategies=state.strategies,
                      catalog=state.catalog, stats=ProductStats.empty())

    everyone = compiled(campaign("everyone"))
    assert decide_with(everyone, lazy()).slots["home"].campaign == "everyone"
    assert built == []  # nothing read the document: it was never built
    segmented = compiled("""
[segments.buyers]
filter = { "orders.count" = { "$gte" = 1 } }
[segments.big]
filter = { "spend.total" = { "$gte" = 400 } }
""" + campaign("vip", extra='segment = "big"\npriority = 2') + campaign("buyers", extra='segment = "buyers"'))
    document = lazy()
    assert decide_with(segmented, document).slots["home"].campaign == "vip"
    assert built == [1]  # built once, for the first segment asked
    assert document["orders"]["count"] == 3 and "spend" in document and built == [1]
