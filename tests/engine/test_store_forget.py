"""Erase and export one person (``PersonalDataStore``), on every store (memory, SQLite, Redis):
after ``forget`` no read, scan, report or export finds a trace; another person is untouched."""

import contextlib
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from segmint.engine.analytics import build_report
from segmint.engine.analytics import checkpoint as checkpoint_module
from segmint.engine.analytics.checkpoint import ReportCheckpoint
from segmint.engine.errors import StoreError
from segmint.engine.events import decode_events, Identify, Impression, Order, OrderItem, PageView
from segmint.engine.privacy import export_person
from segmint.engine.profiles import Profiles
from segmint.engine.stores import MemoryStore, PersonalDataStore, SQLiteStore
from segmint.engine.stores.base import REPORT_STATE_META_PREFIX

UTC = timezone.utc
T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
PERSON = {"c:ann", "v:ann-phone", "v:ann-laptop"}


def at(hours):
    return T0 + timedelta(hours=hours)


def order(order_id, hours, **who):
    return Order(order_id=order_id, at=at(hours), items=[OrderItem(sku="s1", price=20.0)], **who)


def ann():
    """Ann browses anonymously on two devices, logs in on both, is shown a widget and buys."""
    return [
        PageView(path="/", visitor_id="ann-phone", at=at(0)),
        Impression(campaign="winback", variant="B", skus=["s1"], visitor_id="ann-phone", at=at(1)),
        Identify(visitor_id="ann-phone", customer_id="ann", at=at(2)),
        PageView(path="/p", visitor_id="ann-laptop", at=at(3)),
        Identify(visitor_id="ann-laptop", customer_id="ann", at=at(4)),
        Impression(campaign="winback", variant="B", skus=["s1"], visitor_id="ann-laptop", at=at(5)),
        order("ann-1", 6, customer_id="ann"),
        PageView(path="/thanks", visitor_id="ann-phone", at=at(7)),  # after the link: into c:ann
    ]


def others():
    """Bob (a customer with a linked visitor) and an anonymous visitor, on the same campaign."""
    return [
        Impression(campaign="winback", variant="A", skus=["s1"], visitor_id="bob-phone", at=at(1)),
        Identify(visitor_id="bob-phone", customer_id="bob", at=at(2)),
        order("bob-1", 3, customer_id="bob"),
        Impression(campaign="winback", variant="B", skus=["s1"], visitor_id="anon", at=at(4)),
        PageView(path="/", visitor_id="anon", at=at(5)),
    ]


@pytest.fixture(params=["memory", "sqlite-file", "sqlite-memory", pytest.param("redis", marks=pytest.mark.server)])
def make_store(request, tmp_path):
    """A factory of empty stores of one kind (a reference store is built for comparisons)."""
    opened = []

    def make(name="profiles"):
        clock = lambda: T0  # noqa: E731
        if request.param == "memory":
            s = MemoryStore(clock=clock)
        elif request.param == "sqlite-file":
            s = SQLiteStore(str(tmp_path / f"{name}.db"), clock=clock)
        elif request.param == "sqlite-memory":
            s = SQLiteStore(":memory:", clock=clock)
        else:
            from segmint.engine.stores.redis import RedisStore

            server = request.getfixturevalue("redis_server")
            s = RedisStore(server.url + f"?prefix={name}:", clock=clock)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store):
    s = make_store()
    s.append(ann() + others())
    return s


def keys_of(events):
    return [(type(e).__name__, e.visitor_id, e.customer_id, e.at) for e in events]


def snapshot(store, who):
    """What the store holds about the other people: profiles by key, their events."""
    profiles = {p.key: msgspec.to_builtins(p) for p in store.iter_profiles() if p.key not in PERSON}
    events = [e for e in store.iter_events() if e.customer_id not in ("ann",)
              and e.visitor_id not in ("ann-phone", "ann-laptop")]
    return profiles, keys_of(events)


def test_the_built_in_stores_have_the_capability(store):
    assert isinstance(store, PersonalDataStore)


def test_export_prints_the_profile_links_and_events_as_json(store):
    data = store.export(customer_id="ann")
    assert data.customer_id == "ann"
    assert data.visitor_ids == ["ann-laptop", "ann-phone"]
    assert [p.key for p in data.profiles] == ["c:ann"]
    assert data.profiles[0].orders == 1 and data.profiles[0].page_views == 3
    assert data.links == {"ann-phone": "ann", "ann-laptop": "ann"}
    assert keys_of(data.events) == keys_of(ann())  # the visitor's events from before the login too
    decoded = msgspec.json.decode(msgspec.json.encode(data))
    # the events in the public form the intake reads back
    assert decoded["events"][0] == {"type": "page_view", "visitor_id": "ann-phone", "at": "2026-02-01T09:00:00Z"}
    assert decode_events(msgspec.json.encode(decoded["events"]))[0] == ann()
    assert decoded["profiles"][0]["key"] == "c:ann"
    assert decoded["report_states"] == []


