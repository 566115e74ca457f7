"""Fixtures for the middleware tests: a real runtime from a tmp config, and fault doubles.

``make_runtime(...)`` builds the REAL ``Segmint`` runtime from a TOML file and a small catalog
written to ``tmp_path``. ``FaultyRuntime`` wraps a real runtime to inject faults (a decide
that raises or sleeps, a broken store) where that is cleaner than breaking files.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from segmint.engine.personalize import Personalizer

fx = sys.modules["segmint_tests_fixtures"]  # tests/fixtures.py, loaded by tests/conftest.py
TestClient = fx.TestClient  # re-exported to the tests (``mw.TestClient``)
SECRET, TOKEN, AUTH = fx.SECRET, fx.TOKEN, fx.AUTH
visitor_cookie, visitor_headers = fx.visitor_cookie, fx.visitor_headers

CATALOG = [
    {"sku": "serum-1", "name": "Glow Serum", "url": "/products/serum-1", "price": 30.0,
     "category": "skincare", "created_at": "2026-01-01T00:00:00Z"},
    {"sku": "lip-1", "name": "Lip <script>alert(1)</script> Tint", "url": "/products/lip-1",
     "price": 12.0, "category": "makeup", "created_at": "2026-02-01T00:00:00Z"},
    {"sku": "cream-1", "name": "Night Cream", "url": "/products/cream-1", "price": 45.0,
     "category": "skincare", "created_at": "2026-03-01T00:00:00Z"},
    {**fx.BIG_TV, "created_at": "2025-06-01T00:00:00Z"},
]


def write_config(tmp_path: Path, *, debug: bool = False, budget: int = 2000, max_body: int = 65536,
                 consent: bool = False, store: str | None = None, control: bool = False) -> Path:
    """The test shop's config (``fx.write_config``) on the slots ``cart``, ``home`` and ``pdp``;
    ``control=True`` puts every visitor of the default campaign in its holdout (a control variant)."""
    default = {"priority": "0"}
    if control:
        default["variants"] = '[{ name = "control", weight = 1, control = true }]'
    return fx.write_config(
        tmp_path, catalog=CATALOG, store=store,
        middleware={"debug_header": debug, "time_budget_ms": budget, "max_body_bytes": max_body,
                    "require_consent": consent},
        vip_slots=("cart", "home"), slots=("cart", "home", "pdp"), skus=("serum-1", "lip-1", "cream-1"),
        title="Popular <right> now", default=default)


@pytest.fixture
def make_runtime(tmp_path: Path) -> Callable[..., Any]:
    """Build a real runtime (closed after the test) from a config written with ``write_config``."""
    runtimes = fx.Runtimes()
    yield lambda **options: runtimes.start(write_config(tmp_path, **options))
    runtimes.close()


@pytest.fixture
def runtime(make_runtime: Callable[..., Any]) -> Any:
    return make_runtime()


class _FaultyPersonalizer(Personalizer):
    """The inner runtime's personalizer, with the faulty runtime's decision faults."""

    def __init__(self, faulty: FaultyRuntime) -> None:
        super().__init__(faulty._inner)
        self._faulty = faulty

    def decide(self, *args: Any, **kwargs: Any) -> Any:
        self._faulty._check_decide()
        return super().decide(*args, **kwargs)


class FaultyRuntime:
    """A real runtime with injectable faults; everything else is delegated."""

    #: Its ``decide`` may sleep: the middleware must not call it on the event loop.
    decides_on_loop = False

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.fail_decide: BaseException | None = None
        self.fail_profile: BaseException | None = None
        self.fail_record: BaseException | None = None
        self.sleep_decide = 0.0
        self.release = threading.Event()
        # The page's one call decides through ``_check_decide``, so the faults below apply.
        self.personalize = _FaultyPersonalizer(self).personalize

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def profile(self, **ids: Any) -> Any:
        if self.fail_profile is not None:
            raise self.fail_profile
        return self._inner.profile(**ids)

    def _check_decide(self) -> None:
        if self.fail_decide is not None:
            raise self.fail_decide
        if self.sleep_decide:
            # Real concurrency is the point: block past the budget (bounded, released at teardown).
            self.release.wait(self.sleep_decide)

    def decide(self, *args: Any, **kwargs: Any) -> Any:
        self._check_decide()
        return self._inner.decide(*args, **kwargs)

    def record(self, events: Any) -> Any:
        if self.fail_record is not None:
            raise self.fail_record
        return self._inner.record(events)


@pytest.fixture
def faulty(make_runtime: Callable[..., Any]) -> Any:
    fault = FaultyRuntime(make_runtime(budget=20))
    yield fault
    fault.release.set()


# -- raw ASGI helpers: byte-for-byte checks of what the middleware sends ----------------------
def http_scope(path: str = "/", *, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None,
               query: bytes = b"", scheme: str = "http") -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": scheme, "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "headers": headers if headers is not None else [(b"accept", b"text/html")],
        "client": ("127.0.0.1", 40000), "server": ("testserver", 80),
    }


def scripted_app(messages: list[dict[str, Any]]) -> Callable[..., Any]:
    """A raw ASGI app that sends exactly ``messages`` and records the scope it saw."""
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        for message in messages:
            await send(dict(message))

    app.seen = seen  # type: ignore[attr-defined]
    return app


def run_http(asgi: Callable[..., Any], scope: dict[str, Any], body: bytes = b"") -> list[dict[str, Any]]:
    """Run one HTTP request through ``asgi``; the messages it sent, in order."""
    import asyncio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asgi(scope, receive, send))
    return sent


def html_start(length: int | None = None, *extra: tuple[bytes, bytes], status: int = 200,
               content_type: bytes = b"text/html; charset=utf-8") -> dict[str, Any]:
    headers = [(b"content-type", content_type), *extra]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


def header_values(message: dict[str, Any], name: bytes) -> list[bytes]:
    return [v for k, v in message.get("headers", []) if k.lower() == name]


PAGE = (b"<!doctype html><html><head><title>Shop</title></head><body><h1>Welcome</h1>"
        b'<div class="recs" data-segmint-slot="cart"></div><p>footer</p></body></html>')


def flushed_profile(runtime: Any, **ids: Any) -> Any:
    """The profile after the background writer stored everything queued so far."""
    runtime.writer.flush(timeout=5)
    return runtime.profile(**ids)


def cookie_of(response: Any, name: str = "segmint_vid") -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return header.split(";")[0].split("=", 1)[1]
    return None


async def fallback(request: Any) -> Any:
    """The app behind the middleware in the API tests: every path answers "app"."""
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("app")


@pytest.fixture
def client(runtime: Any) -> Any:
    """A TestClient of ``fallback`` behind ``SegmintMiddleware`` on the ``runtime`` fixture
    (modules that need another app define their own ``client``)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from segmint.middleware import SegmintMiddleware

    app = Starlette(routes=[Route("/{path:path}", fallback)])
    app.add_middleware(SegmintMiddleware, runtime=runtime)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def auth() -> dict[str, str]:
    """The intake token's Authorization header."""
    return dict(fx.AUTH)


@pytest.fixture
def mw() -> Any:
    """This module: the helpers above (``mw.run_http``, ``mw.TestClient``, ``mw.SECRET``...).

    Tests import nothing from conftest directly (pytest runs with ``--import-mode=importlib``).
    """
    return sys.modules[__name__]
