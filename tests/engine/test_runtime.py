"""The assembled runtime: profiles, documents, decisions, rendering, events, explain."""

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from segmint.engine.clock import FrozenClock
from segmint.engine.config.load import parse_config
from segmint.engine.errors import EventError
from segmint.engine.events import PageView
from segmint.engine.hooks import hookimpl
from segmint.engine.runtime import Segmint
from segmint.engine.stores import MemoryStore

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"
NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)

CONFIG = f"""
[store]
path = ":memory:"

[catalog]
path = "{CATALOG.as_posix()}"

[segments.buyers]
filter = {{ "orders.count" = {{ "$gte" = 1 }} }}

[segments.big]
filter = {{ "$and" = [{{ "$segment" = "buyers" }}, {{ "spend.total" = {{ "$gte" = 500 }} }}] }}

[[campaigns]]
id = "big-spenders"
segment = "big"
slots = ["home", "pdp"]
strategy = "markdowns"
params = {{ limit = 3 }}
title = "For <you> & yours"
coupon = {{ code = "BIG10", percent = 10 }}
priority = 1

[[campaigns]]
id = "everyone"
slots = ["home"]
strategy = "new_arrivals"
params = {{ limit = 2 }}
"""


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def rt(tmp_path, clock):
    path = tmp_path / "segmint.toml"
    path.write_text(textwrap.dedent(CONFIG))
    runtime = Segmint.from_config(path, clock=clock, watch=False)
    yield runtime
    runtime.close()


def big_order(customer="c1", days=3, price=420.0):
    return {"type": "order", "customer_id": customer, "order_id": f"{customer}-{days}-{price}",
            "at": (NOW - timedelta(days=days)).isoformat(),
            "items": [{"sku": "FA-OUT-001", "category": "outerwear", "quantity": 2, "price": price}]}


def test_record_then_profile_document_segments_and_decision(rt):
    result = rt.record([big_order()])
    assert result.stored == 1 and "c:c1" in result.changed_keys
    profile = rt.profile(customer_id="c1")
    assert profile.spend == 840.0
    assert rt.document(profile)["days_since_last_purchase"] == pytest.approx(3.0)
    assert rt.segments(profile) == {"buyers": True, "big": True}
    decision = rt.decide(profile, ["home", "pdp"], visitor_id="v1")
    assert decision.visitor_key == "v1" and decision.now == NOW
    assert decision.slots["home"].campaign == "big-spenders"
    assert decision.slots["pdp"].campaign == "big-spenders"
    assert not set(decision.slots["home"].skus) & set(decision.slots["pdp"].skus)
    assert decision.segments == ["big"]  # those campaigns asked about (buyers is inside big)
    stranger = rt.decide(rt.profile(visitor_id="v2"), ["home"])
    assert stranger.visitor_key == "v:v2"  # no visitor id given: the profile key buckets variants
    assert stranger.slots["home"].campaign == "everyone"


def test_record_stamps_events_without_time_with_the_runtime_clock(rt, clock):
    clock.advance(days=1)
    rt.record([{"type": "page_view", "visitor_id": "v1", "path": "/"}])
    assert rt.profile(visitor_id="v1").last_seen == (NOW + timedelta(days=1)).timestamp()


def test_record_rejects_invalid_events_with_their_index(rt):
    with pytest.raises(EventError) as info:
        rt.record([{"type": "page_view", "visitor_id": "v1"}, {"type": "order", "customer_id": "c"}])
    assert info.value.index == 1
    assert rt.profile(visitor_id="v1").page_views == 0  # nothing stored


def test_track_queues_for_the_writer(rt):
    assert rt.track([PageView(visitor_id="v9", path="/")]) is True
    assert rt.writer.flush(5)
    assert rt.profile(visitor_id="v9").page_views == 1


def test_render_escapes_and_skips_empty_decisions(rt):
    rt.record([big_order()])
    decision = rt.decide(rt.profile(customer_id="c1"), ["home", "nowhere"])
    html = rt.render(decision.slots["home"])
    assert "For &lt;you&gt; &amp; yours" in html and "BIG10" in html
    assert 'data-segmint-campaign="big-spenders"' in html
    assert rt.render(decision.slots["nowhere"]) == ""


