"""What the middleware must not touch, checked message by message on raw ASGI apps."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segmint.middleware import SegmintMiddleware


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


@pytest.fixture
def wrap(runtime: Any) -> Any:
    def make(app: Any) -> SegmintMiddleware:
        return SegmintMiddleware(app, runtime=runtime)

    return make


def test_json_passes_byte_for_byte(mw: Any, wrap: Any):
    payload = b'{"html": "<div data-segmint-slot=\\"cart\\"></div>"}'
    messages = [{"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]},
                body(payload)]
    sent = mw.run_http(wrap(mw.scripted_app(messages)), mw.http_scope("/api"))
    assert sent == messages


def test_head_passes_through(mw: Any, wrap: Any):
    messages = [mw.html_start(len(mw.PAGE)), body(b"")]
    sent = mw.run_http(wrap(mw.scripted_app(messages)), mw.http_scope(method="HEAD"))
    assert sent == messages


def test_a_page_with_content_encoding_is_untouched(mw: Any, wrap: Any):
    compressed = gzip.compress(mw.PAGE)
    messages = [mw.html_start(len(compressed), (b"content-encoding", b"gzip")), body(compressed)]
    sent = mw.run_http(wrap(mw.scripted_app(messages)), mw.http_scope())
    assert sent[1:] == messages[1:]
    assert sent[0]["headers"][:3] == messages[0]["headers"]  # a new visitor's cookie may follow


def test_gzip_middleware_inside_is_untouched(mw: Any, runtime: Any):
    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse(mw.PAGE.decode() + "<!--" + "padding " * 200 + "-->")

    app = Starlette(routes=[Route("/", page)])
    app.add_middleware(GZipMiddleware, minimum_size=100)
    app.add_middleware(SegmintMiddleware, runtime=runtime)
    with mw.TestClient(app) as client:
        response = client.get("/", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.text.startswith(mw.PAGE.decode()[:-len("</body></html>")])
    assert "data-segmint-campaign" not in response.text


def test_page_larger_than_the_bound_is_untouched(mw: Any, wrap: Any):
    big = mw.PAGE + b"<!--" + b"x" * 70_000 + b"-->"
    messages = [mw.html_start(len(big)), body(big)]
    sent = mw.run_http(wrap(mw.scripted_app(messages)), mw.http_scope())
    assert sent[1:] == messages[1:] and mw.header_values(sent[0], b"content-length") == [b"%d" % len(big)]


def test_streaming_beyond_the_bound_flushes_everything_untouched(mw: Any, wrap: Any):
    chunks = [mw.PAGE[:50], mw.PAGE[50:], b"y" * 40_000, b"z" * 40_000, b"tail"]
    messages = [mw.html_start()] + [body(c, more=True) for c in chunks[:-1]] + [body(chunks[-1])]
    sent = mw.run_http(wrap(mw.scripted_app(messages)), mw.http_scope())
    assert sent[0]["status"] == 200
    assert b"".join(m["body"] for m in sent[1:]) == b"".join(chunks)
    assert [m.get("more_body", False) for m in sent[1:]][-1] is False
    assert b"data-segmint-campaign" not in b"".join(m["body"] for m in sent[1:])


def test_streaming_within_the_bound_is_filled(mw: Any, wrap: Any):
    chunks = [mw.PAGE[:60], mw.PAGE[60:100], mw.PAGE[100:]]
    messages = [mw.html_start()] + [body(c, more=True) for c in chunks[:-1]] + [body(chunks[-1])]
    sent = mw.run_http(wrap(mw.scripted_app(messages)), mw.http_scope())
    assert len(sent) == 2
    assert b'data-segmint-campaign="default"' in sent[1]["body"]
    assert mw.header_values(sent[0], b"content-length") == [b"%d" % len(sent[1]["body"])]


def test_pathsend_passes_through(mw: Any, wrap: Any):
    messages = [mw.html_start(len(mw.PAGE)), {"type": "http.response.pathsend", "path": "/srv/index.html"}]
    sent = mw.run_http(wrap(mw.scripted_app(messages)), mw.http_scope())
    assert sent[0]["status"] == 200 and sent[1:] == messages[1:]


def test_event_stream_and_non_200_and_non_utf8_pages_are_untouched(mw: Any, wrap: Any):
    for start in (mw.html_start(len(mw.PAGE), content_type=b"text/event-stream"),
                  mw.html_start(len(mw.PAGE), status=500),
                  mw.html_start(len(mw.PAGE), content_type=b"text/html; charset=utf-16")):
        sent = mw.run_http(wrap(mw.scripted_app([start, body(mw.PAGE)])), mw.http_scope())
        assert sent[1]["body"] == mw.PAGE


def test_latin1_page_gets_the_widget_in_its_charset(mw: Any, wrap: Any):
    page = "<p>Caf\xe9</p>".encode("latin-1") + mw.PAGE
    start = mw.html_start(len(page), content_type=b"text/html; charset=ISO-8859-1")
    sent = mw.run_http(wrap(mw.scripted_app([start, body(page)])), mw.http_scope())
    assert sent[1]["body"].startswith(b"<p>Caf\xe9</p>") and b"data-segmint-campaign" in sent[1]["body"]


def test_websocket_and_other_scopes_pass_through(mw: Any, wrap: Any):
    import asyncio

    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "websocket.close"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    asyncio.run(wrap(app)({"type": "websocket", "path": "/ws", "headers": []}, receive, send))
    assert sent == [{"type": "websocket.close"}] and seen[0]["path"] == "/ws"


def test_raw_asgi_app_gets_the_widget(mw: Any, wrap: Any):
    messages = [mw.html_start(len(mw.PAGE), (b"x-app", b"1")), body(mw.PAGE)]
    scripted = mw.scripted_app(messages)
    states: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        states.append(scope["state"].get("segmint"))  # what the app sees while it runs
        await scripted(scope, receive, send)

    sent = mw.run_http(wrap(app), mw.http_scope())
    assert b'data-segmint-campaign="default"' in sent[1]["body"]
    assert mw.header_values(sent[0], b"x-app") == [b"1"]
    assert mw.header_values(sent[0], b"set-cookie")[0].startswith(b"segmint_vid=")
    assert type(states[0]).__name__ == "SegmintState" and states[0].identity.visitor_id


def test_app_that_never_finishes_its_body_gets_what_it_sent(mw: Any, wrap: Any):
    messages = [mw.html_start(), body(mw.PAGE[:20], more=True)]
    sent = mw.run_http(wrap(mw.scripted_app(messages)), mw.http_scope())
    assert b"".join(m.get("body", b"") for m in sent[1:]) == mw.PAGE[:20]


def test_messages_before_the_start_are_forwarded_and_the_page_still_filled(mw: Any, wrap: Any):
    debug = {"type": "http.response.debug", "info": {"template": "home.html"}}
    sent = mw.run_http(wrap(mw.scripted_app([debug, mw.html_start(len(mw.PAGE)), body(mw.PAGE)])), mw.http_scope())
    assert sent[0] == debug
    assert b'data-segmint-campaign="default"' in sent[2]["body"]


@pytest.mark.parametrize(("path", "accept", "messages"), [
    ("/api", b"application/json", [{"type": "http.response.start", "status": 200,
                                    "headers": [(b"content-type", b"application/json")]}, body(b"{}")]),
    ("/", b"text/html", None),  # a page with a slot: identify, decide, fill, track
])
def test_a_request_leaves_no_reference_cycle_behind(mw: Any, wrap: Any, path: str, accept: bytes,
                                                    messages: Any):
    """Requests must be freed by reference counting: garbage cycles make the collector run
    every few hundred requests and walk the cached profiles when they reach old generations."""
    import gc

    app = wrap(mw.scripted_app(messages or [mw.html_start(len(mw.PAGE)), body(mw.PAGE)]))
    scope = mw.http_scope(path, headers=[(b"accept", accept)])
    sent = mw.run_http(app, dict(scope))  # warm up: imports, caches, the pool's threads
    if messages is None:
        assert b"data-segmint-campaign" in sent[-1]["body"]  # the slot was filled: the full path ran
    seen: list[Any] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            request = dict(scope)
            mw.run_http(app, request)
            seen.append(request["state"].get("segmint"))
        gc.collect()
        cycles = [o for o in gc.garbage if type(o).__name__ in ("SegmintState", "Responder")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cycles == []
    assert seen == [None, None, None]  # the request is over: the scope no longer holds it
