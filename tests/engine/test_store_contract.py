"""The ProfileStore contract, run against every store (memory, SQLite file, SQLite :memory:;
tests/engine/test_store_redis.py runs it against Redis)."""

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from segmint.engine.events import (
    CartLine, CartUpdate, Identify, Impression, Order, OrderItem, PageView, ProductView, Return,
    ReturnItem,
)
from segmint.engine.profile import Profile
from segmint.engine.stores import CompactingStore, MemoryStore, ProfileStore, SQLiteStore, open_store

UTC = timezone.utc
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def order(order_id, customer="c1", minutes=0, price=10.0, quantity=1, visitor=None):
    return Order(order_id=order_id, customer_id=customer, visitor_id=visitor, at=at(minutes),
                 items=[OrderItem(sku="s", category="k", quantity=quantity, price=price)])


@pytest.fixture(params=["memory", "sqlite-file", "sqlite-memory"])
def store(request, tmp_path):
    clock = lambda: T0  # noqa: E731
    if request.param == "memory":
        s = MemoryStore(clock=clock)
    elif request.param == "sqlite-file":
        s = SQLiteStore(str(tmp_path / "profiles.db"), clock=clock)
    else:
        s = SQLiteStore(":memory:", clock=clock)
    yield s
    s.close()


def test_implements_the_protocol(store):
    assert isinstance(store, ProfileStore)
    assert store.url


def test_optional_capabilities_are_protocols_the_store_declares(store):
    """What each built-in store can do beyond ``ProfileStore`` is a Protocol it implements
    (callers test ``isinstance``, never probe attributes): all fold in a compactor, erase and
    export a person and keep report states; SQLite also bulk-loads and appends unsynced;
    Redis tells the other servers what changed."""
    from segmint.engine.stores import base

    kind = type(store).__name__
    assert isinstance(store, base.CompactingStore) and isinstance(store, base.PersonalDataStore)
    assert isinstance(store, base.ReportStateStore)
    assert isinstance(store, base.BulkWritingStore) == isinstance(store, base.UnsyncedAppendStore) == (
        kind == "SQLiteStore")
    assert isinstance(store, base.InvalidatingStore) == (kind == "RedisStore")


def test_unknown_ids_load_none(store):
    assert store.load(visitor_id="nobody") is None
    assert store.load(customer_id="nobody") is None
    with pytest.raises(ValueError):
        store.load()


def test_append_folds_and_reports_changed_keys(store):
    result = store.append([PageView(visitor_id="v1", at=at(0)), order("o1", minutes=1)])
    assert (result.stored, result.duplicates, result.changed_keys) == (2, 0, {"v:v1", "c:c1"})
    assert store.load(visitor_id="v1").page_views == 1
    loaded = store.load(customer_id="c1")
    assert (loaded.orders, loaded.spend, loaded.key, loaded.customer_id) == (1, 10.0, "c:c1", "c1")
    assert store.count_profiles() == 2


def test_a_resent_order_is_a_duplicate_and_not_counted_twice(store):
    store.append([order("o1"), order("o2", minutes=1)])
    result = store.append([order("o1", minutes=5), order("o3", minutes=6), order("o3", minutes=7)])
    assert (result.stored, result.duplicates) == (1, 2)
    profile = store.load(customer_id="c1")
    assert profile.orders == 3 and profile.spend == 30.0
    assert sum(1 for _ in store.iter_events(types=["order"])) == 3


def test_identify_merges_links_and_deletes_the_visitor_profile(store):
    store.append([PageView(visitor_id="v1", at=at(0)),
                  ProductView(visitor_id="v1", sku="shoe", category="shoes", at=at(1)),
                  CartUpdate(visitor_id="v1", items=[CartLine(sku="shoe", price=50.0)], at=at(2))])
    store.append([order("o1", minutes=-100)])
    result = store.append([Identify(visitor_id="v1", customer_id="c1", at=at(3))])
    assert result.changed_keys == {"v:v1", "c:c1"}
    merged = store.load(customer_id="c1")
    assert (merged.page_views, merged.product_views, merged.orders) == (1, 1, 1)
    assert merged.cart_value == 50.0 and "v1" in merged.visitor_ids
    assert store.load(visitor_id="v1") == merged
    assert store.count_profiles() == 1
    # Later events with only the visitor id fold into the customer.
    result = store.append([PageView(visitor_id="v1", at=at(60))])
    assert result.changed_keys == {"c:c1"}
    assert store.load(customer_id="c1").visits == 2


