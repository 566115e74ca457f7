"""A small shop behind the real middleware, so the docs show answers the code really gives.

The HTTP examples of the reference pages are requests to this shop, answered by
``SegmintMiddleware`` over a real runtime (in-memory store, frozen clock): when the code's
answers change, regenerating the docs shows the new ones.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from segmint.engine.clock import FrozenClock
from segmint.engine.runtime import Segmint

from ..asgi import SegmintMiddleware

__all__ = ["TOKEN", "NOW", "CATALOG", "CONFIG", "Exchange", "request", "exchanges"]

TOKEN = "intake-token-example"
NOW = "2026-03-01T12:00:00+00:00"
CATALOG = [
    {"sku": "serum-1", "name": "Glow Serum", "url": "/products/serum-1", "price": 30.0,
     "compare_at_price": 36.0, "category": "skincare"},
    {"sku": "cream-1", "name": "Night Cream", "url": "/products/cream-1", "price": 45.0,
     "category": "skincare", "image": "/img/cream-1.jpg", "stock": 12},
]
CONFIG = f"""\
[store]
path = ":memory:"

[identity]
secret = "docs-example-secret-0123"

[api]
token = "{TOKEN}"

[catalog]
path = "catalog.json"

[[campaigns]]
id = "welcome"
slots = ["home"]
strategy = "manual"
params = {{ skus = ["serum-1", "cream-1"] }}
title = "Picked for you"
coupon = {{ code = "WELCOME10", percent = 10 }}
"""


class Exchange(msgspec.Struct, frozen=True):
    """One request to the shop and segmint's answer."""

    method: str
    target: str                       # path and query string
    headers: tuple[tuple[str, str], ...]
    body: bytes
    status: int
    answer: Any                       # the decoded JSON body


class _Request(msgspec.Struct, frozen=True):
    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


def request(method: str, target: str, *, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> _Request:
    """A request for ``exchanges``."""
    return _Request(method, target, tuple(headers), body)


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _send(mw: SegmintMiddleware, req: _Request) -> Exchange:
    path, _, query = req.target.partition("?")
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": req.body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    headers = [(k.lower().encode(), v.encode()) for k, v in req.headers]
    if req.body:
        headers.append((b"content-length", str(len(req.body)).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": req.method,
             "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "root_path": "", "headers": headers, "client": ("192.0.2.10", 50000),
             "server": ("shop.example", 443)}
    await mw(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return Exchange(req.method, req.target, req.headers, req.body, sent[0]["status"], json.loads(body))


def exchanges(requests: Sequence[_Request]) -> list[Exchange]:
    """Send ``requests`` in order to a fresh example shop; its answers."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "catalog.json").write_text(json.dumps(CATALOG), encoding="utf-8")
        config = Path(folder, "segmint.toml")
        config.write_text(CONFIG, encoding="utf-8")
        runtime = Segmint.from_config(config, clock=FrozenClock(NOW), watch=False)
        mw = SegmintMiddleware(_no_app, runtime=runtime)
        try:
            return asyncio.run(_all(mw, requests))
        finally:
            assert mw.services is not None
            mw.services.executor.close()
            runtime.close()


async def _all(mw: SegmintMiddleware, requests: Sequence[_Request]) -> list[Exchange]:
    return [await _send(mw, req) for req in requests]
