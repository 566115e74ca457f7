"""The request-path read without threads: ``RedisStore.aload`` against a real redis-server,
and ``Profiles.aget`` (the cache in front of it) with a fake async store."""

import asyncio
from datetime import datetime, timezone

import pytest

from segmint.engine.errors import StoreError
from segmint.engine.events import Identify, Order, OrderItem, PageView
from segmint.engine.profile import Profile
from segmint.engine.profiles import Profiles
from segmint.engine.stores import MemoryStore
from segmint.engine.stores.redis import RedisStore

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(redis_server):
    s = RedisStore(redis_server.url, clock=lambda: T0, socket_timeout=0.2)
    yield s
    s.close()


def order(order_id, customer):
    return Order(order_id=order_id, customer_id=customer, at=T0,
                 items=[OrderItem(sku="s", category="k", quantity=1, price=10.0)])


def connections(store):
    """The clients connected to the server, as Redis counts them."""
    return len(store.client.client_list())


# -- RedisStore.aload --------------------------------------------------------------------------

LOOKUPS = [
    {"customer_id": "c1"},                    # a customer
    {"visitor_id": "v-alone"},                # a visitor never linked
    {"visitor_id": "v-linked"},               # a visitor linked to c2: resolves to c2
    {"customer_id": "c2"},
    {"visitor_id": "v-unknown"},              # unknown ids: None
    {"customer_id": "c-unknown"},
]


@pytest.mark.server
def test_aload_returns_exactly_what_load_returns(store):
    store.append([order("o1", "c1"), PageView(visitor_id="v-alone", at=T0),
                  PageView(visitor_id="v-linked", at=T0), order("o2", "c2"),
                  Identify(visitor_id="v-linked", customer_id="c2", at=T0)])

    async def aload_all():
        return [await store.aload(**ids) for ids in LOOKUPS]

    loaded = asyncio.run(aload_all())
    assert loaded == [store.load(**ids) for ids in LOOKUPS]
    assert [p and p.key for p in loaded] == ["c:c1", "v:v-alone", "c:c2", "c:c2", None, None]
    assert "v-linked" in loaded[2].visitor_ids
    with pytest.raises(ValueError, match="visitor_id or a customer_id"):
        asyncio.run(store.aload())


@pytest.mark.server
def test_each_event_loop_gets_its_own_client_closed_when_the_loop_ends(store):
    store.append([order("o1", "c1")])
    before = connections(store)

    async def twice():
        first = await store.aload(customer_id="c1")
        during = connections(store)  # one more: this loop's async connection, reused
        assert await store.aload(customer_id="c1") == first
        return during

    # Loops one after the other (as tests and TestClient portals make them): each works, and
    # its connection is gone when the loop is, not left to the garbage collector.
    for _ in range(3):
        assert asyncio.run(twice()) == before + 1
        assert connections(store) == before


@pytest.mark.server
def test_aload_with_redis_stopped_is_a_store_error(store, redis_server):
    store.append([order("o1", "c1")])

    async def load_stop_load():
        assert (await store.aload(customer_id="c1")).orders == 1  # a pooled connection now
        redis_server.stop()
        with pytest.raises(StoreError, match="loading a profile failed") as info:
            await store.aload(customer_id="c1")
        with pytest.raises(StoreError, match="loading a profile failed"):
            await store.aload(visitor_id="v1")  # the script path too
        return info.value

    error = asyncio.run(load_stop_load())
    assert error.store == redis_server.url
    with pytest.raises(StoreError, match="loading a profile failed"):  # a fresh loop: connect fails
        asyncio.run(store.aload(customer_id="c1"))
    store.close()
    with pytest.raises(StoreError, match="closed"):
        asyncio.run(store.aload(customer_id="c1"))


# -- Profiles.aget (a fake async store, no Redis) ----------------------------------------------

class AsyncStore(MemoryStore):
    """A memory store with an ``aload`` that can be held at a gate, and a ``load`` that must
    not be used by ``aget``."""

    def __init__(self):
        super().__init__()
        self.aloads = 0
        self.gate: asyncio.Event | None = None

    def load(self, **ids):
        raise AssertionError("aget must not call the blocking load")

    async def aload(self, **ids):
        self.aloads += 1
        profile = super().load(**ids)  # read first: a held load returns what it read then
        if self.gate is not None:
            await self.gate.wait()
        return profile


def test_aget_caches_like_get_and_expires_with_the_ttl():
    now = [0.0]
    store = AsyncStore()
    profiles = Profiles(store, ttl=10, timer=lambda: now[0])
    store.append([order("o1", "c1")])

    async def scenario():
        first = await profiles.aget(customer_id="c1")
        assert await profiles.aget(customer_id="c1") is first  # hit: no store call
        assert store.aloads == 1 and profiles.stats["hits"] == 1 and profiles.stats["misses"] == 1
        now[0] = 11.0  # past the TTL
        assert (await profiles.aget(customer_id="c1")).orders == 1
        assert store.aloads == 2
        return first

    assert asyncio.run(scenario()).orders == 1
    assert profiles.supports_async and not Profiles(MemoryStore()).supports_async


def test_aget_of_unknown_ids_is_an_empty_profile_that_is_cached():
    store = AsyncStore()
    profiles = Profiles(store)

    async def scenario():
        visitor = await profiles.aget(visitor_id="v9")
        customer = await profiles.aget(customer_id="c9")
        await profiles.aget(visitor_id="v9")
        return visitor, customer

    visitor, customer = asyncio.run(scenario())
    assert visitor == Profile(key="v:v9", visitor_ids=("v9",))
    assert customer == Profile(key="c:c9", customer_id="c9")
    assert store.aloads == 2
    with pytest.raises(ValueError, match="visitor_id or a customer_id"):
        asyncio.run(profiles.aget())


def test_aget_racing_an_invalidation_does_not_cache_the_stale_profile():
    store = AsyncStore()
    profiles = Profiles(store)
    store.append([order("o1", "c1")])

    async def scenario():
        store.gate = asyncio.Event()
        loading = asyncio.create_task(profiles.aget(customer_id="c1"))
        while store.aloads == 0:  # the load is now waiting inside the store
            await asyncio.sleep(0)
        profiles.record([order("o2", "c1")])  # another order lands meanwhile
        store.gate.set()
        stale = await loading  # read before the order: may be returned, must not be cached
        store.gate = None
        return stale, await profiles.aget(customer_id="c1")

    stale, fresh = asyncio.run(scenario())
    assert stale.orders == 1 and fresh.orders == 2 and store.aloads == 2


def test_a_visitor_cached_under_its_customer_is_dropped_with_the_customer():
    store = AsyncStore()
    profiles = Profiles(store)
    store.append([order("o1", "c1"), Identify(visitor_id="v1", customer_id="c1", at=T0)])

    async def scenario():
        linked = await profiles.aget(visitor_id="v1")
        assert linked.key == "c:c1"
        profiles.invalidate(["c:c1"])  # the alias v:v1 goes too
        await profiles.aget(visitor_id="v1")

    asyncio.run(scenario())
    assert store.aloads == 2