def test_forget_a_customer_leaves_no_trace(store):
    before = snapshot(store, PERSON)
    store.set_meta("rfm-thresholds", b"kept")
    store.set_meta(REPORT_STATE_META_PREFIX + "0123", b"state with ann in it")
    store.set_meta(REPORT_STATE_META_PREFIX + "0123/9abc", b"one of its parts, with ann in it")
    assert store.export(customer_id="ann").report_states == [REPORT_STATE_META_PREFIX + "0123"]
    gone = store.forget(customer_id="ann")
    assert gone.counts() == {"customer_id": "ann", "visitor_ids": ["ann-laptop", "ann-phone"], "profiles": 1,
                             "links": 2, "events": len(ann()), "report_states": 1}
    assert store.meta_names(REPORT_STATE_META_PREFIX) == [] and store.get_meta("rfm-thresholds") == b"kept"
    assert gone.keys == PERSON
    assert store.load(customer_id="ann") is None
    assert store.load(visitor_id="ann-phone") is None and store.load(visitor_id="ann-laptop") is None
    assert not PERSON & {p.key for p in store.iter_profiles()}
    assert store.count_profiles() == len(before[0])
    assert not any(e.customer_id == "ann" or e.visitor_id in ("ann-phone", "ann-laptop")
                   for e in store.iter_events())
    again = store.export(customer_id="ann")
    assert (again.profiles, again.links, again.events) == ([], {}, [])
    assert store.export(visitor_id="ann-phone").visitor_ids == ["ann-phone"]  # unlinked now: nobody
    assert snapshot(store, PERSON) == before  # Bob and the anonymous visitor are untouched
    assert store.load(customer_id="bob").orders == 1 and store.load(visitor_id="bob-phone").key == "c:bob"
    assert store.get_meta(REPORT_STATE_META_PREFIX + "0123") is None
    assert store.get_meta("rfm-thresholds") == b"kept"


def test_forget_by_an_identified_visitor_forgets_the_whole_person(store):
    gone = store.forget(visitor_id="ann-laptop")
    assert gone.customer_id == "ann" and gone.keys == PERSON
    assert store.load(customer_id="ann") is None and store.load(visitor_id="ann-phone") is None


def test_forget_an_anonymous_visitor(store):
    before = {p.key for p in store.iter_profiles()}
    gone = store.forget(visitor_id="anon")
    assert gone.counts()["events"] == 2 and gone.keys == {"v:anon"} and gone.customer_id is None
    assert store.load(visitor_id="anon") is None
    assert {p.key for p in store.iter_profiles()} == before - {"v:anon"}
    assert not any(e.visitor_id == "anon" for e in store.iter_events())


def test_forget_someone_unknown_removes_nothing(store):
    count = len(list(store.iter_events()))
    gone = store.forget(customer_id="nobody")
    assert (gone.profiles, gone.links, gone.events) == ([], {}, [])
    assert len(list(store.iter_events())) == count


def test_one_id_is_needed(store):
    with pytest.raises(ValueError, match="exactly one"):
        store.forget()
    with pytest.raises(ValueError, match="exactly one"):
        store.export(customer_id="ann", visitor_id="ann-phone")


def test_the_person_can_come_back_as_new_events(store):
    store.forget(customer_id="ann")
    store.append([PageView(path="/", visitor_id="ann-phone", at=at(9))])
    profile = store.load(visitor_id="ann-phone")
    assert profile.key == "v:ann-phone" and profile.page_views == 1  # nothing of the old Ann


