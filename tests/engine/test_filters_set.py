"""``FilterSet``: every segment of a config in one generated function, same answers as each filter."""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from segmint.engine.errors import FilterError
from segmint.engine.filters import FilterSet, compile_filter, compile_segments
from segmint.engine.profile import Profile

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_config_segments_agree_with_each_filter_on_profiles_and_documents():
    from segmint.engine.catalog import load_catalog_file
    from segmint.engine.runtime import Segmint
    from segmint.engine.stores import MemoryStore
    from segmint.middleware.demo.seed import generate_history

    events, _ = generate_history(load_catalog_file(ROOT / "examples" / "catalog.json"), NOW, seed=3)
    store = MemoryStore(clock=lambda: NOW)
    store.append(events)
    rt = Segmint.from_config(ROOT / "examples" / "segmint.toml", store=store, clock=lambda: NOW, watch=False)
    try:
        segments = rt.state.segments
        together = FilterSet(segments)
        assert together.names == tuple(segments) and len(together) == len(segments) > 10
        seen = set()
        for profile in store.iter_profiles():
            document = rt.document(profile, NOW)
            expected = [bool(f.matches(document, NOW)) for f in segments.values()]
            assert together.members(document, NOW) == expected
            # a Profile builds its own document (without the shop's RFM thresholds)
            assert together.members(profile, NOW) == [bool(f.matches(profile, NOW)) for f in segments.values()]
            assert together.matching(document, NOW) == [n for n, hit in zip(segments, expected) if hit]
            seen.update(n for n, hit in zip(segments, expected) if hit)
        assert len(seen) >= len(segments) - 2  # the comparison is not over empty segments
    finally:
        rt.close()


def test_references_relative_dates_and_nested_logic():
    segments = compile_segments({
        "buyer": {"orders.count": {"$gte": 1}},
        "recent": {"orders.last_at": {"$gte": "now-30d"}},
        "vip": {"$and": [{"$segment": "buyer"}, {"$or": [{"spend.total": {"$gte": 500}},
                                                          {"$and": [{"$segment": "recent"},
                                                                    {"spend.total": {"$gte": 100}}]}]}]},
        "not_vip": {"$nor": [{"$segment": "vip"}]},
    })
    together = FilterSet(segments)
    docs = [
        {"orders": {"count": 2, "last_at": datetime(2026, 2, 20, tzinfo=UTC)}, "spend": {"total": 150.0}},
        {"orders": {"count": 2, "last_at": datetime(2025, 2, 20, tzinfo=UTC)}, "spend": {"total": 150.0}},
        {"orders": {"count": 1, "last_at": datetime(2025, 2, 20, tzinfo=UTC)}, "spend": {"total": 900}},
        {"orders": [{"count": 3}], "spend": {"total": "lots"}},
        {},
    ]
    for doc in docs:
        for now in (NOW, datetime(2026, 2, 25, tzinfo=UTC), datetime(2026, 3, 1, 12), NOW.timestamp()):
            assert together.members(doc, now) == [bool(f.matches(doc, now)) for f in segments.values()]
    assert together.members(docs[0], NOW) == [True, True, True, False]
    assert together.members(docs[1], NOW) == [True, False, False, True]
    assert together.fields == {"orders", "spend"}


def test_plugin_operators_and_an_empty_set():
    def divisible(operand, path):
        return lambda value: isinstance(value, int) and value % operand == 0

    f = compile_filter({"orders.count": {"$divisible": 3}}, operators={"$divisible": divisible})
    together = FilterSet({"thirds": f})
    assert together.members({"orders": {"count": 6}}) == [True]
    assert together.members({"orders": {"count": 5}}) == [False]
    assert FilterSet({}).members({}) == []


def test_a_bad_document_is_a_clear_error():
    with pytest.raises(TypeError, match="mapping"):
        FilterSet({"a": compile_filter({"x": 1})}).members(42)
    assert isinstance(Profile(key="v:x"), Profile)  # a Profile is accepted (see above)
    with pytest.raises(FilterError):
        compile_segments({"a": {"$segment": "missing"}})
