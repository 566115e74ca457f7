"""ASGI lifespan: passed to the app, and pending events flushed on shutdown."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.applications import Starlette
from starlette.responses import HTMLResponse as StarletteHTML
from starlette.routing import Route

from segmint.engine.signing import verify
from segmint.middleware import SegmintMiddleware

PLAIN = "<html><body>no slots here</body></html>"


def hold_events(runtime: Any) -> None:
    """Make the writer wait (up to a minute) before writing: only a flush writes now."""
    runtime.writer.flush_interval = 60.0
    runtime.writer.batch_size = 10_000


def reopened_page_views(make_runtime: Any, visitor_id: str) -> int:
    fresh = make_runtime()  # same tmp config, same store file
    return fresh.profile(visitor_id=visitor_id).page_views


def test_shutdown_flushes_pending_events(mw: Any, runtime: Any, make_runtime: Any):
    calls: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        calls.append("startup")
        yield
        calls.append("shutdown")

    async def page(request: Any) -> StarletteHTML:
        return StarletteHTML(PLAIN)

    app = Starlette(routes=[Route("/", page)], lifespan=lifespan)
    app.add_middleware(SegmintMiddleware, runtime=runtime)
    hold_events(runtime)
    with mw.TestClient(app) as client:
        visitor_id = verify(mw.cookie_of(client.get("/")), mw.SECRET)
        client.get("/")
        client.get("/")
        assert runtime.writer.stats["pending"] == 3
        assert calls == ["startup"]
    assert calls == ["startup", "shutdown"]
    assert reopened_page_views(make_runtime, visitor_id) == 3


async def raw_page(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = PLAIN.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def app_without_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope {scope['type']}")
    await raw_page(scope, receive, send)


async def app_ignoring_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await raw_page(scope, receive, send)


@pytest.mark.parametrize("app", [app_without_lifespan, app_ignoring_lifespan])
def test_apps_without_lifespan_still_flush(mw: Any, runtime: Any, make_runtime: Any, app: Any):
    hold_events(runtime)
    with mw.TestClient(SegmintMiddleware(app, runtime=runtime)) as client:
        response = client.get("/")
        assert response.text == PLAIN
        visitor_id = verify(mw.cookie_of(response), mw.SECRET)
    assert reopened_page_views(make_runtime, visitor_id) == 1


def test_failing_startup_of_the_app_propagates(mw: Any, runtime: Any):
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        raise ConnectionError("database down")
        yield  # pragma: no cover

    app = Starlette(lifespan=lifespan)
    with pytest.raises(ConnectionError, match="database down"):
        with mw.TestClient(SegmintMiddleware(app, runtime=runtime)):
            pass  # pragma: no cover


def test_fastapi_app(mw: Any, runtime: Any):
    api = FastAPI()

    @api.get("/", response_class=HTMLResponse)
    async def home() -> str:
        return '<html><div data-segmint-slot="home"></div></html>'

    @api.get("/api/items")
    async def items() -> list[int]:
        return [1, 2, 3]

    @api.get("/who")
    async def who(request: Request) -> dict[str, Any]:
        return {"new": request.state.segmint.identity.is_new}

    api.add_middleware(SegmintMiddleware, runtime=runtime)
    with mw.TestClient(api) as client:
        page = client.get("/")
        assert 'data-segmint-campaign="default"' in page.text
        assert client.get("/api/items").content == b"[1,2,3]"
        assert client.get("/who").json() == {"new": False}


def test_a_hanging_flush_does_not_keep_the_server_from_stopping(mw: Any, faulty: Any):
    closing = threading.Event()

    def hanging_close() -> None:
        closing.set()
        faulty.release.wait(5)  # released at teardown

    faulty.close = hanging_close
    segmint = SegmintMiddleware(app_ignoring_lifespan, runtime=faulty, shutdown_timeout=0.05)
    with mw.TestClient(segmint) as client:
        assert client.get("/").text == PLAIN
    assert closing.is_set()
    assert segmint.counters.get("failure.shutdown") == 1


def test_config_path_builds_and_closes_its_own_runtime(mw: Any, tmp_path: Any):
    segmint = SegmintMiddleware(app_ignoring_lifespan, config=mw.write_config(tmp_path))
    with mw.TestClient(segmint) as client:
        assert client.get("/").text == PLAIN
    with pytest.raises(Exception, match="closed"):
        segmint.runtime.profile(visitor_id="x" * 22)
