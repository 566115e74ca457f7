"""Folding properties: order of arrival within a batch does not matter, merges lose nothing."""

import pathlib
import random
import tempfile
from datetime import datetime, timedelta, timezone

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from segmint.engine.events import (
    CartLine, CartUpdate, Click, Identify, Impression, Order, OrderItem, PageView, ProductView, Return, ReturnItem,
)
from segmint.engine.folding import VISIT_GAP, event_order, fold, folded
from segmint.engine.profile import BUCKET_DAYS, MAX_PURCHASED_SKUS, MAX_VIEWED_SKUS, Profile, purchase_times
from segmint.engine.stores import MemoryStore, SQLiteStore

UTC = timezone.utc
BASE = datetime(2025, 1, 1, tzinfo=UTC)
SKUS = [f"s{i}" for i in range(40)]
CATS = ["skincare", "makeup", "hair"]

money = st.floats(min_value=0, max_value=500, allow_nan=False).map(lambda x: round(x, 2))


@st.composite
def order_items(draw):
    items = []
    for _ in range(draw(st.integers(1, 3))):
        price = draw(money)
        items.append(OrderItem(sku=draw(st.sampled_from(SKUS)), category=draw(st.sampled_from(CATS)),
                               quantity=draw(st.integers(0, 4)), price=price,
                               discount=draw(st.sampled_from([0.0, round(price / 4, 2)]))))
    return items


@st.composite
def event_lists(draw, ids, offsets=st.lists(st.integers(0, 200 * 86400), min_size=1, max_size=40, unique=True)):
    offsets = draw(offsets)
    events = []
    for n, offset in enumerate(offsets):
        at = BASE + timedelta(seconds=offset)
        who = draw(st.sampled_from(ids))
        kind = draw(st.sampled_from(["page", "page", "product", "cart", "order", "return",
                                     "impression", "click"]))
        if kind == "page":
            e = PageView(at=at, path="/")
        elif kind == "product":
            e = ProductView(at=at, sku=draw(st.sampled_from(SKUS)), category=draw(st.sampled_from(CATS)))
        elif kind == "cart":
            e = CartUpdate(at=at, items=[CartLine(sku=draw(st.sampled_from(SKUS)), price=draw(money))])
        elif kind == "order":
            e = Order(at=at, order_id=f"o{n}", items=draw(order_items()),
                      coupon=draw(st.sampled_from([None, "SALE"])))
        elif kind == "return":
            e = Return(at=at, order_id="o0", items=[], amount=draw(st.sampled_from([None, 12.5])))
        else:
            cls = Impression if kind == "impression" else Click
            e = cls(at=at, campaign=draw(st.sampled_from(["a", "b"])), variant="x")
        for field, value in who.items():
            setattr(e, field, value)
        events.append(e)
    return events


def fold_all(key, events):
    """The definition of a profile: its events folded in event-time order."""
    profile = Profile(key=key)
    for e in sorted(events, key=event_order):
        fold(profile, e)
    return profile