def test_identify_and_later_visitor_events_in_one_batch(store):
    result = store.append([
        PageView(visitor_id="v2", at=at(0)),
        Identify(visitor_id="v2", customer_id="c2", at=at(1)),
        PageView(visitor_id="v2", at=at(45)),
    ])
    assert result.changed_keys == {"v:v2", "c:c2"}
    profile = store.load(visitor_id="v2")
    assert profile.key == "c:c2" and profile.page_views == 2 and profile.visits == 2
    assert store.count_profiles() == 1


def test_page_views_posted_late_leave_visits_right(store):
    """Issue #19: a profile is its events in event-time order, not arrival order."""
    store.append([PageView(visitor_id="v1", at=at(2 * 24 * 60))])
    result = store.append([PageView(visitor_id="v1", at=at(0)), PageView(visitor_id="v1", at=at(10))])
    assert result.changed_keys == {"v:v1"}
    profile = store.load(visitor_id="v1")
    assert (profile.visits, profile.page_views, profile.first_seen) == (2, 3, at(0).timestamp())
    assert [e.at for e in result.events["v:v1"]] == [at(0), at(10)]  # for the cache, in time


def test_identify_of_an_unknown_visitor_creates_the_link(store):
    store.append([Identify(visitor_id="v3", customer_id="c3", at=at(0))])
    store.append([Impression(visitor_id="v3", campaign="x", at=at(1))])
    assert store.load(customer_id="c3").campaigns["x"].impressions == 1


def test_events_without_at_are_stamped_with_the_store_clock(store):
    store.append([PageView(visitor_id="v1")])
    assert store.load(visitor_id="v1").first_seen == T0.timestamp()


def test_a_loaded_profile_is_a_copy(store):
    store.append([order("o1")])
    store.load(customer_id="c1").orders = 99
    assert store.load(customer_id="c1").orders == 1


def test_iter_profiles_streams_everything_in_batches(store):
    store.append([order(f"o{i}", customer=f"c{i:03d}") for i in range(25)])
    keys = [p.key for p in store.iter_profiles(batch_size=7)]
    assert sorted(keys) == [f"c:c{i:03d}" for i in range(25)]
    assert store.count_profiles() == 25


def test_iter_events_filters_by_time_and_type_in_time_order(store):
    store.append([order("o2", minutes=20), PageView(visitor_id="v", at=at(10)),
                  Return(customer_id="c1", order_id="o2", at=at(30), items=[ReturnItem(sku="s")])])
    store.append([order("o1", minutes=5), PageView(visitor_id="v", at=at(25))])
    everything = list(store.iter_events(batch_size=2))
    assert [e.at for e in everything] == sorted(e.at for e in everything) and len(everything) == 5
    assert [e.order_id for e in store.iter_events(types=["order"], batch_size=1)] == ["o1", "o2"]
    assert [e.at for e in store.iter_events(since=at(20))] == [at(20), at(25), at(30)]
    assert list(store.iter_events(types=[])) == []


def test_event_fingerprint_changes_only_when_events_before_the_time_change(store):
    """What report checkpoints rely on: the fingerprint of the events before a time changes
    when one is logged there (late), never when events after it are logged."""
    store.append([order("o1", minutes=5), PageView(visitor_id="v", at=at(10))])
    before = store.event_fingerprint(at(20).timestamp())
    assert store.event_fingerprint(at(20).timestamp()) == before
    store.append([PageView(visitor_id="v", at=at(30)), order("o3", minutes=20)])  # at 20: not before
    assert store.event_fingerprint(at(20).timestamp()) == before
    store.append([Impression(campaign="c", variant="A", visitor_id="v", at=at(15))])  # late
    late = store.event_fingerprint(at(20).timestamp())
    assert late != before
    store.append([order("o4", minutes=19)])
    logged = store.event_fingerprint(at(20).timestamp())
    assert logged != late
    store.append([PageView(visitor_id="w", at=at(12))])
    store.append([PageView(visitor_id="x", at=at(40))])
    with_w = store.event_fingerprint(at(20).timestamp())
    assert with_w != logged
    store.forget(visitor_id="w")  # erased: the events before the time are those of ``logged`` again
    assert store.event_fingerprint(at(20).timestamp()) not in (with_w, late, before)


