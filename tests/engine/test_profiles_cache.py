"""The Profiles cache: TTL with an injected timer, invalidation on record, identify aliases."""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine.events import Identify, Order, OrderItem, PageView
from segmint.engine.profiles import Profiles
from segmint.engine.stores import MemoryStore

UTC = timezone.utc
T0 = datetime(2025, 3, 1, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class CountingStore(MemoryStore):
    def __init__(self):
        super().__init__()
        self.loads = 0

    def load(self, **ids):
        self.loads += 1
        return super().load(**ids)


def order(order_id, customer="c1"):
    return Order(order_id=order_id, customer_id=customer, at=T0, items=[OrderItem(sku="s", price=5.0)])


@pytest.fixture
def setup():
    store, clock = CountingStore(), Clock()
    return store, clock, Profiles(store, maxsize=100, ttl=60.0, timer=clock)


def test_unknown_ids_give_an_empty_profile_with_the_right_key(setup):
    _, _, profiles = setup
    assert profiles.get(visitor_id="v9").key == "v:v9"
    assert profiles.get(visitor_id="v9").visitor_ids == ("v9",)
    customer = profiles.get(customer_id="c9", visitor_id="v9")
    assert (customer.key, customer.customer_id, customer.orders) == ("c:c9", "c9", 0)
    with pytest.raises(ValueError):
        profiles.get()


def test_a_warm_get_does_not_touch_the_store_until_the_ttl_expires(setup):
    store, clock, profiles = setup
    store.append([order("o1")])
    first = profiles.get(customer_id="c1")
    assert profiles.get(customer_id="c1") is first and store.loads == 1
    clock.now = 59.0
    assert profiles.get(customer_id="c1") is first and store.loads == 1
    clock.now = 61.0
    assert profiles.get(customer_id="c1") is not first and store.loads == 2
    assert profiles.stats["hits"] == 2


def test_record_invalidates_what_it_changed_including_a_cached_unknown(setup):
    store, _, profiles = setup
    assert profiles.get(customer_id="c1").orders == 0   # unknown: cached empty profile
    other = profiles.get(customer_id="c2")
    result = profiles.record([order("o1")])
    assert result.changed_keys == {"c:c1"}
    assert profiles.get(customer_id="c1").orders == 1
    assert profiles.get(customer_id="c2") is other  # untouched entries stay


def test_a_changed_store_is_seen_after_the_ttl_when_another_process_wrote(setup):
    store, clock, profiles = setup
    assert profiles.get(customer_id="c1").orders == 0
    store.append([order("o1")])  # behind the cache's back, like another process
    assert profiles.get(customer_id="c1").orders == 0
    clock.now = 61.0
    assert profiles.get(customer_id="c1").orders == 1


def test_identify_invalidates_the_visitor_entry_and_later_customer_changes_reach_it(setup):
    _, _, profiles = setup
    profiles.record([PageView(visitor_id="v1", at=T0)])
    assert profiles.get(visitor_id="v1").key == "v:v1"
    profiles.record([Identify(visitor_id="v1", customer_id="c1", at=T0)])
    linked = profiles.get(visitor_id="v1")
    assert linked.key == "c:c1" and linked.page_views == 1
    # An order under the customer id only must refresh the entry cached under the visitor id.
    profiles.record([order("o1")])
    assert profiles.get(visitor_id="v1").orders == 1


def test_explicit_invalidate_and_clear(setup):
    store, _, profiles = setup
    profiles.get(customer_id="c1")
    profiles.invalidate(["c:c1"])
    profiles.get(customer_id="c1")
    profiles.clear()
    profiles.get(customer_id="c1")
    assert store.loads == 3


def test_the_cache_is_bounded():
    store = MemoryStore()
    profiles = Profiles(store, maxsize=10, ttl=60.0, timer=Clock())
    for i in range(50):
        profiles.get(visitor_id=f"v{i}")
    assert profiles.stats["size"] == 10


def test_a_load_racing_with_an_invalidation_is_not_cached():
    class SlowStore(MemoryStore):
        def __init__(self):
            super().__init__()
            self.loading = threading.Event()
            self.release = threading.Event()

        def load(self, **ids):
            stale = super().load(**ids)
            self.loading.set()
            self.release.wait(5)
            return stale

    store = SlowStore()
    profiles = Profiles(store, timer=Clock())
    reader = threading.Thread(target=profiles.get, kwargs={"customer_id": "c1"})
    reader.start()
    assert store.loading.wait(5)
    profiles.record([order("o1")])  # lands while the reader holds the old (empty) profile
    store.release.set()
    reader.join(5)
    assert profiles.get(customer_id="c1").orders == 1


def test_peek_answers_from_the_cache_only(setup):
    store, clock, profiles = setup
    store.append([order("o1")])
    assert profiles.peek(customer_id="c1") is None and store.loads == 0  # cold: no store read
    loaded = profiles.get(customer_id="c1")
    assert profiles.peek(customer_id="c1") is loaded and store.loads == 1
    assert profiles.peek() is None
    clock.now = 61.0  # expired entries are not returned
    assert profiles.peek(customer_id="c1") is None and store.loads == 1


def test_record_refreshes_cached_profiles_in_place_without_a_reload(setup):
    store, _, profiles = setup
    store.append([order("o1")])
    assert profiles.get(customer_id="c1").orders == 1 and store.loads == 1
    later = order("o2")
    later.at += timedelta(minutes=1)  # newer than the cached profile: folded onto it in memory
    profiles.record([later])
    refreshed = profiles.get(customer_id="c1")
    assert refreshed.orders == 2 and store.loads == 1  # served from the refreshed cache entry
    assert refreshed == store.load(customer_id="c1")


def test_record_does_not_add_profiles_that_were_not_cached(setup):
    _, _, profiles = setup
    profiles.record([order(f"o{i}", customer=f"c{i}") for i in range(20)])
    assert profiles.stats["size"] == 0


def test_cached_profiles_share_sku_strings_and_day_numbers(tmp_path):
    """Two profiles decoded from SQLite hold one copy of each sku and day number once cached
    (the memory of a large cache), and read exactly as before."""
    from segmint.engine.events import ProductView
    from segmint.engine.stores.sqlite import SQLiteStore

    store = SQLiteStore(str(tmp_path / "p.db"))
    sku = "".join(["shared", "-sku-", "1"])  # built at run time: not a constant the compiler shares
    store.append([PageView(path="/p", visitor_id=v, at=T0) for v in ("a", "b")]
                 + [ProductView(sku=sku, visitor_id=v, at=T0) for v in ("a", "b")]
                 + [Order(order_id=f"o{v}", customer_id=v, at=T0, items=[OrderItem(sku=sku, price=5.0)])
                    for v in ("c", "d")])
    uncached = [store.load(visitor_id=v) for v in ("a", "b")]
    assert uncached[0].viewed_skus[0] is not uncached[1].viewed_skus[0]  # what decoding gives
    profiles = Profiles(store, maxsize=10, ttl=60.0)
    a, b = (profiles.get(visitor_id=v) for v in ("a", "b"))
    assert a.viewed_skus == b.viewed_skus == (sku,)
    assert a.viewed_skus[0] is b.viewed_skus[0]
    day_a, day_b = (next(iter(p.daily_visits)) for p in (a, b))
    assert day_a == day_b == int(T0.timestamp() // 86400) and day_a is day_b
    c, d = (profiles.get(customer_id=v) for v in ("c", "d"))
    assert c.purchased_skus == (sku,) and c.purchased_skus[0] is d.purchased_skus[0]
    assert next(iter(c.daily_orders)) is next(iter(d.daily_orders))
    store.close()


def test_cached_profiles_leave_the_cyclic_garbage_collector_almost_nothing_to_walk(tmp_path):
    """A full collection stops the serving thread and walks every tracked object: cached
    profiles (structs with ``gc=False``, recent lists as tuples) must add next to none."""
    import gc

    from segmint.engine.events import CartLine, CartUpdate, Impression, ProductView
    from segmint.engine.stores.sqlite import SQLiteStore

    store = SQLiteStore(str(tmp_path / "p.db"))
    n = 1000
    events = []
    for i in range(n):
        who = {"customer_id": f"c{i}", "visitor_id": f"v{i}"}
        events += [ProductView(sku=f"s{i % 7}", at=T0, **who), ProductView(sku="s9", at=T0, **who),
                   Impression(campaign="summer", at=T0, **who),
                   CartUpdate(items=[CartLine(sku="s1", price=3.0)], at=T0, **who),
                   Order(order_id=f"o{i}", at=T0, items=[OrderItem(sku="s2", price=5.0)], **who)]
    store.append(events)
    profiles = Profiles(store, maxsize=n + 10, ttl=60.0)
    cached = [profiles.get(customer_id=f"c{i}") for i in range(50)]  # connections, statements
    gc.collect()
    before = len(gc.get_objects())
    cached += [profiles.get(customer_id=f"c{i}") for i in range(50, n)]
    gc.collect()
    grown = len(gc.get_objects()) - before
    assert cached[0].viewed_skus == ("s9", "s0") and cached[0].campaigns["summer"].recent
    assert not any(gc.is_tracked(o) for p in cached[:5]
                   for o in (p, p.viewed_skus, p.purchased_skus, p.visitor_ids, p.campaigns["summer"]))
    # Profiles with lists and tracked structs in a cachetools TTLCache added over 9 tracked
    # objects each here (the lists walked element by element, a linked-list node per entry).
    # What remains is bounded bookkeeping of sqlite3 (a weak reference per cursor, dropped in
    # batches of 200), not a cost per profile.
    assert grown < n // 4, grown
    store.close()


def _page_events(n, visitor="v1", start=T0):
    """A returning visitor's page views and widget impressions, a second apart."""
    from segmint.engine.events import Impression
    events = []
    for i in range(n):
        at = start + timedelta(seconds=i)
        if i % 3 == 2:
            events.append(Impression(campaign="winback", variant="A", slot="home", skus=[f"s{i % 7}"],
                                     visitor_id=visitor, at=at))
        else:
            events.append(PageView(path=f"/p/{i % 5}", visitor_id=visitor, at=at))
    return events


def test_pending_events_show_on_every_read_until_stored_and_never_count_twice(setup):
    """The writer's path in any interleaving: events noted as pending, reads, the oldest
    stored (or dropped) a batch at a time. Every read equals the store's profile with the
    still-pending events folded in; once all are stored, the store's profile itself."""
    import random

    from segmint.engine.folding import folded
    from segmint.engine.profile import Profile

    store, clock, profiles = setup
    rng = random.Random(5)
    events = _page_events(300)
    queue: list = []   # noted, not yet stored or dropped (oldest first)
    dropped: set[int] = set()
    for event in events:
        profiles.note_pending([event])
        queue.append(event)
        roll = rng.random()
        if roll < 0.25:
            batch = queue[:rng.randint(1, len(queue))]
            queue = queue[len(batch):]
            if rng.random() < 0.1:
                profiles.forget_pending(batch)  # the writer gave up on the batch
                dropped.update(id(e) for e in batch)
            else:
                profiles.record(batch, pending=True)
        elif roll < 0.3:
            clock.now += 61.0  # the cached profile expires: the next read reloads it
        if rng.random() < 0.7:
            base = store.load(visitor_id="v1") or Profile(key="v:v1", visitor_ids=("v1",))
            assert profiles.get(visitor_id="v1") == folded(base, queue)
    profiles.record(queue, pending=True)
    assert profiles.get(visitor_id="v1") == store.load(visitor_id="v1")
    assert store.load(visitor_id="v1").page_views == sum(
        1 for e in events if isinstance(e, PageView) and id(e) not in dropped)


def test_each_pending_event_is_folded_once_however_often_its_key_is_read(setup, monkeypatch):
    """A busy visitor's backlog must not make each of their pages slower: reading after every
    new event folds each event into the kept overlay once, not the whole backlog each time."""
    from segmint.engine import profiles as profiles_module

    _, _, profiles = setup
    folds = []
    real = profiles_module.folded

    def counting(profile, events):
        events = list(events)
        folds.extend(events)
        return real(profile, events)

    monkeypatch.setattr(profiles_module, "folded", counting)
    events = _page_events(400)
    for event in events:
        profiles.note_pending([event])
        profiles.get(visitor_id="v1")
    assert len(folds) == len(events)  # the whole backlog at every read would be 80,200
    # Storing the oldest half keeps the overlay (the cached profile got those events).
    profiles.record(events[:200], pending=True)
    folds.clear()
    assert profiles.get(visitor_id="v1").page_views == sum(isinstance(e, PageView) for e in events)
    assert folds == []


def test_the_writers_batches_are_logged_unsynced_and_acknowledged_ones_durably():
    """``record(..., pending=True)`` (the event writer: nobody waits for those events) uses
    the store's ``append_unsynced`` where it has one; everything else ``append``."""
    from segmint.engine.stores import UnsyncedAppendStore

    class Store(MemoryStore):
        def __init__(self):
            super().__init__()
            self.calls = []

        def append(self, events):
            self.calls.append("append")
            return super().append(events)

        def append_unsynced(self, events):
            self.calls.append("unsynced")
            return super().append(events)

    store = Store()
    assert isinstance(store, UnsyncedAppendStore) and not isinstance(MemoryStore(), UnsyncedAppendStore)
    profiles = Profiles(store)
    events = _page_events(4)
    profiles.note_pending(events[:2])
    profiles.record(events[:2], pending=True)
    profiles.record(events[2:])
    assert store.calls == ["unsynced", "append"]
    assert profiles.get(visitor_id="v1") == store.load(visitor_id="v1")


def test_a_load_racing_with_a_change_of_another_key_is_cached():
    """Under load the writer stores a batch every few milliseconds; a profile load that
    overlapped one that did not touch its key is still cached (a global check would send a
    busy visitor back to the store, and refold their pending events, on every page)."""
    store = _SlowStore()
    store.append([order("o1")])
    store.release.set()
    profiles = Profiles(store, timer=Clock())
    store.release.clear()
    reader = threading.Thread(target=profiles.get, kwargs={"customer_id": "c1"})
    reader.start()
    assert store.loading.wait(5)
    profiles.record([order("o2", customer="c2")])  # another customer's batch meanwhile
    store.release.set()
    reader.join(5)
    assert profiles.get(customer_id="c1").orders == 1 and store.loads == 1  # from the cache


class _SlowStore(MemoryStore):
    """Holds each load until released, after reading the store (the race's window)."""

    def __init__(self):
        super().__init__()
        self.loads = 0
        self.loading = threading.Event()
        self.release = threading.Event()

    def load(self, **ids):
        self.loads += 1
        found = super().load(**ids)
        self.loading.set()
        self.release.wait(5)
        return found


def _race(store, profiles, during):
    store.release.clear()
    store.loading.clear()
    reader = threading.Thread(target=profiles.get, kwargs={"visitor_id": "v1"})
    reader.start()
    assert store.loading.wait(5)
    during()
    store.release.set()
    reader.join(5)


def test_a_load_that_missed_a_batch_of_its_key_gets_it_folded_in_and_is_cached():
    """A hot visitor's profile reloaded under load: a writer batch of their newer events is
    stored while the load runs (and is not in what it read): the events are folded into the
    loaded profile, which is cached, so the next page is a cache hit with every event."""
    store = _SlowStore()
    events = _page_events(6)
    store.append(events[:3])
    profiles = Profiles(store, timer=Clock())
    _race(store, profiles, lambda: profiles.record(events[3:]))
    cached = profiles.get(visitor_id="v1")
    assert store.loads == 1 and cached == store.load(visitor_id="v1")


def test_a_load_racing_with_an_older_event_of_its_key_is_not_cached():
    """A late event stored during the load may be in what it read or not: the load is
    returned uncached and the next read loads again."""
    store = _SlowStore()
    events = _page_events(6)
    store.append(events[1:])
    store.release.set()
    profiles = Profiles(store, timer=Clock())
    _race(store, profiles, lambda: profiles.record(events[:1]))
    store.release.set()
    assert profiles.get(visitor_id="v1") == store.load(visitor_id="v1") and store.loads == 3


def test_requests_missing_the_cache_at_once_share_one_store_read():
    """A busy visitor whose entry expired: the requests that miss at the same time wait for
    the first one's load instead of each reading the store (which overflowed the pool)."""
    store = _SlowStore()
    store.append(_page_events(5))
    profiles = Profiles(store, timer=Clock())
    results = []
    readers = [threading.Thread(target=lambda: results.append(profiles.get(visitor_id="v1"))) for _ in range(4)]
    readers[0].start()
    assert store.loading.wait(5)
    for reader in readers[1:]:
        reader.start()
    time.sleep(0.05)  # the others are waiting for the first load, not loading
    assert store.loads == 1
    store.release.set()
    for reader in readers:
        reader.join(5)
    expected = store.load(visitor_id="v1")
    assert len(results) == 4 and all(r == expected for r in results)
    assert store.loads == 2  # the first load, and the check's own read just above


def test_a_failed_load_lets_the_waiting_requests_load_themselves():
    class Failing(_SlowStore):
        def load(self, **ids):
            if not self.loads:
                self.loads += 1
                self.loading.set()
                self.release.wait(5)
                raise StoreError("down for a moment")
            return super().load(**ids)

    from segmint.engine.errors import StoreError

    store = Failing()
    store.append(_page_events(2))
    profiles = Profiles(store, timer=Clock())
    outcome = {}

    def first():
        try:
            profiles.get(visitor_id="v1")
        except StoreError as exc:
            outcome["first"] = exc

    leader = threading.Thread(target=first)
    leader.start()
    assert store.loading.wait(5)
    follower = threading.Thread(target=lambda: outcome.setdefault("second", profiles.get(visitor_id="v1")))
    follower.start()
    time.sleep(0.05)
    store.release.set()
    leader.join(5)
    follower.join(5)
    assert isinstance(outcome["first"], StoreError)
    assert outcome["second"].page_views == 2