@settings(max_examples=150, deadline=None)
@given(event_lists([{"customer_id": "c1"}]), st.randoms(use_true_random=False), st.integers(1, 5))
def test_a_shuffled_batch_folds_like_the_events_one_by_one_in_time_order(events, rnd, chunks):
    expected = fold_all("c:c1", events)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    store = MemoryStore()
    store.append(shuffled)
    assert store.load(customer_id="c1") == expected

    # Time-ordered chunks, each appended as its own batch, give the same profile too.
    ordered = sorted(events, key=lambda e: e.at)
    step = max(1, len(ordered) // chunks)
    other = MemoryStore()
    for start in range(0, len(ordered), step):
        other.append(ordered[start:start + step])
    assert other.load(customer_id="c1") == expected


COUNTERS = ("visits", "page_views", "product_views", "orders", "items", "discounted_orders",
            "coupon_orders", "returns", "returned_items")


@settings(max_examples=100, deadline=None)
@given(event_lists([{"visitor_id": "v1"}]), event_lists([{"customer_id": "c1"}]))
def test_identify_in_the_store_joins_the_visitors_events_to_the_customers(visitor_events, customer_events):
    for event in customer_events:  # one order each (the store drops a resent order_id)
        if isinstance(event, Order):
            event.order_id = f"c-{event.order_id}"
    store = MemoryStore()
    store.append(visitor_events)
    store.append(customer_events)
    visitor_before = store.load(visitor_id="v1")
    customer_before = store.load(customer_id="c1") or Profile(key="c:c1")
    latest = max(e.at for e in visitor_events + customer_events)
    identify = Identify(visitor_id="v1", customer_id="c1", at=latest + timedelta(seconds=1))
    store.append([identify])
    merged = store.load(customer_id="c1")
    assert store.load(visitor_id="v1") == merged
    # One person's events, folded together in time: visits are sessions over both histories.
    assert merged == fold_all("c:c1", [*visitor_events, *customer_events, identify])
    for name in COUNTERS:
        if name != "visits":
            assert getattr(merged, name) == getattr(customer_before, name) + getattr(visitor_before, name)
    assert "v1" in merged.visitor_ids
    assert store.count_profiles() == 1


# Times on a 10-minute grid over three days: ties (the tie-break decides), gaps shorter and
# longer than a visit, and events late by minutes or days.
grid = st.lists(st.integers(0, 3 * 144).map(lambda n: n * 600), min_size=1, max_size=30)
PEOPLE = [{"customer_id": "c1"}, {"visitor_id": "v1"}, {"visitor_id": "v2"}, {"visitor_id": "v3"}]


def store_factories(tmp_path):
    return [MemoryStore, lambda: SQLiteStore(":memory:"), lambda: SQLiteStore(str(tmp_path / "p.db"))]


@settings(max_examples=150, deadline=None)
@given(event_lists(PEOPLE, offsets=grid), st.sets(st.sampled_from(["v1", "v2"])),
       st.lists(st.integers(0, 3 * 144), min_size=2, max_size=2), st.randoms(use_true_random=False),
       st.integers(1, 6), st.integers(0, 2))
def test_any_arrival_order_and_batching_gives_the_same_profiles(events, identified, identify_at, rnd,
                                                                batches, store_kind):
    """Issue #19: a profile is its key group's events folded in event-time order, however
    they arrive: shuffled, in any batches, identify merges included."""
    events = list(events)
    for n, visitor in enumerate(sorted(identified)):
        events.append(Identify(visitor_id=visitor, customer_id="c1",
                               at=BASE + timedelta(seconds=identify_at[n] * 600)))
    groups = {"c:c1": [e for e in events if e.customer_id or e.visitor_id in identified]}
    for visitor in ("v1", "v2", "v3"):
        if visitor not in identified:
            groups[f"v:{visitor}"] = [e for e in events if e.visitor_id == visitor and not e.customer_id]
    expected = {key: fold_all(key, group) for key, group in groups.items() if group}

    arrival = list(events)
    rnd.shuffle(arrival)
    cuts = sorted(rnd.sample(range(1, len(arrival)), min(batches, len(arrival)) - 1)) if len(arrival) > 1 else []
    with tempfile.TemporaryDirectory() as tmp:
        store = store_factories(pathlib.Path(tmp))[store_kind]()
        for start, end in zip([0, *cuts], [*cuts, len(arrival)]):
            store.append(arrival[start:end])
        assert {p.key: p for p in store.iter_profiles()} == expected
        for visitor in identified:
            assert store.load(visitor_id=visitor) == expected["c:c1"]
        store.close()


# A customer's page views come from several devices (ids), a visitor's from one; "v4"
# browses anonymously and may log in as c1 (an identify in the tail joins its events).
TAIL_PEOPLE = {"c:c1": [{"customer_id": "c1"}, {"customer_id": "c1", "visitor_id": "v1"},
                        {"customer_id": "c1", "visitor_id": "v2"}, {"visitor_id": "v4"}],
               "v:v3": [{"visitor_id": "v3"}]}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(TAIL_PEOPLE)), st.data(), st.integers(0, 3 * 144), st.booleans(),
       st.randoms(use_true_random=False), st.integers(1, 4), st.integers(0, 2))
