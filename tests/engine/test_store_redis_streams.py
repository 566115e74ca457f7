"""The Redis store's log as a Redis Stream folded by a consumer group of compactors (issue #19
part 5), against a real redis-server: event-time folding in any arrival order and batching
with compaction passes in between, idempotent and never regressing compaction, reclaim of a
dead compactor's entries, stream trimming, erasure of unfolded events, the version check."""

import sys
import threading
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmint.engine.errors import StoreError
from segmint.engine.events import Identify, Order, OrderItem, PageView
from segmint.engine.stores import CompactingStore
from segmint.engine.stores import redis as redis_module
from segmint.engine.stores.redis import GROUP, RedisStore

pytestmark = pytest.mark.server
fx = sys.modules["segmint_tests_fixtures"]  # tests/fixtures.py, loaded by tests/conftest.py
folding = fx.load_by_path("segmint_tests_folding", fx.TESTS / "engine" / "test_folding.py")
BASE = folding.BASE


def at(minutes):
    return BASE + timedelta(minutes=minutes)


def order(order_id, customer="c1", minutes=0):
    return Order(order_id=order_id, customer_id=customer, at=at(minutes), items=[OrderItem(sku="s", price=10.0)])


@pytest.fixture
def open_store(redis_server):
    opened = []

    def make(**options):
        s = RedisStore(redis_server.url, clock=lambda: BASE, **options)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def rows(store):
    """Every stored row as Redis holds it: key -> (n, profile bytes)."""
    found = {}
    for key in store.client.zrange(f"{store.prefix}profiles", 0, -1):
        n, data = store.client.hmget(f"{store.prefix}p:{key.decode()}", "n", "profile")
        found[key.decode()] = (int(n), data)
    return found


def test_the_redis_store_is_a_compacting_store(open_store):
    assert isinstance(open_store(), CompactingStore)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(folding.event_lists(folding.PEOPLE, offsets=folding.grid), st.sets(st.sampled_from(["v1", "v2"])),
       st.lists(st.integers(0, 3 * 144), min_size=2, max_size=2), st.randoms(use_true_random=False),
       st.integers(1, 6), st.sets(st.integers(0, 5)))
def test_any_arrival_order_batching_and_compaction_gives_the_same_profiles(
        redis_server, events, identified, identify_at, rnd, batches, compact_after):
    """The property test of test_folding.py on Redis, with compaction passes (of two entries,
    so groups are folded in pieces) between some batches: rows plus tails read the same."""
    events = list(events)
    for n, visitor in enumerate(sorted(identified)):
        events.append(Identify(visitor_id=visitor, customer_id="c1", at=BASE + timedelta(seconds=identify_at[n] * 600)))
    groups = {"c:c1": [e for e in events if e.customer_id or e.visitor_id in identified]}
    for visitor in ("v1", "v2", "v3"):
        if visitor not in identified:
            groups[f"v:{visitor}"] = [e for e in events if e.visitor_id == visitor and not e.customer_id]
    expected = {key: folding.fold_all(key, group) for key, group in groups.items() if group}

    arrival = list(events)
    rnd.shuffle(arrival)
    cuts = sorted(rnd.sample(range(1, len(arrival)), min(batches, len(arrival)) - 1)) if len(arrival) > 1 else []
    store = RedisStore(redis_server.url + f"?prefix={uuid.uuid4().hex}:")
    try:
        for n, (start, end) in enumerate(zip([0, *cuts], [*cuts, len(arrival)])):
            store.append(arrival[start:end])
            if n in compact_after:
                store.compact(max_events=2)
        for key, profile in expected.items():  # folded on read, whatever was compacted
            kind, name = key.split(":", 1)
            assert store.load(**{"customer_id" if kind == "c" else "visitor_id": name}) == profile
        assert {p.key: p for p in store.iter_profiles()} == expected  # compacted
        for visitor in identified:
            assert store.load(visitor_id=visitor) == expected["c:c1"]
    finally:
        store.close()


