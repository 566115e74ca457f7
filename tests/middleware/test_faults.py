"""Fail open: whatever breaks inside segmint, the page goes out as the app made it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segmint.engine.errors import StoreError
from segmint.engine.hooks import hookimpl
from segmint.middleware import SegmintMiddleware

PAGE = '<html><body><div data-segmint-slot="cart"></div></body></html>'


async def page(request: Any) -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"etag": '"e1"'})


async def boom(request: Any) -> HTMLResponse:
    raise RuntimeError("the app's own bug")


def returning(mw: Any) -> str:
    return mw.visitor_cookie()


def client_for(mw: Any, runtime: Any) -> Any:
    app = Starlette(routes=[Route("/", page), Route("/boom", boom)])
    return mw.TestClient(SegmintMiddleware(app, runtime=runtime))


@pytest.mark.parametrize("fault", ["decide", "profile"])
def test_runtime_that_raises_serves_the_page_unchanged(mw: Any, faulty: Any, fault: str, caplog: Any):
    setattr(faulty, f"fail_{fault}", StoreError("database disk image is malformed", store="x.db"))
    with caplog.at_level(logging.WARNING, logger="segmint.middleware"), client_for(mw, faulty) as client:
        # Returning visitors (a valid cookie each): their profile must come from the store.
        responses = [client.get("/", headers={"accept": "text/html", "cookie": returning(mw)}) for _ in range(3)]
        counters = client.app.counters.snapshot()
    for response in responses:
        assert response.status_code == 200 and response.text == PAGE
        assert response.headers["etag"] == '"e1"'
    assert counters["failure.decide"] == 3
    # Logged once per cause, not once per request.
    assert len([r for r in caplog.records if "failed open" in r.getMessage()]) == 1


def test_runtime_slower_than_the_budget_serves_the_page_unchanged(mw: Any, faulty: Any):
    faulty.sleep_decide = 2.0  # the budget is 20 ms; released at teardown
    with client_for(mw, faulty) as client:
        response = client.get("/", headers={"cookie": returning(mw)})
        assert client.app.counters.get("failure.budget") == 1
    assert response.status_code == 200 and response.text == PAGE


def test_identify_plugin_that_raises_serves_the_page_unchanged(mw: Any, runtime: Any):
    class Broken:
        @hookimpl
        def segmint_identify_visitor(self, scope: Any, config: Any) -> Any:
            raise ValueError("bad JWT library")

    runtime.pm.register(Broken())
    with client_for(mw, runtime) as client:
        response = client.get("/")
    assert response.text == PAGE and "set-cookie" not in response.headers


def test_identify_plugin_returning_garbage_serves_the_page_unchanged(mw: Any, runtime: Any):
    class Garbage:
        @hookimpl
        def segmint_identify_visitor(self, scope: Any, config: Any) -> Any:
            return "visitor-1"

    runtime.pm.register(Garbage())
    with client_for(mw, runtime) as client:
        assert client.get("/").text == PAGE


def test_renderer_that_raises_serves_the_page_unchanged(mw: Any, runtime: Any):
    class BadRenderer:
        @hookimpl
        def segmint_render_widget(self, slot_decision: Any, config: Any) -> Any:
            raise KeyError("template")

    runtime.pm.register(BadRenderer())
    with client_for(mw, runtime) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == PAGE or "data-segmint-campaign" in response.text  # skipped or default renderer


def test_an_exception_of_the_app_still_propagates(mw: Any, runtime: Any):
    with client_for(mw, runtime) as client, pytest.raises(RuntimeError, match="the app's own bug"):
        client.get("/boom")


def test_failed_tracking_does_not_break_the_page(mw: Any, runtime: Any, monkeypatch: Any):
    def broken_submit(events: Any) -> None:
        raise OSError("queue gone")

    monkeypatch.setattr(runtime.writer, "submit", broken_submit)
    with client_for(mw, runtime) as client:
        response = client.get("/")
    assert response.status_code == 200 and "data-segmint-campaign" in response.text


def test_counters_rate_limit_logging_per_cause(caplog: Any):
    from segmint.middleware.counters import Counters

    now = [0.0]
    counters = Counters(log_interval=60, timer=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="segmint.middleware"):
        assert counters.failure("budget") is True
        assert counters.failure("budget") is False
        assert counters.failure("decide", OSError("x")) is True
        now[0] = 61
        assert counters.failure("budget") is True
    assert counters.get("failure.budget") == 3 and counters.get("failures") == 4
    assert "1 more since last logged" in caplog.records[-1].getMessage()