def test_a_report_after_forget_counts_none_of_them_and_a_resumed_one_neither(make_store, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "MIN_EVENTS", 1)
    store, reference = make_store("shop"), make_store("reference")
    store.append(ann() + others())
    reference.append(others())
    now = at(24 * 3)

    def report(s, **options):
        data = build_report(s, now=now, **options).to_dict()
        data.pop("generated_at")
        return data

    with_ann = report(store)
    saved = ReportCheckpoint(store, window_days=7.0, campaign=None, since=None)
    [state] = export_person(store, customer_id="ann")["report_states"]  # the state holds Ann
    assert state["name"] == saved.meta_name
    assert list(state["people"]) == ["c:ann"] and state["links"] == {"ann-phone": "c:ann", "ann-laptop": "c:ann"}
    assert [(r["campaign"], r["variant"], r["skus"]) for r in state["people"]["c:ann"]["runs"]] == [
        ("winback", "B", {"s1": at(5).timestamp()})]
    assert list(state["history"]) == ["c:ann"] and state["history"]["c:ann"]["orders"] == 1  # CUPED's history
    [bob] = export_person(store, customer_id="bob")["report_states"]
    assert list(bob["people"]) == ["c:bob"] and bob["links"] == {"bob-phone": "c:bob"}
    assert with_ann != report(reference)
    store.forget(customer_id="ann")
    assert store.get_meta(saved.meta_name) is None
    assert report(store) == report(reference)  # read in full, saved anew without Ann
    assert store.get_meta(saved.meta_name) is not None
    assert report(store) == report(reference)  # resumed from that state
    state_blobs = [store.get_meta(n) for n in store.meta_names(saved.meta_name)]
    assert len(state_blobs) > 1 and not any(b"ann" in blob for blob in state_blobs)  # the head and its parts
    assert export_person(store, customer_id="ann") == {"customer_id": "ann", "visitor_ids": [], "profiles": [],
                                                       "links": {}, "events": [], "report_states": []}


def test_the_cache_drops_the_person(store):
    profiles = Profiles(store)
    assert profiles.get(visitor_id="ann-phone").orders == 1  # cached under v:ann-phone (alias)
    assert profiles.get(customer_id="ann").orders == 1
    profiles.forget(customer_id="ann")
    assert profiles.get(visitor_id="ann-phone").orders == 0
    assert profiles.get(customer_id="ann").orders == 0
    assert profiles.get(customer_id="bob").orders == 1


def test_a_store_without_the_capability_is_a_clear_error():
    class Minimal:  # a third-party store with only the ProfileStore methods
        url = "custom://"

    with pytest.raises(StoreError, match="cannot export or erase one person"):
        Profiles(Minimal()).forget(customer_id="ann")


@pytest.mark.server
def test_another_server_drops_its_cached_copy_through_the_invalidation_channel(redis_server):
    import threading

    from segmint.engine.cache_invalidation import wire_invalidation
    from segmint.engine.stores.redis import RedisStore

    here, there = RedisStore(redis_server.url, clock=lambda: T0), RedisStore(redis_server.url, clock=lambda: T0)
    try:
        here.append(ann() + others())
        profiles = Profiles(there, ttl=3600)  # only the invalidation can make this cache fresh
        assert wire_invalidation(there, profiles)
        dropped = threading.Event()
        there.on_invalidate(lambda keys: keys and PERSON <= keys and dropped.set())
        assert there._listener.subscribed.wait(5)
        assert profiles.get(visitor_id="ann-phone").orders == 1  # cached on the other server
        here.forget(customer_id="ann")
        assert dropped.wait(10), "no invalidation arrived"
        assert profiles.get(visitor_id="ann-phone").orders == 0
        assert profiles.get(customer_id="ann").orders == 0
    finally:
        here.close()
        there.close()


@pytest.mark.parametrize("late", [
    PageView(path="/late", visitor_id="ann-phone", at=at(8)),       # same keys: only the tail is read
    Identify(visitor_id="anon", customer_id="ann", at=at(8)),       # a new visitor: the whole log again
])
def test_sqlite_events_logged_while_the_log_is_searched_are_erased_too(tmp_path, late):
    store = SQLiteStore(str(tmp_path / "profiles.db"))
    store.append(ann() + others())
    search = store._snapshot

    def search_then_append():  # the log is searched outside the write lock: an append can slip in
        with search() as conn:
            yield conn
        store.append([late])

    store._snapshot = lambda: contextlib.contextmanager(search_then_append)()
    gone = store.forget(customer_id="ann")
    assert store.load(customer_id="ann") is None
    assert not any(e.customer_id == "ann" or e.visitor_id in gone.visitor_ids for e in store.iter_events())
    assert keys_of(late for late in gone.events if late.at == at(8)) == keys_of([late])
    store.close()


@pytest.mark.server
def test_redis_prefixes_are_matched_literally(redis_server):
    from segmint.engine.stores.redis import RedisStore

    globbed, plain = (RedisStore(redis_server.url + f"?prefix={prefix}", clock=lambda: T0)
                      for prefix in ("sh*p:", "shop:"))
    try:
        globbed.append(ann())
        plain.append(ann())
        plain.set_meta(REPORT_STATE_META_PREFIX + "x", b"state")
        gone = globbed.forget(customer_id="ann")
        assert gone.visitor_ids == ["ann-laptop", "ann-phone"] and gone.report_states == []
        assert plain.load(customer_id="ann").orders == 1 and plain.get_meta(REPORT_STATE_META_PREFIX + "x")
        assert plain.forget(customer_id="ann").counts()["links"] == 2
    finally:
        globbed.close()
        plain.close()
