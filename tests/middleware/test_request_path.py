"""The request path's shape (issue #21): which of segmint's modules one personalized page
runs through, and that no two of them call each other both ways.

A page is traced with ``sys.setprofile``: every call into a function defined under
``engine/``, ``plugins/`` or ``middleware/`` counts for its module (a C call, such as a
struct's constructor or a dict's ``get``, is no module's), and each call from one module into
another is an edge. The page is a returning visitor's, in a segment whose campaign shows a
widget, with caches warm (the second page): what most pages of a busy shop do.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

import segmint.engine
import segmint.middleware
import segmint.plugins
from segmint.engine.signing import new_visitor_id
from segmint.middleware import SegmintMiddleware

#: Most modules one personalized page may run through (plugins included: identification, the
#: strategy): issue #21's target (docs/architecture.md, "The request path", has a table of the
#: 15 and why each is on the way).
MAX_MODULES = 15

ROOTS = {Path(package.__file__).resolve().parent: name
         for package, name in ((segmint.engine, "engine"), (segmint.plugins, "plugins"),
                               (segmint.middleware, "middleware"))}


def _module(filename: str) -> str | None:
    path = Path(filename).resolve()
    for root, name in ROOTS.items():
        if path.is_relative_to(root):
            return f"{name}/{path.relative_to(root)}"
    return None


class CallGraph:
    """Calls into segmint's modules and the edges between them, from a profile hook."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.edges: Counter[tuple[str, str]] = Counter()
        self._names: dict[Any, str | None] = {}

    def _name(self, code: Any) -> str | None:
        try:
            return self._names[code]
        except KeyError:
            name = self._names[code] = _module(code.co_filename)
            return name

    def hook(self, frame: Any, event: str, arg: Any) -> None:
        if event != "call":
            return
        callee = self._name(frame.f_code)
        if callee is None:
            return
        self.calls[callee] += 1
        caller_frame = frame.f_back
        while caller_frame is not None and self._name(caller_frame.f_code) is None:
            caller_frame = caller_frame.f_back  # through Starlette and asyncio to our caller
        if caller_frame is not None and (caller := self._name(caller_frame.f_code)) != callee:
            self.edges[(caller, callee)] += 1

    @property
    def two_way_pairs(self) -> set[tuple[str, str]]:
        return {tuple(sorted(edge)) for edge in self.edges if (edge[1], edge[0]) in self.edges}  # type: ignore[misc]


def traced_page(mw: Any, runtime: Any) -> tuple[CallGraph, str]:
    page = mw.PAGE.decode().replace('data-segmint-slot="cart"', 'data-segmint-slot="home"')

    async def shop(request: Any) -> HTMLResponse:
        return HTMLResponse(page)

    visitor = new_visitor_id()
    runtime.record([{"type": "order", "visitor_id": visitor, "order_id": f"o-{visitor}", "total": 900.0,
                     "items": [{"sku": "tv-1", "price": 900.0, "quantity": 1}]}])
    middleware = SegmintMiddleware(Starlette(routes=[Route("/", shop)]), runtime=runtime)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "headers": [(b"host", b"shop"), (b"accept", b"text/html"),
                                                      *[(k.encode(), v.encode()) for k, v in
                                                        mw.visitor_headers(visitor).items()]]}
    graph = CallGraph()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def pages() -> None:
        for _ in range(3):  # warm: profile cached, widget rendered once
            await middleware(dict(scope), receive, send)
        sent.clear()
        sys.setprofile(graph.hook)
        threading.setprofile(graph.hook)
        try:
            await middleware(dict(scope), receive, send)
        finally:
            sys.setprofile(None)
            threading.setprofile(None)  # type: ignore[arg-type]

    asyncio.run(pages())
    assert middleware.services is not None
    middleware.services.executor.close()
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()
    return graph, body


def test_a_personalized_page_runs_through_few_modules_and_no_two_way_pair(mw: Any, runtime: Any):
    graph, body = traced_page(mw, runtime)
    assert 'data-segmint-campaign="vip"' in body  # the segment's widget: filter, strategy, render
    assert "engine/personalize.py" in graph.calls and "middleware/asgi.py" in graph.calls
    assert not graph.two_way_pairs, graph.two_way_pairs
    modules = sorted(graph.calls)
    assert len(modules) <= MAX_MODULES, ", ".join(f"{m} ({graph.calls[m]})" for m in modules)