def test_compaction_trims_the_stream_and_the_key_lists_keep_the_history(open_store):
    store = open_store()
    store.append([PageView(visitor_id="v1", at=at(i)) for i in range(5)] + [order("o1")])
    assert store.client.xlen(store.stream) == 6 and store.compaction_position() == (0, 6)
    assert store.compact(max_events=4) == 4
    assert store.client.xlen(store.stream) == 2  # the acknowledged entries are gone
    assert store.compact() == 2 and store.compact() == 0
    assert store.client.xlen(store.stream) == 0 and store.compaction_position() == (6, 6)
    assert store.client.llen(f"{store.prefix}k:v:v1") == 5
    assert rows(store)["v:v1"][0] == 5 and store.load(visitor_id="v1").page_views == 5


def test_a_dead_compactors_entries_are_claimed_and_folded_once(open_store, monkeypatch):
    """A compactor that wrote its rows and died before XACK: after ``claim_idle`` another one
    takes its entries over and finds them folded already: nothing is written twice."""
    dead, survivor = open_store(claim_idle=0), open_store(claim_idle=0)
    dead.append([order("o1", customer="c1"), order("o2", customer="c2"), PageView(visitor_id="v1", at=at(1)),
                 Identify(visitor_id="v1", customer_id="c2", at=at(2))])

    def die(*args):
        raise KeyboardInterrupt("killed before XACK")

    monkeypatch.setattr(dead.client, "xack", die)
    with pytest.raises(KeyboardInterrupt):
        dead.compact()
    monkeypatch.undo()
    written = rows(dead)
    assert {k: n for k, (n, _) in written.items()} == {"c:c1": 1, "c:c2": 2}
    pending = dead.client.xpending(dead.stream, GROUP)
    assert pending["pending"] == 4 and pending["consumers"] == [{"name": dead.consumer.encode(), "pending": 4}]
    assert survivor.compaction_position() == (0, 4)
    writes = dead.client.info("commandstats")["cmdstat_hset"]["calls"]

    assert survivor.compact() == 4  # claimed (idle >= 0 s)
    assert survivor.client.xpending(survivor.stream, GROUP)["pending"] == 0
    assert rows(survivor) == written and survivor.client.info("commandstats")["cmdstat_hset"]["calls"] == writes
    profile = survivor.load(customer_id="c2")
    assert (profile.orders, profile.page_views) == (1, 1) and survivor.load(customer_id="c1").orders == 1
    assert survivor.compaction_position() == (4, 4) and survivor.catch_up(timeout=0)


def test_a_compactor_that_failed_mid_pass_redoes_its_own_entries(open_store, monkeypatch):
    store = open_store()  # claim_idle 30 s: only its own pending entries can be redone now
    store.append([order("o1", customer="c1"), order("o2", customer="c2")])
    original, calls = redis_module.materialize, []

    def fail_on_the_second_group(key, *args):
        calls.append(key)
        if len(set(calls)) == 2:
            raise RuntimeError("failed mid-pass")
        return original(key, *args)

    monkeypatch.setattr(redis_module, "materialize", fail_on_the_second_group)
    with pytest.raises(RuntimeError):
        store.compact()
    monkeypatch.undo()
    assert rows(store) == {} and store.compaction_position() == (0, 2)  # one MULTI: nothing written
    assert store.compact() == 2 and set(rows(store)) == {"c:c1", "c:c2"}
    assert store.compaction_position() == (2, 2)


def test_entries_of_a_live_compactor_are_left_to_it_until_claim_idle(open_store, monkeypatch):
    first, second = open_store(), open_store()  # claim_idle 30 s
    first.append([order("o1")])
    monkeypatch.setattr(first, "_fold_groups", lambda groups: None)  # takes the entry, folds nothing...
    monkeypatch.setattr(first.client, "xack", lambda *args: 0)     # ...and does not acknowledge it
    assert first.compact() == 1
    assert second.compact() == 0  # pending with ``first``, not idle long enough: not taken
    assert not second.catch_up(timeout=0)
    assert second.compaction_position() == (0, 1)
    monkeypatch.undo()
    assert first.compact() == 1  # its own pending entry, redone
    assert second.compaction_position() == (1, 1) and rows(second)["c:c1"][0] == 1


