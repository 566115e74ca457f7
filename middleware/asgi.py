"""``SegmintMiddleware``: the one line a shop adds to its ASGI app.

::

    app.add_middleware(SegmintMiddleware, config="segmint.toml")   # Starlette / FastAPI
    app = SegmintMiddleware(any_asgi_app, config="segmint.toml")     # any ASGI app

A pure ASGI middleware (not ``BaseHTTPMiddleware``): everything that does not depend on the
request is computed in ``__init__``; per-request state lives in a ``Responder`` (the ``send``
wrapper, below, as Starlette keeps its ``GZipResponder`` beside its middleware) and a
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
from datetime import datetime
from os import PathLike
from typing import TYPE_CHECKING

from segmint.engine.decide import Decision
from segmint.engine.events import Event, PageView
from segmint.engine.personalize import PageVisit, Personalization
from segmint.engine.profile import Profile
from segmint.engine.runtime import Runtime
from segmint.engine.tracking import impression_event, parse_click, product_view_event

from .asgi_types import ASGIApp, Message, Receive, Scope, Send
from .counters import Counters
from .endpoints import Endpoints, NotStarted, record_click
from .executor import Executor, Overloaded
from .headers import debug_value, html_charset, merge_vary, private_cache_control
from .html import fill_slots, scan_page
from .shared import Services, Settings
from .urls import CLICK_NEEDLE, split_click_param
from .visitors import UNIDENTIFIED, InactiveState, SegmintState, Visitors

if TYPE_CHECKING:
    from segmint.engine.startup import RuntimeStarter

__all__ = ["SegmintMiddleware", "Responder"]

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
        config = services.runtime.state.config
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


# -- the send wrapper of a page: hold the start, buffer bounded HTML, fill the slots ----------

#: What a ``Responder`` does with the messages it is sent: wait for the start, buffer, pass on.
_WAIT, _BUFFER, _PASS = 0, 1, 2


class Responder:
    """Wraps ``send`` for one GET request. Per-request state lives here, never on the middleware."""

    __slots__ = ("services", "settings", "state", "scope", "send", "mode", "start", "chunks", "size", "charset")

    def __init__(self, services: Services, settings: Settings, state: SegmintState, scope: Scope,
                 send: Send) -> None:
        self.services = services
        self.settings = settings
        self.state = state
        self.scope = scope
        self.send = send
        self.mode = _WAIT
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.charset = "utf-8"

    async def __call__(self, message: Message) -> None:
        if self.mode == _PASS:
            await self.send(message)
            return
        kind = message["type"]
        if kind == "http.response.start":
            await self._on_start(message)
        elif kind == "http.response.body" and self.mode == _BUFFER:
            await self._on_body(message)
        elif self.mode == _WAIT:  # before the start (``http.response.debug`` of test clients)
            await self.send(message)
        else:  # pathsend, trailers...: stop interfering
            await self._flush(message)

    # -- response start ----------------------------------------------------------------------
    async def _on_start(self, message: Message) -> None:
        try:
            verdict = await self._classify(message)
        except Exception as exc:  # noqa: BLE001 - fail open
            self.services.counters.failure("start", exc)
            verdict = "other"
        if verdict == "buffer":
            self.start = message
            self.mode = _BUFFER
            return
        self.mode = _PASS
        if verdict == "html":  # HTML we cannot rewrite: cookie and page view, body untouched
            message = self._passthrough_start(message)
        await self.send(message)

    async def _classify(self, message: Message) -> str:
        """``"buffer"`` (an HTML page to fill), ``"html"`` (HTML to leave as is: compressed,
        too large, an unknown charset) or ``"other"``."""
        if message["status"] != 200:
            return "other"
        headers = message.get("headers") or ()
        # Cheap exit first (JSON, assets): header names are lowercase in practice (ASGI servers
        # and Starlette lowercase them); other spellings take the slower full pass below.
        for key, value in headers:
            if key == b"content-type":
                if value[:9].lower() != b"text/html":
                    return "other"
                break
        content_type = b""
        encoded = False
        length = -1
        for key, value in headers:
            key = key.lower()
            if key == b"content-type":
                content_type = value
            elif key == b"content-encoding":
                encoded = value.strip().lower() not in (b"", b"identity")
            elif key == b"content-length":
                length = int(value)
        if content_type[:9].lower() != b"text/html":
            return "other"
        await self.state.refresh_identity()
        if self.state.identity is UNIDENTIFIED:  # identification failed: hands off
            return "other"
        charset = html_charset(content_type)
        if encoded or charset is None or length > self.settings.max_body:
            return "html"
        self.charset = charset
        try:
            self.state.start_profile()
        except Overloaded:  # the pool is backed up; _finish tries once more, then gives up
            pass
        return "buffer"

    def _passthrough_start(self, message: Message) -> Message:
        try:
            now = self.services.runtime.clock()
            product = self.settings.product_match(self.state.path)
            self._track(product["sku"] if product else None, self.state.page_view(now), None, now)
            extra = self._cookie_header()
            if extra is None:
                return message
            headers = [
                (k, private_cache_control(v) if k.lower() == b"cache-control" else v)
                for k, v in message.get("headers") or ()
            ]
            if not any(k.lower() == b"cache-control" for k, _ in headers):
                headers.append((b"cache-control", b"private"))
            headers.append(extra)
            return {**message, "headers": headers}
        except Exception as exc:  # noqa: BLE001 - fail open
            self.services.counters.failure("passthrough", exc)
            return message

    def _cookie_header(self) -> tuple[bytes, bytes] | None:
        identity = self.state.identity
        if not identity.is_new or not identity.cookie_value:
            return None
        return b"set-cookie", self.settings.set_cookie(identity.cookie_value, self.scope.get("scheme", "http"))

    # -- body --------------------------------------------------------------------------------
    async def _on_body(self, message: Message) -> None:
        body = message.get("body", b"")
        more = message.get("more_body", False)
        self.size += len(body)
        if self.size > self.settings.max_body:  # beyond the bound: everything goes out as is
            self.chunks.append(body)
            self.services.counters.incr("skipped.too_large")
            assert self.start is not None
            self.start = self._passthrough_start(self.start)
            await self._flush(None, more_body=more)
            return
        if more:
            self.chunks.append(body)
            return
        whole = b"".join(self.chunks) + body if self.chunks else body
        self.chunks = []
        try:
            start, out = await self._finish(whole)
        except Exception as exc:  # noqa: BLE001 - fail open: the app's response as it was
            self.services.counters.failure("finish", exc)
            start, out = self.start, whole
        self.mode = _PASS
        self.start = None
        assert start is not None
        await self.send(start)
        await self.send({"type": "http.response.body", "body": out})

    async def _flush(self, message: Message | None, *, more_body: bool = True) -> None:
        """Send what is held, untouched, then ``message``; forward everything after as is."""
        self.mode = _PASS
        if self.start is not None:
            start, self.start = self.start, None
            await self.send(start)
        if self.chunks:
            held, self.chunks = b"".join(self.chunks), []
            await self.send({"type": "http.response.body", "body": held, "more_body": more_body})
        if message is not None:
            await self.send(message)

    async def close(self) -> None:
        """After the app returned: send anything still held (an app that never ended its body)."""
        if self.mode != _PASS and (self.start is not None or self.chunks):
            await self._flush(None)

    async def _finish(self, body: bytes) -> tuple[Message, bytes]:
        slots, marked = scan_page(body)
        state, services = self.state, self.services
        product = self.settings.product_match(state.path)
        sku = product["sku"] if product else marked
        now = services.runtime.clock()  # one time for the decision and the events it leads to
        view = state.page_view(now)
        decision: Decision | None = None
        widgets: dict[str, bytes] = {}
        failure = None
        if slots:
            visit = PageVisit(identity=state.identity, path=state.path, slots=[s.name for s in slots], now=now,
                              sku=sku, view=view, charset=self.charset)
            runtime, executor, budget = services.runtime, services.executor, self.settings.budget
            try:
                profile = state.profile_now()
                if profile is not None and self._inline():  # the usual page: no wait, no thread hop
                    decision, widgets = executor.run_inline(runtime.personalize, visit, profile, budget=budget)
                else:
                    decision, widgets = await asyncio.wait_for(self._load_and_personalize(visit, profile), budget)
            except (asyncio.TimeoutError, TimeoutError):
                failure = "budget"
                services.counters.failure("budget")
            except Overloaded as exc:
                failure = "overloaded"
                services.counters.failure("overloaded", exc)
            except Exception as exc:  # noqa: BLE001 - store down, plugin error: fail open
                failure = "error"
                services.counters.failure("decide", exc)
        out = fill_slots(body, slots, widgets) if widgets else body
        self._track(sku, view, decision if failure is None else None, now)
        if out is not body:
            services.counters.personalized += 1
        debug = debug_value(state.identity, slots, decision, failure) if self.settings.debug and slots else None
        return self._headers(out, changed=out is not body, debug=debug), out

    async def _load_and_personalize(self, visit: PageVisit, profile: Profile | None) -> Personalization:
        """``runtime.personalize`` after the profile load (when it was not ready), on the loop
        when allowed, else in the pool (the caller bounds the wait by the time budget)."""
        runtime, executor = self.services.runtime, self.services.executor
        if profile is None:
            profile = await self.state.profile()
            if self._inline():  # the load was the part that needed a thread
                return executor.run_inline(runtime.personalize, visit, profile, budget=self.settings.budget)
        return await executor.submit(runtime.personalize, visit, profile)

    def _inline(self) -> bool:
        """Whether to personalize on the event loop now: a thread hop costs more than a typical
        decision, so decisions run inline unless a plugin on the way may block
        (``runtime.decides_on_loop``) or the breaker is open."""
        return self.services.executor.inline_allowed and self.services.runtime.decides_on_loop

    # -- tracking ----------------------------------------------------------------------------
    def _track(self, sku: str | None, view: PageView | None, decision: Decision | None, now: datetime) -> None:
        """Queue identify link, page view, product view and impressions (never raises:
        counted instead). Built by ``engine/tracking.py`` at the runtime clock's time, they
        need no decoding or stamping (``runtime.track``): they go to the writer as they are."""
        state = self.state
        identity = state.identity
        if not identity.track:
            return
        try:
            events: list[Event] = []
            self.services.visitors.link(identity, events, now)
            if view is not None:
                events.append(view)
            if sku:
                events.append(product_view_event(identity, sku, now))
            if decision is not None:
                for slot_decision in decision.slots.values():
                    if slot_decision.campaign and (slot_decision.control or slot_decision.products):
                        events.append(impression_event(identity, slot_decision, now))
            if events:
                self.services.runtime.writer.submit(events)
        except Exception as exc:  # noqa: BLE001 - tracking must never break the page
            self.services.counters.failure("track", exc)

    # -- headers -----------------------------------------------------------------------------
    def _headers(self, body: bytes, *, changed: bool, debug: bytes | None) -> Message:
        assert self.start is not None
        cookie = self._cookie_header()
        if not changed and cookie is None and debug is None:
            return self.start
        headers: list[tuple[bytes, bytes]] = []
        seen_vary = seen_cache = False
        for key, value in self.start.get("headers") or ():
            lower = key.lower()
            if lower == b"content-length" or (changed and lower == b"etag"):
                continue
            if lower == b"vary" and changed:
                value, seen_vary = merge_vary(value), True
            elif lower == b"cache-control":
                value, seen_cache = private_cache_control(value), True
            headers.append((key, value))
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        if changed and not seen_vary:
            headers.append((b"vary", b"Cookie"))
        if not seen_cache:
            headers.append((b"cache-control", b"private"))
        if cookie is not None:
            headers.append(cookie)
        if debug is not None:
            headers.append((b"x-segmint-debug", debug))
        return {**self.start, "headers": headers}
