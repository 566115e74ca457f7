"""RedisStore against a real redis-server: the shared store contract, then Redis specifics
(key prefix, schema version, concurrent writers in two processes, pub/sub cache
invalidation across processes, Redis going away mid-run and coming back)."""

import logging
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmint.engine.cache_invalidation import wire_invalidation
from segmint.engine.errors import StoreError
from segmint.engine.events import Order, OrderItem, PageView
from segmint.engine.profiles import Profiles
from segmint.engine.stores import MemoryStore, open_store
from segmint.engine.stores.base import redacted_url
from segmint.engine.stores import redis as redis_module
from segmint.engine.stores.redis import RedisStore, decode_event_member, encode_event_member
from segmint.engine.writer import EventWriter

pytestmark = pytest.mark.server
fx = sys.modules["segmint_tests_fixtures"]  # tests/fixtures.py, loaded by tests/conftest.py
helper = fx.redis_server

# -- the shared store contract, run against Redis ---------------------------------------------
contract = fx.load_by_path("segmint_tests_store_contract", fx.TESTS / "engine" / "test_store_contract.py")
T0 = contract.T0
for _name, _test in vars(contract).items():
    if _name.startswith("test_") and "store" in _test.__code__.co_varnames[:_test.__code__.co_argcount]:
        globals()[f"{_name}"] = _test  # collected here, so it uses the ``store`` fixture below


@pytest.fixture
def store(redis_server):
    s = RedisStore(redis_server.url, clock=lambda: T0)
    yield s
    s.close()


def order(order_id, customer="c1", price=10.0):
    return Order(order_id=order_id, customer_id=customer, at=T0,
                 items=[OrderItem(sku="s", category="k", quantity=1, price=price)])


# -- Redis specifics ---------------------------------------------------------------------------

def test_open_store_selects_redis_and_keys_carry_the_prefix(redis_server):
    store = open_store(redis_server.url + "?prefix=shop1:&socket_timeout=0.3")
    other = open_store(redis_server.url)  # default prefix "segmint:" in the same database
    assert isinstance(store, RedisStore) and store.prefix == "shop1:"
    store.append([order("o1"), PageView(visitor_id="v1", at=T0)])
    assert store.compact() == 2
    keys = {k.decode() for k in store.client.keys("*")}
    assert keys and all(k.startswith(("shop1:", "segmint:")) for k in keys)
    assert {"shop1:p:c:c1", "shop1:p:v:v1", "shop1:k:c:c1", "shop1:k:v:v1", "shop1:o:o1", "shop1:profiles",
            "shop1:e:order", "shop1:log"} <= keys
    assert other.load(customer_id="c1") is None and other.count_profiles() == 0
    store.close()
    other.close()


def test_a_password_in_the_url_is_not_shown():
    assert "s3cret" not in redacted_url("redis://user:s3cret@example.org:6380/1")
    assert redacted_url("redis://user:s3cret@example.org:6380/1") == "redis://user:***@example.org:6380/1"


def test_data_from_a_newer_version_is_a_clear_error(redis_server):
    RedisStore(redis_server.url).close()
    redis_server.command("SET", "segmint:meta:schema_version", str(redis_module.REDIS_SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="newer segmint") as info:
        RedisStore(redis_server.url)
    assert info.value.store == redis_server.url


def test_without_redis_py_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(redis_module, "_redis", None)
    with pytest.raises(StoreError, match=r"pip install segmint\[redis\]"):
        open_store("redis://127.0.0.1:1/0")


def test_redis_down_is_a_store_error(redis_server):
    store = RedisStore(redis_server.url, socket_timeout=0.2)
    store.append([order("o1")])
    redis_server.stop()
    with pytest.raises(StoreError, match="loading a profile failed"):
        store.load(customer_id="c1")
    with pytest.raises(StoreError):
        store.append([order("o2")])
    with pytest.raises(StoreError):
        list(store.iter_profiles())
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.load(customer_id="c1")


def test_nothing_listens_on_port_1_so_opening_fails_cleanly():
    with pytest.raises(StoreError, match="opening the store failed"):
        RedisStore("redis://127.0.0.1:1/0", socket_timeout=0.2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e12, 1e12, allow_nan=False), st.integers(0, 2**40)),
                min_size=2, max_size=20))