def test_explain_gives_segment_explanations_and_the_decision_for_every_slot(rt):
    rt.record([big_order(price=100.0)])
    explained = rt.explain(rt.profile(customer_id="c1"))
    assert explained.segments["buyers"].matched and not explained.segments["big"].matched
    assert "spend.total" in str(explained.segments["big"])
    assert set(explained.decision.slots) == {"home", "pdp"}
    assert explained.decision.slots["home"].reasons == ["campaign big-spenders: visitor is not in segment big"]
    data = explained.to_dict()
    assert data["decision"]["slots"]["home"]["campaign"] == "everyone"
    assert data["document"]["spend"]["total"] == 200.0
    only = rt.explain(rt.profile(customer_id="c1"), slot="pdp")
    assert list(only.decision.slots) == ["pdp"]


def test_refresh_stats_builds_bestsellers_and_rfm_from_the_store(rt):
    rt.record([big_order("c1"), big_order("c2", days=40, price=50.0)])
    stats = rt.refresh_stats()
    assert stats.bestsellers(30) == ["FA-OUT-001"]
    assert "rfm" in rt.document(rt.profile(customer_id="c1"))


def test_new_orders_trigger_a_stats_rebuild_only_when_due(rt):
    rt.batch.min_gap = rt.batch.cost_factor = 0.0  # no waiting between rebuilds in the test
    before = rt.stats
    assert not rt.refresh_stats_if_due()  # nothing new: the last build stands
    assert rt.stats is before and before.bestsellers(30) == []
    rt.track([{"type": "page_view", "visitor_id": "v1", "path": "/"}])
    rt.writer.flush(timeout=5)
    assert not rt.refresh_stats_if_due()  # page views alone do not change bestsellers
    rt.record([big_order("c1")])
    assert rt.refresh_stats_if_due()
    assert rt.stats.bestsellers(30) == ["FA-OUT-001"]
    assert not rt.refresh_stats_if_due()


def test_from_a_config_object_with_a_given_store(clock):
    config = parse_config(textwrap.dedent(CONFIG))
    store = MemoryStore(clock=clock)
    with Segmint.from_config(config, store=store, clock=clock, watch=True) as runtime:
        assert runtime.store is store
        assert runtime.reload_if_changed() is False  # nothing to watch
        runtime.record([big_order()])
    assert store.load(customer_id="c1") is not None  # the caller's store is left open


def test_document_builder_gives_the_documents_document_gives(rt):
    """The scan helper settles now, RFM and the enrich check once; the documents are the same,
    with and without a plugin that enriches them."""
    rt.record([big_order("c1", days=3), big_order("c2", days=60, price=50.0)])
    profiles = [rt.profile(customer_id=c) for c in ("c1", "c2", "nobody")]
    for only in (None, frozenset({"spend", "days_since_last_purchase"}), frozenset({"orders"})):
        build = rt.document_builder(NOW, only=only)
        assert [build(p) for p in profiles] == [rt.document(p, NOW, only=only) for p in profiles]

    class Enricher:
        @hookimpl
        def segmint_enrich_document(self, profile, document, now):
            document["extra"] = {"seen_at": now}

    rt.state.pm.register(Enricher())
    build = rt.document_builder(NOW)
    assert build(profiles[0])["extra"] == {"seen_at": NOW} == rt.document(profiles[0], NOW)["extra"]


def test_the_compactor_measures_events_waiting_and_seconds_behind(rt, clock, monkeypatch):
    rt.compact()
    assert rt.compaction == {"events": 0, "seconds": 0.0}
    monkeypatch.setattr(rt.store, "compact", lambda **kwargs: None)  # another process holds the lock
    rt.record([big_order()])
    rt.compact()  # first look at the waiting event
    clock.advance(seconds=3)
    rt.compact()
    assert rt.compaction == {"events": 1, "seconds": 3.0}
    monkeypatch.undo()
    clock.advance(seconds=1)
    rt.compact()
    assert rt.compaction == {"events": 0, "seconds": 0.0}
    assert rt.profile(customer_id="c1").orders == 1


def test_segmint_has_everything_the_runtime_protocol_names(rt):
    # The middleware and the CLI type their runtime as ``Runtime``; no type checker runs in
    # CI, so this keeps the Protocol and the one implementation from drifting apart.
    import inspect

    from segmint.engine.runtime import Runtime

    members = {name for name in vars(Runtime) if not name.startswith("_")} | set(Runtime.__annotations__)
    assert {"personalize", "decide", "render", "track", "record", "decides_on_loop", "identifies_on_loop"} <= members
    missing = sorted(name for name in members if not hasattr(rt, name))
    assert not missing, missing
    for name in members:
        declared = vars(Runtime).get(name)
        if inspect.isfunction(declared):
            assert list(inspect.signature(declared).parameters) == \
                ["self", *inspect.signature(getattr(rt, name)).parameters], name