def test_meta_round_trips_and_reserved_names_are_refused(store):
    assert store.get_meta("rfm") is None
    store.set_meta("rfm", b"\x01\x02")
    assert store.get_meta("rfm") == b"\x01\x02"
    with pytest.raises(ValueError):
        store.set_meta("schema_version", b"9")


def test_meta_is_updated_in_one_write_and_a_reserved_name_writes_nothing(store):
    store.set_meta("state/a", b"old a")
    store.set_meta("state/b", b"old b")
    store.update_meta({"state/b": b"new b", "state/c": b"c", "state": b"head"}, delete=["state/a", "state/b", "none"])
    assert [(name, store.get_meta(name)) for name in store.meta_names("state")] == [
        ("state", b"head"), ("state/b", b"new b"), ("state/c", b"c")]  # deleted first, then set
    with pytest.raises(ValueError):
        store.update_meta({"state/d": b"d", "erasures": b"0"})
    with pytest.raises(ValueError):
        store.update_meta({"state/d": b"d"}, delete=["compacted_to"])
    assert store.get_meta("state/d") is None and store.get_meta("state/c") == b"c"


def test_an_empty_append_does_nothing(store):
    assert store.append([]).stored == 0


def test_profiles_are_encoded_with_msgpack(store):
    store.append([order("o1")])
    profile = store.load(customer_id="c1")
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(profile), type=Profile) == profile


@pytest.mark.parametrize("url", ["memory://", ":memory:"])
def test_open_store_in_memory_urls(url):
    s = open_store(url)
    s.append([order("o1")])
    assert s.load(customer_id="c1").orders == 1
    s.close()


# -- compaction (the stores whose append only logs) -------------------------------------------

def compacting(store):
    if not isinstance(store, CompactingStore):
        pytest.skip("this store folds on append")
    return store


def history():
    return [PageView(visitor_id="v1", at=at(0)), order("o1", minutes=5, visitor="v1"),
            Identify(visitor_id="v1", customer_id="c1", at=at(6)), PageView(visitor_id="v1", at=at(100)),
            PageView(visitor_id="v2", at=at(3)), Impression(visitor_id="v2", campaign="x", at=at(3))]


def test_append_only_logs_and_load_folds_the_tail(store):
    compacting(store)
    for event in history():
        store.append([event])
    assert waiting(store) == 6
    before = store.load(customer_id="c1"), store.load(visitor_id="v2")
    assert before[0].page_views == 2 and before[0].orders == 1 and before[1].campaigns["x"].impressions == 1
    assert store.compact() == 6 and waiting(store) == 0
    assert (store.load(customer_id="c1"), store.load(visitor_id="v2")) == before
    assert store.load(visitor_id="v1") == before[0]
    assert store.count_profiles() == 2  # the joined visitor's row went with the refold


def test_compaction_is_idempotent_by_position_and_bounded_per_pass(store):
    compacting(store)
    store.append(history()[:3])
    assert store.compact(max_events=2) == 2  # a pass folds a bounded chunk
    partial = store.load(customer_id="c1")
    assert store.compact() == 1 and store.compact() == 0 and store.compact() == 0
    assert store.load(customer_id="c1") == partial  # folding again changed nothing
    store.append(history()[3:])
    store.catch_up()
    assert store.load(customer_id="c1").page_views == 2


def test_a_failed_pass_loses_nothing_and_the_next_one_redoes_it(store, monkeypatch):
    compacting(store)
    store.append(history())
    expected = store.load(customer_id="c1")
    from segmint.engine.stores import batch, memory, redis, sqlite

    calls = []

    def crash(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:  # the second group of the pass: the first is written, uncommitted
            raise RuntimeError("killed mid-pass")
        return batch.materialize(*args, **kwargs)

    for module in (memory, redis, sqlite):
        monkeypatch.setattr(module, "materialize", crash)
    with pytest.raises(RuntimeError):
        store.compact()
    monkeypatch.undo()
    if isinstance(store, SQLiteStore):  # rolled back: the position did not move
        assert waiting(store) == len(history())
    store.catch_up()
    assert store.load(customer_id="c1") == expected
    assert store.count_profiles() == 2


def waiting(store):
    folded, logged = store.compaction_position()
    return logged - folded