def test_log_members_sort_by_time_then_sequence(rows):
    members = [encode_event_member(at, seq, "c:x", b"data") for at, seq in rows]
    assert [decode_event_member(m) for m in sorted(members)] == [
        (at + 0.0, seq, "c:x", b"data") for at, seq in sorted(rows)]


def test_events_at_the_same_time_keep_their_insertion_order_across_types(store):
    store.append([PageView(visitor_id="v", at=T0, path="/a"), order("o1"), PageView(visitor_id="v", at=T0, path="/b")])
    store.append([order("o2"), PageView(visitor_id="v", at=T0 - timedelta(days=400), path="/old")])
    got = [getattr(e, "path", None) or e.order_id for e in store.iter_events(batch_size=1)]
    assert got == ["/old", "/a", "o1", "/b", "o2"]


def test_threads_writing_one_customer_lose_no_update(redis_server):
    stores = [RedisStore(redis_server.url) for _ in range(4)]  # separate connections
    errors = []

    def work(worker):
        try:
            for i in range(30):
                stores[worker].append([order(f"t{worker}-{i}"), order(f"shared-{i}"),
                                       PageView(customer_id="c1", at=T0)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    profile = stores[0].load(customer_id="c1")
    # 4 x 30 own orders + 30 shared order ids counted once each; every page view kept.
    assert (profile.orders, profile.page_views, profile.spend) == (150, 120, 1500.0)
    for s in stores:
        s.close()


# -- two app servers (processes) sharing one Redis ----------------------------------------------

SERVER = textwrap.dedent("""
    import sys
    from datetime import datetime, timezone
    from segmint.engine.events import Order, OrderItem, PageView
    from segmint.engine.stores import open_store

    url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(url)
    at = datetime(2025, 3, 1, tzinfo=timezone.utc)
    def buy(order_id, customer):
        return Order(order_id=order_id, customer_id=customer, at=at,
                     items=[OrderItem(sku="s", quantity=1, price=1.0)])
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(count):
        customer = f"c{i % 3}"
        # own order + an order both servers receive (a retried webhook) + a page view
        store.append([buy(f"{name}-{i}", customer), buy(f"both-{i}", customer),
                      PageView(customer_id=customer, at=at)])
    store.close()
""")


def start_servers(url, names, count):
    procs = [subprocess.Popen([sys.executable, "-c", SERVER, url, name, str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for name in names]
    for proc in procs:  # both imported and connected: start them at once
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return procs


def test_two_app_servers_posting_for_the_same_customers_lose_no_update(redis_server):
    count = 150
    for proc in start_servers(redis_server.url, ("a", "b"), count):
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    store = RedisStore(redis_server.url)
    profiles = [store.load(customer_id=f"c{n}") for n in range(3)]
    assert sum(p.orders for p in profiles) == 3 * count  # 2 x own + shared counted once
    assert sum(p.page_views for p in profiles) == 2 * count
    assert [p.orders for p in profiles] == [3 * len(range(n, count, 3)) for n in range(3)]
    writers = [e.order_id[0] for e in store.iter_events(types=["order"]) if not e.order_id.startswith("both")]
    assert sorted(writers) == ["a"] * count + ["b"] * count
    assert sum(a != b for a, b in zip(writers, writers[1:])) > 10  # they really interleaved
    store.close()


def test_another_servers_append_drops_this_servers_cached_profile(redis_server):
    store = RedisStore(redis_server.url)
    profiles = Profiles(store, ttl=3600)  # only the invalidation can make the cache fresh
    assert wire_invalidation(store, profiles)
    dropped = threading.Event()
    store.on_invalidate(lambda keys: keys and "c:c0" in keys and dropped.set())
    assert store._listener.subscribed.wait(5)
    assert profiles.get(customer_id="c0").orders == 0  # cached now
    assert profiles.get(customer_id="c0").orders == 0 and profiles.hits == 1
    for proc in start_servers(redis_server.url, ("b",), 3):
        proc.communicate(timeout=60)
    assert dropped.wait(10), "no invalidation arrived"
    assert profiles.get(customer_id="c0").orders == 2  # b-0 and both-0, reloaded
    store.close()


def test_own_appends_are_not_echoed_and_stores_without_pubsub_are_skipped(redis_server):
    store = RedisStore(redis_server.url)
    seen = []
    from_other = threading.Event()

    def record(keys):
        seen.append(keys)
        if keys and "c:c2" in keys:
            from_other.set()

    store.on_invalidate(record)
    assert store._listener.subscribed.wait(5)
    store.append([order("o1")])
    other = RedisStore(redis_server.url)
    other.append([order("o2", customer="c2")])
    other.close()
    # Pub/sub is ordered: once the other server's message is handled, ours (sent before it)
    # was handled too. Closing does not drain the channel, so wait for it first.
    assert from_other.wait(10), "the other server's invalidation never arrived"
    store.close()
    assert seen[0] is None  # on subscribe: anything missed before is dropped
    assert frozenset({"c:c2"}) in seen and all(k is None or "c:c1" not in k for k in seen)
    assert wire_invalidation(MemoryStore(), Profiles(MemoryStore())) is False


# -- Redis goes away mid-run and comes back ------------------------------------------------------

def test_writer_buffers_while_redis_is_down_and_recovers(redis_server, caplog):
    store = RedisStore(redis_server.url, socket_timeout=0.2)
    profiles = Profiles(store)
    store.on_invalidate(lambda keys: None)
    listener = store._listener
    assert listener.subscribed.wait(5)
    # retries long enough to outlast the outage; the queue bound is what limits the loss
    writer = EventWriter(profiles, batch_size=10, flush_interval=0.01, max_pending=40,
                         max_retries=10_000, retry_delay=0.005, log_interval=0)
    assert writer.submit([PageView(visitor_id="v1", at=T0) for _ in range(5)])
    assert writer.flush(timeout=10)
    redis_server.save()  # keep what was written: the restarted server loads the snapshot
    redis_server.stop()

    with caplog.at_level(logging.ERROR, logger="segmint.writer"):
        with pytest.raises(StoreError):
            profiles.get(visitor_id="someone-new")  # reads fail fast (the page fails open)
        accepted = sum(writer.submit([PageView(visitor_id="v1", at=T0)]) for _ in range(60))
        assert accepted == 40 and writer.stats["rejected"] == 20  # the loss beyond the bound
        assert not writer.flush(timeout=0.3)  # nothing can be written now
        redis_server.start()  # same port
        assert writer.flush(timeout=30)
    assert any("will retry" in r.getMessage() for r in caplog.records)
    assert store.load(visitor_id="v1").page_views == 45
    stats = writer.stats
    assert (stats["written"], stats["dropped"], stats["rejected"]) == (45, 0, 20)
    assert listener.subscribed.wait(10)  # the invalidation listener reconnected by itself
    writer.close()
    store.close()


def test_the_runtime_opens_the_store_the_config_url_names(redis_server, tmp_path):
    from segmint.engine.config.schema import Config, StoreConfig
    from segmint.engine.runtime import Segmint

    config = Config(store=StoreConfig(path=str(tmp_path / "unused.db"), url=redis_server.url))
    assert config.store_location == redis_server.url
    with Segmint.from_config(config, watch=False) as rt:
        assert isinstance(rt.store, RedisStore)
        rt.record([{"type": "order", "order_id": "o1", "customer_id": "c1",
                    "items": [{"sku": "s", "price": 5.0}]}])
        assert rt.profile(customer_id="c1").orders == 1
    assert not (tmp_path / "unused.db").exists()


def test_a_missing_redis_server_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(helper.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        helper.require_redis_server()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        helper.require_redis_server()


def test_two_runtimes_on_one_redis_see_each_others_changes_through_invalidation(redis_server):
    import time

    from segmint.engine.config.schema import CacheConfig, Config, StoreConfig
    from segmint.engine.runtime import Segmint

    # A one-hour cache TTL: only the pub/sub invalidation can make server A see B's order.
    config = Config(store=StoreConfig(url=redis_server.url), cache=CacheConfig(ttl_seconds=3600))
    with Segmint.from_config(config, watch=False) as a, Segmint.from_config(config, watch=False) as b:
        assert a.profile(customer_id="shared").orders == 0  # now cached in A
        b.record([{"type": "order", "order_id": "o-shared", "customer_id": "shared",
                   "items": [{"sku": "s", "price": 5.0}]}])
        deadline = time.monotonic() + 10
        while a.profile(customer_id="shared").orders == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert a.profile(customer_id="shared").orders == 1
