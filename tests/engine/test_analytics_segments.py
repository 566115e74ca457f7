"""Segment analytics: daily sizes (kept in the store's meta) and pairwise overlap."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from segmint.engine.analytics import load_snapshot, segment_history, snapshot_segments
from segmint.engine.analytics.segments import MAX_HISTORY_DAYS, HISTORY_META
from segmint.engine.document import profile_document
from segmint.engine.events import Order, OrderItem, PageView
from segmint.engine.filters import compile_segments
from segmint.engine.stores import MemoryStore

UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _runtime(store):
    segments = compile_segments({
        "buyers": {"orders.count": {"$gte": 1}},
        "big": {"spend.total": {"$gte": 100}},
        "repeat": {"orders.count": {"$gte": 2}},
    })
    return SimpleNamespace(store=store, state=SimpleNamespace(segments=segments),
                           document_builder=lambda now, only=None: lambda profile: profile_document(profile, now, only=only))


def _order(customer, n, price):
    return Order(order_id=f"{customer}-{n}", customer_id=customer, at=T0 + timedelta(hours=n),
                 items=[OrderItem(sku="s", price=price)])


def _store():
    store = MemoryStore(clock=lambda: T0)
    store.append([
        _order("a", 1, 150.0), _order("a", 2, 10.0),   # buyers, big, repeat
        _order("b", 1, 120.0),                          # buyers, big
        _order("c", 1, 5.0),                            # buyers
        PageView(visitor_id="v1", at=T0),               # none
    ])
    return store


def test_sizes_and_overlap_from_one_pass():
    store = _store()
    snap = snapshot_segments(_runtime(store), T0 + timedelta(days=1))
    assert snap.profiles == 4
    assert snap.sizes == {"big": 2, "buyers": 3, "repeat": 1}
    assert snap.overlap == {("big", "buyers"): 2, ("big", "repeat"): 1, ("buyers", "repeat"): 1}


def test_daily_snapshots_build_a_history_and_keep_the_overlap():
    store = _store()
    runtime = _runtime(store)
    snapshot_segments(runtime, T0 + timedelta(days=1))
    store.append([_order("d", 1, 500.0)])
    snapshot_segments(runtime, T0 + timedelta(days=2))
    snapshot_segments(runtime, T0 + timedelta(days=2, hours=5))  # same day again: replaced
    history = segment_history(store)
    assert [h.day.isoformat() for h in history] == ["2026-03-02", "2026-03-03"]
    assert [h.sizes["big"] for h in history] == [2, 3]
    full = load_snapshot(store, history[-1].day)
    assert full is not None and full.overlap[("big", "buyers")] == 3
    assert load_snapshot(store, T0.date()) is None


def test_history_is_bounded():
    store = _store()
    runtime = _runtime(store)
    for day in range(MAX_HISTORY_DAYS + 5):
        snapshot_segments(runtime, T0 + timedelta(days=day), store_result=True)
    history = segment_history(store)
    assert len(history) == MAX_HISTORY_DAYS
    assert history[-1].day == (T0 + timedelta(days=MAX_HISTORY_DAYS + 4)).date()
    assert store.get_meta(HISTORY_META) is not None


def test_a_dry_snapshot_stores_nothing():
    store = _store()
    snapshot_segments(_runtime(store), T0, store_result=False)
    assert segment_history(store) == []