def test_two_compactors_at_once_fold_everything_once(open_store):
    writer = open_store()
    compactors = [open_store(), open_store()]
    for i in range(40):
        writer.append([order(f"o{i}", customer=f"c{i % 4}", minutes=i), PageView(customer_id=f"c{i % 4}", at=at(i)),
                       PageView(visitor_id=f"v{i % 7}", at=at(100 - i))])  # late page views: refolds
    errors = []

    def work(store):
        try:
            while store.compact(max_events=7):
                pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in compactors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and writer.compaction_position() == (120, 120)
    for c in range(4):
        profile = writer.load(customer_id=f"c{c}")
        assert (profile.orders, profile.page_views) == (10, 10)
    assert sum(writer.load(visitor_id=f"v{v}").page_views for v in range(7)) == 40
    assert all(n == writer.client.llen(f"{writer.prefix}k:{key}") for key, (n, _) in rows(writer).items())


def test_a_row_is_never_regressed_by_a_slower_compactor(open_store, monkeypatch):
    """A compactor that read a row and its tail, then lost the race to another that wrote a
    longer fold: its write is refused (WATCH) and, read again, there is nothing left to do."""
    slow, fast = open_store(claim_idle=0), open_store(claim_idle=0)
    slow.append([order("o1")])
    original = redis_module.materialize
    raced = []

    def race(key, row, tail, log):
        found = original(key, row, tail, log)  # what slow will write (unless it reads the group first)
        if not raced:
            raced.append(key)
            slow.append([order("o2", minutes=1)])
            assert fast.compact() == 2  # claims slow's entry and takes the new one: folds both
        return found

    monkeypatch.setattr(redis_module, "materialize", race)
    assert slow.compact() == 1
    monkeypatch.undo()
    assert rows(slow)["c:c1"][0] == 2 and slow.load(customer_id="c1").orders == 2
    assert fast.compaction_position() == (2, 2)


def test_forget_erases_unfolded_entries_and_a_compactor_folding_meanwhile_writes_nothing(open_store, monkeypatch):
    store, other = open_store(), open_store()
    store.append([PageView(visitor_id="ann-phone", at=at(0)), Identify(visitor_id="ann-phone", customer_id="ann", at=at(1)),
                  order("ann-1", customer="ann", minutes=2), order("bob-1", customer="bob", minutes=3)])
    original = redis_module.materialize

    def forget_meanwhile(key, row, tail, log):
        found = original(key, row, tail, log)  # what the compactor will write for Ann
        if key == "c:ann" and not forgotten:
            forgotten.append(None)  # forget materializes Ann's profile too
            forgotten[0] = other.forget(customer_id="ann")
        return found

    forgotten = []
    monkeypatch.setattr(redis_module, "materialize", forget_meanwhile)
    assert store.compact() == 4
    monkeypatch.undo()
    assert forgotten[0].counts()["events"] == 3
    assert set(rows(store)) == {"c:bob"}  # the compactor's write for Ann failed and found nothing
    assert store.load(customer_id="ann") is None and store.load(visitor_id="ann-phone") is None
    assert [e.order_id for e in store.iter_events()] == ["bob-1"]
    assert store.client.xlen(store.stream) == 0 and store.compaction_position()[0] == store.compaction_position()[1]


def test_forget_deletes_the_persons_stream_entries_before_they_are_folded(open_store):
    store = open_store()
    store.append([order("ann-1", customer="ann"), order("bob-1", customer="bob")])
    store.forget(customer_id="ann")
    entries = store.client.xrange(store.stream)
    assert [fields[b"key"] for _, fields in entries] == [b"c:bob"]
    assert store.compact() == 1 and set(rows(store)) == {"c:bob"}
    assert store.compaction_position() == (2, 2)  # the erased entry counts as logged, never waits


