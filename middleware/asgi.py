"""``SegmintMiddleware``: the one line a shop adds to its ASGI app.

::

    app.add_middleware(SegmintMiddleware, config="segmint.toml")   # Starlette / FastAPI
    app = SegmintMiddleware(any_asgi_app, config="segmint.toml")     # any ASGI app

A pure ASGI middleware (not ``BaseHTTPMiddleware``): everything that does not depend on the
request is computed in ``__init__``; per-request state lives in a ``Responder`` and a
``SegmintState``. Non-HTTP scopes, non-GET requests and responses that are not HTML pass through
untouched. segmint fails open: any exception inside segmint leaves the app's response as it
was; an exception raised by the app propagates as usual. That includes the start: when the
runtime cannot be built from the config (config, catalog, plugins, store), the middleware is
"not started": every request goes to the app as if segmint were not there (with an inert
``request.state.segmint``), ``{prefix}/health`` answers 503 with the cause, and a
``RuntimeStarter`` retries until the files are mended or the store answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from os import PathLike
from typing import Any

from .context import Core, Overloaded
from .counters import Counters
from .endpoints import Endpoints, NotStarted, record_click
from .responder import Responder
from .state import InactiveState, SegmintState
from .tracking import CLICK_PARAM, parse_click, split_click_param

__all__ = ["SegmintMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("segmint.middleware")
_CLICK_NEEDLE = CLICK_PARAM.encode() + b"="


class SegmintMiddleware:
    """Identify visitors, fill widget slots in HTML pages, track, and serve segmint's API.

    :param app: the ASGI app to wrap.
    :param config: path of the config file; the runtime is built from it (and hot-reloaded).
    :param runtime: an already built ``segmint.engine.runtime.Segmint`` (tests, or to share one
        runtime between apps); exactly one of ``config`` and ``runtime`` is given.
    :param max_workers: threads for blocking work (profile loads, decisions).
    :param shutdown_timeout: at most this many seconds to flush events on lifespan shutdown.
    """

    def __init__(
        self,
        app: ASGIApp,
        config: str | PathLike[str] | None = None,
        *,
        runtime: Any = None,
        max_workers: int = 8,
        shutdown_timeout: float = 10.0,
    ) -> None:
        if (config is None) == (runtime is None):
            raise TypeError("SegmintMiddleware needs exactly one of config=... or runtime=...")
        self.app = app
        self.counters = Counters()
        self.shutdown_timeout = shutdown_timeout
        self._closed = False
        self._max_workers = max_workers
        self._start_lock = threading.Lock()
        #: Set while the runtime has not started (``config=`` only); see ``_started``.
        self._starter: Any = None
        self._not_started: NotStarted | None = None
        #: The runtime, its ``Core`` and ``Endpoints``; None until the runtime has started.
        self.runtime: Any = None
        self.core: Core | None = None
        self.endpoints: Endpoints | None = None
        if runtime is None:
            from segmint.engine.startup import RuntimeStarter

            # Never raises: a runtime that cannot start is retried while the app is served.
            self._starter = RuntimeStarter(config)
            runtime = self._starter.runtime
            if runtime is None:
                self._not_started = NotStarted(self._starter, self.counters)
        if runtime is not None:
            self._adopt(runtime)

    def _adopt(self, runtime: Any) -> Core:
        """Serve with ``runtime`` from now on; say once what its config leaves switched off."""
        core = Core(runtime, max_workers=self._max_workers, counters=self.counters)
        self.runtime, self.endpoints = runtime, Endpoints(core)
        self.core = core  # last: a request that sees a Core sees its endpoints too
        from segmint.engine.config import config_warnings

        for warning in config_warnings(runtime.config):
            logger.warning("segmint: %s", warning)
        return core

    def _started(self) -> Core | None:
        """The ``Core`` once the starter has a runtime (adopted here, once), else None."""
        runtime = self._starter.runtime if self._starter is not None else None
        if runtime is None:
            return None
        with self._start_lock:
            return self.core if self.core is not None else self._adopt(runtime)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        core = self.core
        if core is None and (core := self._started()) is None:
            await self._serve_not_started(scope, receive, send)
            return
        try:
            settings = core.settings()
        except Exception as exc:  # noqa: BLE001 - fail open
            self.counters.failure("settings", exc)
            await self.app(scope, receive, send)
            return
        # segmint's own API (errors there are segmint's own responses, not the app's).
        if scope["path"].startswith(settings.prefix) and await self.endpoints.handle(scope, receive, send, settings):
            return
        state: SegmintState | None = None
        try:
            query = scope.get("query_string")
            if query and _CLICK_NEEDLE in query:
                self._strip_click(scope, settings)
            state = SegmintState(core, scope, settings.config, scope["path"])
            scope.setdefault("state", {})["segmint"] = state
            # Only GET pages are rewritten; other methods, and clients that said they take no
            # HTML (``Accept: application/json``), see request.state.segmint too.
            accept = _accept_kind(scope) if scope["method"] == "GET" else _NO_HTML
            responder = self._responder(state, scope, send, settings, accept) if accept else None
        except Exception as exc:  # noqa: BLE001 - fail open: the app answers as if we were not here
            self.counters.failure("request", exc)
            responder = None
        try:
            if responder is None:
                await self.app(scope, receive, send)
                return
            try:
                await self.app(scope, receive, responder)
            except BaseException:
                with contextlib.suppress(Exception):  # the app's error is the one that matters
                    await responder.close()
                raise
            await responder.close()
        finally:
            if state is not None:
                state.release()

    async def _serve_not_started(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's own response, as if segmint were not installed, except segmint's API
        paths (``NotStarted``). The app still finds ``request.state.segmint`` (inert)."""
        assert self._not_started is not None  # set when the first attempt failed
        if await self._not_started.handle(scope, receive, send):
            return
        self.counters.incr("skipped.not_started")
        scope.setdefault("state", {})["segmint"] = InactiveState(scope["path"])
        await self.app(scope, receive, send)

    def _responder(self, state: SegmintState, scope: Scope, send: Send, settings: Any,
                   accept: int) -> Responder:
        # Browser page loads: identify and start the profile load now, concurrently with the
        # app. Other clients (APIs, assets): only if the response turns out to be HTML.
        if accept == _PAGE:
            try:
                state.start_profile()
            except Overloaded:  # the pool is backed up: decide later, or not at all
                self.counters.incr("skipped.overloaded")
        return Responder(self.core, settings, state, scope, send)

    def _strip_click(self, scope: Scope, settings: Any) -> None:
        """Record the widget click parameter and remove it before the app sees the URL."""
        query, value = split_click_param(scope["query_string"])
        if value is None:
            return
        scope["query_string"] = query
        match = settings.product_re.match(scope["path"]) if settings.product_re else None
        click = parse_click(value, match["sku"] if match else None)
        if click is not None:
            record_click(self.core, scope, settings, click)

    # -- lifespan ----------------------------------------------------------------------------
    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass lifespan to the app; flush pending events on shutdown.

        If the app does not speak lifespan (raises or returns without answering), segmint
        answers the protocol itself, so the server still tells it when to flush.
        """
        answered: set[str] = set()
        received: list[str] = []

        async def tracking_receive() -> Message:
            message = await receive()
            received.append(message["type"])
            return message

        async def flushing_send(message: Message) -> None:
            answered.add(message["type"])
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self._shutdown()
            await send(message)

        try:
            await self.app(scope, tracking_receive, flushing_send)
        except Exception:
            if answered:  # the app speaks lifespan and failed: its error, after our flush
                await self._shutdown()
                raise
        else:
            if answered:
                await self._shutdown()
                return
        # The app does not handle lifespan: answer it ourselves.
        if "lifespan.startup" not in received:
            await receive()
        await send({"type": "lifespan.startup.complete"})
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        await self._shutdown()
        await send({"type": "lifespan.shutdown.complete"})

    async def _shutdown(self) -> None:
        """Flush the event writer (idempotent), waiting at most ``shutdown_timeout`` seconds.

        ``runtime.close()`` blocks (it flushes to the store), so it runs in its own daemon
        thread: a store that hangs cannot keep the server from stopping, nor the process from
        exiting (a pool thread would be joined at exit).
        """
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        done: asyncio.Future[BaseException | None] = loop.create_future()

        def report(error: BaseException | None) -> None:
            if not done.done():
                done.set_result(error)

        def close() -> None:
            error: BaseException | None = None
            try:
                if self._starter is not None:
                    self._starter.close()  # stops retrying; closes the runtime it started, if any
                else:
                    self.runtime.close()
            except Exception as exc:  # noqa: BLE001 - reported on the loop
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop may be gone already
                loop.call_soon_threadsafe(report, error)

        threading.Thread(target=close, name="segmint-shutdown", daemon=True).start()
        try:
            error = await asyncio.wait_for(asyncio.shield(done), self.shutdown_timeout)
        except (asyncio.TimeoutError, TimeoutError):
            error = TimeoutError(f"flushing events took longer than {self.shutdown_timeout} s")
        if error is not None:
            self.counters.failure("shutdown", error)


#: What a request's Accept header says of HTML (``_accept_kind``): none of it (the response
#: is never a page to fill), maybe (no header, ``*/*``, ``text/*``), or a page load.
_NO_HTML, _MAYBE, _PAGE = 0, 1, 2
_ACCEPT_KINDS: dict[bytes, int] = {}
_ACCEPT_KINDS_MAX = 512


def _accept_kind(scope: Scope) -> int:
    """``_NO_HTML`` when the client's Accept header rules HTML out (``application/json``, an
    image type): such a response's ``send`` is not even wrapped. ``_PAGE`` when it asks for
    HTML by name (a browser's page load), else ``_MAYBE``.

    Clients send a handful of distinct Accept values, so the answer is remembered per value.
    """
    for key, value in scope.get("headers") or ():
        if key == b"accept":
            break
    else:
        return _MAYBE
    kind = _ACCEPT_KINDS.get(value)
    if kind is None:
        lower = value.lower()
        kind = (_PAGE if b"text/html" in lower
                else _MAYBE if b"html" in lower or b"*/*" in lower or b"text/*" in lower
                else _NO_HTML)
        if len(_ACCEPT_KINDS) >= _ACCEPT_KINDS_MAX:
            _ACCEPT_KINDS.clear()
        _ACCEPT_KINDS[value] = kind
    return kind
