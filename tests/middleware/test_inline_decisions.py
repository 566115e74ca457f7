"""Decisions on the event loop: only when no plugin may block, watched by a breaker.

With built-in plugins only, a page whose profile is in memory is decided on the loop (no
thread hop). A third-party plugin on the decision path sends decisions to the worker pool
unless it declares ``segmint_loop_safe = True``. A loop-safe plugin that turns out slow
(repeatedly over ``INLINE_LIMIT`` of CPU) or blocks past the time budget opens the breaker:
the page goes out (unchanged when the budget ran out) and later decisions use the pool.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segmint.engine.hooks import hookimpl
from segmint.engine.signing import new_visitor_id
from segmint.engine.strategy import StrategyParams
from segmint.middleware import SegmintMiddleware
from segmint.middleware import executor as executor_module

PAGE = '<html><body><div data-segmint-slot="cart"></div></body></html>'


async def page(request: Any) -> HTMLResponse:
    return HTMLResponse(PAGE)


class SlowParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    pass


class Slow:
    """A strategy that spins the CPU or sleeps for ``delay`` seconds, then answers."""

    name = "slow"
    Params = SlowParams

    def __init__(self) -> None:
        self.delay, self.sleep = 0.0, False

    def recommend(self, ctx: Any, params: Any) -> Any:
        if self.sleep:
            time.sleep(self.delay)
        else:
            deadline = time.thread_time() + self.delay
            while time.thread_time() < deadline:
                pass
        return [ctx.catalog.get("tv-1")]


class SlowPlugin:
    def __init__(self, loop_safe: bool) -> None:
        self.strategy = Slow()
        if loop_safe:
            self.segmint_loop_safe = True

    @hookimpl
    def segmint_register_strategies(self) -> list[Slow]:
        return [self.strategy]


def slow_runtime(mw: Any, tmp_path: Any, *, loop_safe: bool, budget: int = 2000) -> tuple[Any, Slow]:
    from segmint.engine.runtime import Segmint

    path = mw.write_config(tmp_path, budget=budget)
    path.write_text(path.read_text().replace(
        'strategy = "manual"\nparams = { skus = ["tv-1"], exclude_purchased = false }',
        'strategy = "slow"\nparams = { exclude_purchased = false }'))
    plugin = SlowPlugin(loop_safe)
    runtime = Segmint.from_config(path, watch=False, extra_plugins=[plugin])
    return runtime, plugin.strategy


def vip_cookie(mw: Any, runtime: Any) -> dict[str, str]:
    """A returning visitor of the vip segment, profile already cached."""
    visitor = new_visitor_id()
    runtime.record([{"type": "order", "visitor_id": visitor, "order_id": f"o-{visitor}", "total": 900.0,
                     "items": [{"sku": "tv-1", "price": 900.0, "quantity": 1}]}])
    runtime.profile(visitor_id=visitor)  # in the cache now
    return mw.visitor_headers(visitor)


def pool_calls(monkeypatch: pytest.MonkeyPatch, middleware: SegmintMiddleware) -> list[Any]:
    """Record every job the middleware hands to its worker pool."""
    calls: list[Any] = []
    submit = middleware.services.executor.submit

    def counting(fn: Any, *args: Any) -> Any:
        calls.append(getattr(fn, "__name__", fn))
        return submit(fn, *args)

    monkeypatch.setattr(middleware.services.executor, "submit", counting)
    return calls


def test_built_in_plugins_decide_on_the_loop_without_a_thread_hop(mw: Any, runtime: Any, monkeypatch: Any):
    assert runtime.decides_on_loop is True
    middleware = SegmintMiddleware(Starlette(routes=[Route("/", page)]), runtime=runtime)
    calls = pool_calls(monkeypatch, middleware)
    headers = vip_cookie(mw, runtime)
    with mw.TestClient(middleware) as client:
        responses = [client.get("/", headers=headers) for _ in range(3)]
    assert all('data-segmint-campaign="vip"' in r.text for r in responses)
    assert calls == []


def test_a_third_party_plugin_sends_decisions_to_the_pool_unless_it_is_loop_safe(
        mw: Any, tmp_path: Any, monkeypatch: Any):
    for loop_safe, expected in [(False, ["personalize"]), (True, [])]:
        runtime, _ = slow_runtime(mw, tmp_path, loop_safe=loop_safe)
        try:
            assert runtime.decides_on_loop is loop_safe
            middleware = SegmintMiddleware(Starlette(routes=[Route("/", page)]), runtime=runtime)
            calls = pool_calls(monkeypatch, middleware)
            headers = vip_cookie(mw, runtime)
            with mw.TestClient(middleware) as client:
                assert 'data-segmint-campaign="vip"' in client.get("/", headers=headers).text
            assert calls == expected
        finally:
            runtime.close()


def test_a_plugin_registered_after_startup_is_noticed(runtime: Any):
    assert runtime.decides_on_loop is True
    runtime.pm.register(SlowPlugin(loop_safe=False), name="late")
    assert runtime.decides_on_loop is False


def test_repeatedly_slow_inline_decisions_open_the_breaker(mw: Any, tmp_path: Any, monkeypatch: Any):
    runtime, strategy = slow_runtime(mw, tmp_path, loop_safe=True)
    strategy.delay = executor_module.INLINE_LIMIT * 1.5  # CPU: slow, well within the budget
    try:
        middleware = SegmintMiddleware(Starlette(routes=[Route("/", page)]), runtime=runtime)
        calls = pool_calls(monkeypatch, middleware)
        headers = vip_cookie(mw, runtime)
        with mw.TestClient(middleware) as client:
            pages = [client.get("/", headers=headers).text for _ in range(executor_module.INLINE_STRIKES + 2)]
            counters = middleware.counters.snapshot()
    finally:
        runtime.close()
    assert all('data-segmint-campaign="vip"' in text for text in pages)  # slow, not failed
    # One slow decision may be a garbage collection pass: only repeated ones trip it.
    assert counters["failure.inline_slow"] == 1
    assert calls == ["personalize"] * 2  # the decisions after the trip


def test_a_loop_safe_plugin_that_blocks_past_the_budget_serves_the_page_and_opens_the_breaker(
        mw: Any, tmp_path: Any, monkeypatch: Any):
    runtime, strategy = slow_runtime(mw, tmp_path, loop_safe=True, budget=20)
    strategy.delay, strategy.sleep = 0.06, True  # blocks (no CPU) three times the budget
    try:
        middleware = SegmintMiddleware(Starlette(routes=[Route("/", page)]), runtime=runtime)
        calls = pool_calls(monkeypatch, middleware)
        headers = vip_cookie(mw, runtime)
        with mw.TestClient(middleware) as client:
            first = client.get("/", headers=headers)
            counters = middleware.counters.snapshot()
            strategy.delay = 0.0
            second = client.get("/", headers=headers)
    finally:
        runtime.close()
    assert first.status_code == 200 and first.text == PAGE  # unchanged: the budget ran out
    assert counters["failure.budget"] == 1 and counters["failure.inline_slow"] == 1
    assert 'data-segmint-campaign="vip"' in second.text
    assert calls == ["personalize"]  # the breaker is open: the next one used the pool


class ShopLogin:
    """A shop's identify plugin: the customer from a session header (a store lookup in real
    life, so not loop-safe unless it says so); records the thread it ran on."""

    def __init__(self, loop_safe: bool) -> None:
        self.threads: list[str] = []
        if loop_safe:
            self.segmint_loop_safe = True

    @hookimpl
    def segmint_identify_visitor(self, scope: Any, config: Any) -> Any:
        from segmint.engine.identity import Identity

        self.threads.append(threading.current_thread().name)
        for key, value in scope.get("headers") or ():
            if key == b"x-session":
                return Identity(visitor_id=value.decode(), customer_id=f"c-{value.decode()}")
        return None  # the built-in answers


def test_an_identify_plugin_that_may_block_runs_in_the_pool_and_a_loop_safe_one_on_the_loop(mw: Any, tmp_path: Any):
    from segmint.engine.runtime import Segmint

    for loop_safe in (False, True):
        plugin = ShopLogin(loop_safe)
        runtime = Segmint.from_config(mw.write_config(tmp_path), watch=False, extra_plugins=[plugin])
        try:
            assert runtime.identifies_on_loop is loop_safe
            middleware = SegmintMiddleware(Starlette(routes=[Route("/", page)]), runtime=runtime)
            with mw.TestClient(middleware) as client:
                client.get("/", headers={"accept": "text/html", "x-session": "s1"})
                client.get("/?_sgm=vip.default.home", headers={"accept": "text/html", "x-session": "s1"})
                loop_thread = client.portal.call(lambda: threading.current_thread().name)
            assert len(plugin.threads) == 3  # two pages and the click
            if loop_safe:
                assert set(plugin.threads) == {loop_thread}
            else:
                assert all(name.startswith("segmint") for name in plugin.threads), plugin.threads
            assert middleware.counters.get("clicks") == 1 and not middleware.counters.get("failure.identify")
        finally:
            runtime.close()