def test_version_1_data_is_refused_with_the_way_to_move_it(redis_server):
    redis_server.command("SET", "segmint:meta:schema_version", "1")
    with pytest.raises(StoreError, match="layout version 1") as info:
        RedisStore(redis_server.url)
    assert "segmint migrate" in str(info.value) and "empty Redis database or prefix" in str(info.value)


def test_a_closed_compactor_with_nothing_pending_leaves_the_group(open_store):
    store, watcher = open_store(), open_store()
    store.append([order("o1")])
    store.compact()
    assert store.consumer.encode() in {c["name"] for c in watcher.client.xinfo_consumers(store.stream, GROUP)}
    store.close()
    assert store.consumer.encode() not in {c["name"] for c in watcher.client.xinfo_consumers(watcher.stream, GROUP)}


def test_claim_idle_comes_from_the_url_and_a_bad_value_is_a_clear_error(redis_server):
    store = RedisStore(redis_server.url + "?claim_idle=2.5&prefix=x:")
    assert (store.claim_idle, store.prefix) == (2.5, "x:")
    store.close()
    with pytest.raises(StoreError, match="claim_idle must be a number of seconds"):
        RedisStore(redis_server.url + "?claim_idle=soon")


def test_the_documented_key_layout_is_what_redis_holds(open_store):
    """docs/deployment-multi-server.md's table names every key a store writes, with its type."""
    import re

    doc = (fx.TESTS.parent / "docs" / "deployment-multi-server.md").read_text()
    table = doc[doc.index("## Key layout"):doc.index("## Sizing")]
    kinds = {"string": "string", "stream": "stream", "list": "list", "hash": "hash", "sorted set": "zset",
             "set": "set", "channel": "channel"}
    documented = {}
    for name, kind in re.findall(r"^\| `([^`]+)` \| ([a-z ]+) \|", table, re.M):
        documented[re.compile(re.sub(r"<[^>]+>", ".+", re.escape(name).replace(r"\<", "<").replace(r"\>", ">")) + "$")] = kinds[kind]
    store = open_store()
    store.append([PageView(visitor_id="v1", at=at(0)), Identify(visitor_id="v1", customer_id="c1", at=at(1)),
                  order("o1"), PageView(visitor_id="v2", at=at(2))])
    store.set_meta("rfm", b"x")
    store.compact()
    store.append([PageView(visitor_id="v2", at=at(3))])  # a stream entry left to see
    seen = set()
    for key in store.client.keys("*"):
        kind = store.client.type(key).decode()
        matches = [pattern for pattern, documented_kind in documented.items()
                   if pattern.match(key.decode()) and documented_kind == kind]
        assert matches, f"{key.decode()} ({kind}) is not in the documented key layout"
        seen.update(matches)
    assert {p.pattern for p, kind in documented.items() if kind != "channel"} == {p.pattern for p in seen}
    assert any(p.match(store.channel) and kind == "channel" for p, kind in documented.items())


def test_compaction_recovers_when_redis_lost_the_stream_and_its_group(open_store):
    store = open_store()
    store.append([order("o1")])
    store.client.delete(store.stream)  # a restart without persistence, a flush
    store.append([order("o2", minutes=1)])
    assert store.compact() == 1 and store.compaction_position() == (1, 1)
    assert rows(store)["c:c1"][0] == 2 and store.load(customer_id="c1").orders == 2


def test_a_redis_older_than_7_is_refused_with_the_version_needed(redis_server, monkeypatch):
    real_info = redis_module._redis.Redis.info
    monkeypatch.setattr(redis_module._redis.Redis, "info",
                        lambda self, *args: {**real_info(self, *args), "redis_version": "6.2.14"})
    with pytest.raises(StoreError, match=r"needs Redis 7.0 or newer .* this server is 6.2.14"):
        RedisStore(redis_server.url)
