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
from os import PathLike
from typing import TYPE_CHECKING

from segmint.engine.runtime import Runtime
from segmint.engine.tracking import parse_click

from .asgi_types import ASGIApp, Message, Receive, Scope, Send
from .counters import Counters
from .endpoints import Endpoints, NotStarted, record_click
from .executor import Executor, Overloaded
from .responder import Responder
from .shared import Services, Settings
from .urls import CLICK_NEEDLE, split_click_param
from .visitors import InactiveState, SegmintState, Visitors

if TYPE_CHECKING:
    from segmint.engine.startup import RuntimeStarter

__all__ = ["SegmintMiddleware"]

logger = logging.getLogger("segmint.middleware")


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
        runtime: Runtime | None = None,
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
        self._starter: RuntimeStarter | None = None
        self._not_started: NotStarted | None = None
        #: The runtime, its ``Services`` and ``Endpoints``; None until the runtime has started.
        self.runtime: Runtime | None = None
        self.services: Services | None = None
        self.endpoints: Endpoints | None = None
        self._settings: Settings | None = None
        if runtime is None:
            from segmint.engine.startup import RuntimeStarter

            # Never raises: a runtime that cannot start is retried while the app is served.
            self._starter = RuntimeStarter(config)
            runtime = self._starter.runtime
            if runtime is None:
                self._not_started = NotStarted(self._starter, self.counters)
        if runtime is not None:
            self._adopt(runtime)

    def _adopt(self, runtime: Runtime) -> Services:
        """Serve with ``runtime`` from now on; say once what its config leaves switched off."""
        executor = Executor(self.counters, max_workers=self._max_workers)
        services = Services(runtime=runtime, counters=self.counters, executor=executor,
                            visitors=Visitors(runtime, executor))
        self.runtime, self.endpoints = runtime, Endpoints(services)
        self.services = services  # last: a request that sees the services sees the endpoints too
        from segmint.engine.config import config_warnings

        for warning in config_warnings(runtime.config):
            logger.warning("segmint: %s", warning)
        return services

    def _started(self) -> Services | None:
        """The ``Services`` once the starter has a runtime (adopted here, once), else None."""
        runtime = self._starter.runtime if self._starter is not None else None
        if runtime is None:
            return None
        with self._start_lock:
            return self.services if self.services is not None else self._adopt(runtime)

    def settings(self, services: Services) -> Settings:
        """The settings of the runtime's current config (recomputed when a reload swapped it)."""
        config = services.runtime.config
        settings = self._settings
        if settings is None or settings.config is not config:
            settings = self._settings = Settings(config)
        return settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        services = self.services
        if services is None and (services := self._started()) is None:
            await self._serve_not_started(scope, receive, send)
            return
        try:
            settings = self.settings(services)
        except Exception as exc:  # noqa: BLE001 - fail open
            self.counters.failure("settings", exc)
            await self.app(scope, receive, send)
            return
        # segmint's own API (errors there are segmint's own responses, not the app's).
        if scope["path"].startswith(settings.prefix) and await self.endpoints.handle(  # type: ignore[union-attr]
                scope, receive, send, settings):
            return
        state: SegmintState | None = None
        try:
            query = scope.get("query_string")
            if query and CLICK_NEEDLE in query:
                await self._strip_click(services, scope, settings)
            state = SegmintState(services.visitors, services.counters, scope, settings, scope["path"])
            scope.setdefault("state", {})["segmint"] = state
            if not services.runtime.identifies_on_loop:  # a plugin's identify may block: ask in the pool
                await state.identified()
            # Only GET pages are rewritten; other methods, and clients that said they take no
            # HTML (``Accept: application/json``), see request.state.segmint too.
            accept = _accept_kind(scope) if scope["method"] == "GET" else _NO_HTML
            responder = self._responder(services, state, scope, send, settings, accept) if accept else None
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

    def _responder(self, services: Services, state: SegmintState, scope: Scope, send: Send, settings: Settings,
                   accept: int) -> Responder:
        # Browser page loads: identify and start the profile load now, concurrently with the
        # app. Other clients (APIs, assets): only if the response turns out to be HTML.
        if accept == _PAGE:
            try:
                state.start_profile()
            except Overloaded:  # the pool is backed up: decide later, or not at all
                self.counters.incr("skipped.overloaded")
        return Responder(services, settings, state, scope, send)

    async def _strip_click(self, services: Services, scope: Scope, settings: Settings) -> None:
        """Record the widget click parameter and remove it before the app sees the URL."""
        query, value = split_click_param(scope["query_string"])
        if value is None:
            return
        scope["query_string"] = query
        product = settings.product_match(scope["path"])
        click = parse_click(value, product["sku"] if product else None)
        if click is not None:
            await record_click(services, scope, settings, click)

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
                elif self.runtime is not None:
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