def test_a_load_folds_the_tail_after_a_compaction_as_fold_would(key, data, split, identify, rnd, batches,
                                                                 store_kind):
    """``load`` folds a tail onto the compacted row from the events' type and ids when it is
    all newer (page views through ``fold_page_view`` with the log's time), and refolds when
    it holds a late event or an identify: either way ``fold`` of every event of the group
    in event-time order, whatever the arrival order. The history is compacted first; the
    tail arrives in any order and batching."""
    events = data.draw(event_lists(TAIL_PEOPLE[key], offsets=grid))
    if key == "c:c1" and identify:
        events.append(Identify(visitor_id="v4", customer_id="c1", at=BASE + timedelta(seconds=split * 600)))
    history = [e for e in events if e.at.timestamp() < BASE.timestamp() + split * 600]
    tail = [e for e in events if e not in history]
    late = data.draw(st.lists(st.sampled_from(history), unique_by=id, max_size=3)) if history else []
    history = [e for e in history if all(e is not x for x in late)]
    tail += late  # logged after the compaction, older than the row's newest event
    rnd.shuffle(tail)
    expected = {k: fold_all(k, group) for k, group in _groups(events, key, identify).items() if group}
    with tempfile.TemporaryDirectory() as tmp:
        store = store_factories(pathlib.Path(tmp))[store_kind]()
        store.append(history)
        store.catch_up()
        step = max(1, len(tail) // batches)
        for start in range(0, len(tail), step):
            store.append(tail[start:start + step])
        for k, profile in expected.items():
            if k.startswith("c:"):
                assert store.load(customer_id=k[2:]) == profile
            else:
                assert store.load(visitor_id=k[2:]) == profile
        store.close()


def _groups(events, key, identified):
    """The key groups of ``TAIL_PEOPLE[key]``'s events: v4 joins c1 when ``identified``."""
    if key == "v:v3":
        return {"v:v3": events}
    if identified:
        return {"c:c1": events}
    return {"c:c1": [e for e in events if e.customer_id], "v:v4": [e for e in events if not e.customer_id]}


def test_a_late_page_view_counts_its_visit():
    """The issue's example: a visitor seen two days ago, whose page view is posted late."""
    now = BASE + timedelta(days=2)
    store = MemoryStore()
    store.append([PageView(visitor_id="v1", path="/", at=now)])
    store.append([PageView(visitor_id="v1", path="/", at=now - timedelta(days=2))])
    profile = store.load(visitor_id="v1")
    assert (profile.visits, profile.page_views) == (2, 2)
    assert profile.first_seen == (now - timedelta(days=2)).timestamp()
    assert len(profile.daily_visits) == 2


def test_events_of_the_same_time_fold_in_one_order_whatever_their_arrival():
    # The page view starts its visit before the product view on it keeps the session alive.
    page = PageView(customer_id="c1", path="/", at=BASE + timedelta(hours=2))
    view = ProductView(customer_id="c1", sku="s1", at=BASE + timedelta(hours=2))
    earlier = PageView(customer_id="c1", path="/", at=BASE)
    profiles = []
    for batches in ([[earlier], [view], [page]], [[earlier], [page], [view]], [[view, page, earlier]]):
        store = MemoryStore()
        for batch in batches:
            store.append(batch)
        profiles.append(store.load(customer_id="c1"))
    assert profiles[0] == profiles[1] == profiles[2]
    assert profiles[0].visits == 2


@settings(max_examples=100, deadline=None)
@given(event_lists([{"customer_id": "c1"}]), event_lists([{"customer_id": "c1"}]))
def test_folded_is_the_profile_the_store_will_hold_and_leaves_its_input_alone(history, new):
    # What a request folds: its own events, newer than the profile's (an older one would make
    # the store refold from the log) and new orders (the store drops a resent order_id).
    shift = max(e.at for e in history) - min(e.at for e in new) + timedelta(seconds=1)
    for event in new:
        event.at += max(shift, timedelta(0))
        if isinstance(event, Order):
            event.order_id = f"new-{event.order_id}"
    store = MemoryStore()
    store.append(history)
    before = store.load(customer_id="c1")
    snapshot = msgspec.msgpack.encode(before)
    after = folded(before, new)
    store.append(new)
    expected = store.load(customer_id="c1")
    assert after == expected
    assert msgspec.msgpack.encode(before) == snapshot  # the cached profile is shared: untouched
    assert folded(before, []) is before


def test_folded_counts_the_visit_of_a_page_view_once_the_gap_has_passed():
    seen = Profile(key="c:c")
    fold(seen, PageView(customer_id="c", at=BASE))
    now = BASE + timedelta(days=2)
    assert folded(seen, [PageView(customer_id="c", at=now)]).visits == 2
    assert folded(seen, [PageView(customer_id="c", at=BASE + timedelta(minutes=5))]).visits == 1
    assert seen.visits == 1 and list(seen.daily_visits.values()) == [1]


def test_purchase_times_follow_the_skus_and_keep_the_latest_purchase():
    profile = Profile(key="c:c")
    for day, skus in [(0, ["a", "b"]), (5, ["c"]), (3, ["a"])]:  # day 3 arrives late
        fold(profile, Order(customer_id="c", order_id=f"o{day}", at=BASE + timedelta(days=day),
                            items=[OrderItem(sku=s) for s in skus]))
    times = {sku: (at - BASE.timestamp()) / 86400 for sku, at in zip(profile.purchased_skus, profile.purchased_at)}
    assert times == {"a": 3, "b": 0, "c": 5}
    for i in range(MAX_PURCHASED_SKUS + 5):
        fold(profile, Order(customer_id="c", order_id=f"x{i}", at=BASE + timedelta(days=10, seconds=i),
                            items=[OrderItem(sku=f"s{i}")]))
    assert len(profile.purchased_skus) == len(profile.purchased_at) == MAX_PURCHASED_SKUS


def test_profiles_stored_before_purchase_times_count_their_skus_as_bought_at_the_last_order():
    old = Profile(key="c:c", purchased_skus=("a", "b"), last_order_at=1000.0)
    assert purchase_times(old) == (1000.0, 1000.0)
    fold(old, Order(customer_id="c", order_id="o", at=datetime.fromtimestamp(2000.0, UTC),
                    items=[OrderItem(sku="b")]))
    assert (old.purchased_skus, old.purchased_at) == (("b", "a"), (2000.0, 1000.0))


def test_a_return_with_an_amount_counts_as_refunded():
    profile = Profile(key="c:c")
    fold(profile, Order(customer_id="c", order_id="o", at=BASE, items=[OrderItem(sku="a", price=80.0)]))
    fold(profile, Return(customer_id="c", order_id="o", at=BASE, items=[ReturnItem(sku="a")], amount=30.0))
    fold(profile, Return(customer_id="c", order_id="o", at=BASE, items=[ReturnItem(sku="a")]))
    assert (profile.spend, profile.refunded, profile.returns) == (80.0, 30.0, 2)


def test_a_page_view_after_a_30_minute_gap_starts_a_new_visit():
    profile = Profile(key="v:v")
    # new visit: t=0; gap > 30 min: t=1861; a gap of exactly 30 min continues it; then > 30 min
    times = [0, 60, 60 + VISIT_GAP + 1, 1862, 1862 + VISIT_GAP, 1862 + 2 * VISIT_GAP + 1]
    for t in times:
        fold(profile, PageView(visitor_id="v", at=BASE + timedelta(seconds=t)))
    assert (profile.page_views, profile.visits) == (6, 3)


def test_segmints_own_records_do_not_keep_a_visit_from_starting():
    profile = Profile(key="c:c")
    fold(profile, PageView(customer_id="c", at=BASE))
    later = BASE + timedelta(days=2)
    # Written with the page view (same time), folded first: an earlier writer batch, or a
    # widget click just before the page it opens.
    for record in (Identify(customer_id="c", visitor_id="v", at=later),
                   Impression(customer_id="c", campaign="a", at=later),
                   Click(customer_id="c", campaign="a", at=later - timedelta(seconds=1))):
        fold(profile, record)
    assert profile.last_seen == BASE.timestamp()
    fold(profile, PageView(customer_id="c", at=later))
    assert (profile.visits, profile.last_seen) == (2, later.timestamp())


def test_a_product_view_keeps_the_session_alive():
    profile = Profile(key="v:v")
    fold(profile, PageView(visitor_id="v", at=BASE))
    fold(profile, ProductView(visitor_id="v", sku="s", at=BASE + timedelta(minutes=25)))
    fold(profile, PageView(visitor_id="v", at=BASE + timedelta(minutes=50)))
    assert profile.visits == 1


def test_recent_lists_are_most_recent_first_deduplicated_and_bounded():
    profile = Profile(key="v:v")
    for i in range(MAX_VIEWED_SKUS + 10):
        fold(profile, ProductView(visitor_id="v", sku=f"s{i}", at=BASE + timedelta(seconds=i)))
    fold(profile, ProductView(visitor_id="v", sku="s15", at=BASE + timedelta(hours=1)))
    assert len(profile.viewed_skus) == MAX_VIEWED_SKUS
    assert profile.viewed_skus[:2] == ("s15", f"s{MAX_VIEWED_SKUS + 9}")
    assert len(set(profile.viewed_skus)) == MAX_VIEWED_SKUS


def test_daily_buckets_stay_sorted_and_are_pruned_beyond_the_window():
    profile = Profile(key="v:v")
    days = list(range(0, 200, 3))
    random.Random(4).shuffle(days)
    for day in sorted(days[:40]) + days[40:]:
        fold(profile, PageView(visitor_id="v", at=BASE + timedelta(days=day, hours=12)))
    keys = list(profile.daily_visits)
    assert keys == sorted(keys)
    assert keys[-1] - keys[0] < BUCKET_DAYS


def test_cart_is_replaced_by_updates_and_cleared_by_an_order():
    profile = Profile(key="c:c")
    fold(profile, CartUpdate(customer_id="c", at=BASE, items=[CartLine(sku="a", price=5.0, quantity=2)]))
    assert profile.cart_value == 10.0
    fold(profile, CartUpdate(customer_id="c", at=BASE + timedelta(minutes=1),
                             items=[CartLine(sku="b", price=3.0)], value=2.5))
    assert [i.sku for i in profile.cart] == ["b"] and profile.cart_value == 2.5
    fold(profile, Order(customer_id="c", order_id="o", at=BASE + timedelta(minutes=2),
                        items=[OrderItem(sku="b", price=3.0)]))
    assert profile.cart == () and profile.cart_value == 0.0


def test_discounted_orders_count_line_discounts_and_coupons():
    profile = Profile(key="c:c")
    lines = [OrderItem(sku="a", price=10.0, quantity=2, discount=1.0)]
    fold(profile, Order(customer_id="c", order_id="1", at=BASE, items=lines))
    fold(profile, Order(customer_id="c", order_id="2", at=BASE, items=[OrderItem(sku="a", price=10.0)],
                        coupon="X"))
    fold(profile, Order(customer_id="c", order_id="3", at=BASE, items=[OrderItem(sku="a", price=10.0)]))
    assert (profile.orders, profile.discounted_orders, profile.coupon_orders) == (3, 2, 1)
    assert profile.discount_total == 2.0 and profile.spend == 18.0 + 10.0 + 10.0


def test_impressions_and_clicks_update_campaign_stats():
    profile = Profile(key="v:v")
    for minutes in (5, 1, 3):
        fold(profile, Impression(visitor_id="v", campaign="win", variant=f"x{minutes}",
                                 at=BASE + timedelta(minutes=minutes)))
    fold(profile, Click(visitor_id="v", campaign="win", at=BASE + timedelta(minutes=6)))
    stats = profile.campaigns["win"]
    assert (stats.impressions, stats.clicks) == (3, 1)
    assert stats.last_at == (BASE + timedelta(minutes=5)).timestamp()
    assert stats.first_at == (BASE + timedelta(minutes=1)).timestamp()
    assert stats.last_variant == "x5"
    assert stats.recent == tuple(sorted(stats.recent, reverse=True))
