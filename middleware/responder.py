"""The per-request ``send`` wrapper: hold the response start, buffer bounded HTML, fill slots.

Only ``200`` ``text/html`` responses without ``Content-Encoding`` (and in an ASCII-compatible
charset) are buffered, up to ``max_body_bytes``. Anything else is forwarded as it comes; an
HTML page that cannot be buffered (compressed, too large) still gets the visitor cookie and a
page view, with its body untouched. When the buffered body ends, the slots found in it are
decided and rendered within the time budget; on overrun or any error the original body goes
out unchanged and the cause is counted and logged.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from segmint.engine.decide import Decision
from segmint.engine.events import Event, PageView
from segmint.engine.personalize import PageVisit, Personalization
from segmint.engine.profile import Profile
from segmint.engine.tracking import impression_event, product_view_event

from .asgi_types import Message, Scope, Send
from .executor import Overloaded
from .headers import debug_value, html_charset, merge_vary, private_cache_control
from .html import fill_slots, scan_page
from .shared import Services, Settings
from .visitors import UNIDENTIFIED, SegmintState

__all__ = ["Responder"]

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
