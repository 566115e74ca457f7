"""The middleware over a real Redis store: profiles load on the event loop (redis.asyncio),
not in the thread pool, and a Redis that goes away still leaves every page served."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segmint.engine.profiles import Profiles
from segmint.engine.runtime import Segmint
from segmint.engine.stores.redis import RedisStore
from segmint.middleware import SegmintMiddleware
from segmint.middleware.counters import Counters
from segmint.middleware.executor import Executor, Overloaded
from segmint.middleware.visitors import Visitors

PAGE = '<html><body><div data-segmint-slot="cart"></div></body></html>'


class HeaderAuth(AuthenticationBackend):
    """The shop's login, simplified: ``x-user: <customer id>``."""

    async def authenticate(self, conn: Any) -> Any:
        user = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(user)) if user else None


async def page(request: Any) -> HTMLResponse:
    return HTMLResponse(PAGE)


@pytest.fixture
def runtime(mw: Any, redis_server: Any, tmp_path: Path) -> Any:
    """The test config with ``[store] url = <the redis-server>``."""
    path = mw.write_config(tmp_path)
    text = path.read_text()
    path.write_text(text.replace(f'path = "{(tmp_path / "segmint.db").as_posix()}"',
                                 f'url = "{redis_server.url}?socket_timeout=0.2"'))
    rt = Segmint.from_config(path, watch=False)
    assert isinstance(rt.store, RedisStore)
    yield rt
    rt.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of the pool's profile load and the async one, spied on the real methods."""
    counts = {"pool": 0, "async": 0}
    load_profile, aget = Visitors.load_profile, Profiles.aget

    def pool_load(self: Visitors, identity: Any) -> Any:
        counts["pool"] += 1
        return load_profile(self, identity)

    async def async_get(self: Profiles, **ids: Any) -> Any:
        counts["async"] += 1
        return await aget(self, **ids)

    monkeypatch.setattr(Visitors, "load_profile", pool_load)
    monkeypatch.setattr(Profiles, "aget", async_get)
    return counts


def client_for(mw: Any, runtime: Any) -> Any:
    """The shop's login runs inside segmint, as in a typical shop."""
    app = AuthenticationMiddleware(Starlette(routes=[Route("/", page)]), backend=HeaderAuth())
    return mw.TestClient(SegmintMiddleware(app, runtime=runtime))


@pytest.mark.server
def test_a_customer_with_a_recorded_order_gets_the_campaign_loaded_without_the_pool(
        mw: Any, runtime: Any, calls: dict[str, int]):
    assert runtime.profiles.supports_async
    order = {"type": "order", "order_id": "o-1", "customer_id": "cust-42",
             "items": [{"sku": "tv-1", "category": "electronics", "price": 900.0}]}
    with client_for(mw, runtime) as client:
        before = client.get("/", headers={"x-user": "cust-42"})
        posted = client.post("/_segmint/events", json=[order], headers=mw.AUTH)
        # The order wrote through into this server's cache; empty it so the next page reads
        # Redis, as a server that did not take the order would.
        runtime.profiles.clear()
        after = client.get("/", headers={"x-user": "cust-42"})
    assert 'data-segmint-campaign="default"' in before.text
    assert posted.status_code == 200 and posted.json()["stored"] == 1
    assert 'data-segmint-campaign="vip"' in after.text and 'data-segmint-sku="tv-1"' in after.text
    # Both pages read the profile from Redis, awaited on the event loop; none in the pool.
    assert calls == {"pool": 0, "async": 2}


@pytest.mark.server
def test_redis_stopped_mid_run_serves_pages_unchanged_and_counts_it(
        mw: Any, runtime: Any, redis_server: Any, calls: dict[str, int]):
    def returning() -> dict[str, str]:  # a returning visitor nobody has cached yet
        return mw.visitor_headers()

    with client_for(mw, runtime) as client:
        assert 'data-segmint-campaign="default"' in client.get("/", headers=returning()).text
        redis_server.save()
        redis_server.stop()
        down = [client.get("/", headers=returning()) for _ in range(3)]
        redis_server.start()  # same port, data from the snapshot: recovery needs nothing
        back = client.get("/", headers=returning())
        counters = client.app.counters.snapshot()
    assert all(r.status_code == 200 and r.text == PAGE for r in down)
    assert counters["failure.decide"] == 3
    assert 'data-segmint-campaign="default"' in back.text
    assert calls["pool"] == 0 and calls["async"] == 5


def test_loop_tasks_and_pool_work_share_one_bound_and_failures_are_consumed(caplog: Any):
    async def scenario() -> None:
        core = Executor(Counters(), max_workers=1, max_pending=2)
        gate, release = asyncio.Event(), threading.Event()
        held = [core.spawn(gate.wait), core.submit(release.wait, 10)]
        with pytest.raises(Overloaded):  # full: no more tasks, no more pool work
            core.spawn(gate.wait)
        with pytest.raises(Overloaded):
            core.submit(release.wait, 10)
        gate.set()
        release.set()
        await asyncio.gather(*held)

        async def broken() -> None:
            raise RuntimeError("store down")

        failed = core.spawn(broken)  # nobody awaits it (the page's budget ran out)
        await asyncio.wait([failed])
        del failed
        gc.collect()
        assert await core.spawn(asyncio.sleep, 0, "room again") == "room again"
        core.close()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        asyncio.run(scenario())
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
