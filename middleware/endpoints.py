"""segmint's own HTTP API, under ``[api] prefix`` (default ``/_segmint``).

==========================  =========================================================================
``POST {prefix}/events``    event intake for the shop backend (Bearer token). Valid events are stored
                            durably before the answer: ``200 {"stored", "duplicates", "rejected"}``.
                            When every event of a non-empty batch is invalid nothing is stored and
                            the answer is ``400`` with the same body. Missing/wrong token: ``401``;
                            too many failed attempts from one address: ``429``; body over the bound:
                            ``413``; not a JSON list: ``400``; store down: ``503`` (retry).
``GET {prefix}/recommendations?slot=a&slot=b&path=/x``
                            the decision for the visitor (cookie) as JSON, for client-rendered
                            pages: per slot campaign, variant, control, title, coupon, products
                            and the rendered ``html``. Records a page view of ``path`` (the
                            client-rendered page asking: it may start a visit, and the decision
                            counts it) and impressions for the slots that show something (or
                            are in a control group).
``GET {prefix}/click?_sgm=..&to=/x``
                            records a widget click and redirects (303) to ``to`` if it is a
                            site-relative path, else to ``/``: never an open redirect.
``DELETE {prefix}/profiles?customer=ID`` (or ``?visitor=ID``)
                            erases one person (Bearer token): profiles, identity links, logged
                            events, saved report states, cached copies; a visitor linked to a
                            customer means the customer's whole person. ``200 {"customer_id",
                            "visitor_ids", "profiles", "links", "events", "report_states"}``
                            (counts of what was removed; all 0 when nothing was stored). Not
                            exactly one non-empty id: ``400``; store down: ``503`` (retry).
``GET {prefix}/health``     failure and traffic counters, config warnings (Bearer token).
``GET {prefix}/report``     the campaign report as an HTML page (Bearer token or the session cookie;
                            without either, 401 with a sign-in form; ``report_page``).
``POST {prefix}/report/login``
                            the sign-in form's target (``token`` field, same-origin only): sets the
                            session cookie and redirects (303) to the page; a wrong token: 401 and
                            the form again, counted with the other failed attempts (429 past them).
``POST {prefix}/report/logout``
                            clears the session cookie (same-origin only) and redirects to the page.
==========================  =========================================================================

Before the runtime has started (``NotStarted``: the config, catalog, plugins or store could not
be loaded) ``/health`` answers ``503`` with the cause, ``/events``, ``/profiles`` and ``/report``
(and its sign-in and sign-out) ``503`` (retry),
``/recommendations`` the fallback (no slots) and ``/click`` its redirect, recording nothing.

Errors are JSON objects ``{"error": "...", "rejected": [{"index", "field", "error"}]}``.
"""

from __future__ import annotations

import hmac
from functools import partial
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

import msgspec
from cachetools import TTLCache

from segmint.engine.config import ApiConfig, config_warnings
from segmint.engine.errors import EventError
from segmint.engine.events import decode_events

from segmint.engine.runtime import Runtime
from segmint.engine.tracking import CLICK_PARAM, ClickInfo, click_event, impression_event, parse_click

from .asgi_types import Receive, Scope, Send
from .counters import Counters
from .executor import Overloaded
from .html import MAX_SLOTS, valid_slot_name
from .report_page import report_endpoint, send_page
from .report_session import (
    MAX_FORM_BYTES, clear_session_cookie, same_origin, session_cookie, sign_in_page, signed_in,
)
from .shared import Services, Settings
from .visitors import SegmintState

if TYPE_CHECKING:
    from segmint.engine.decide import Decision
    from segmint.engine.startup import RuntimeStarter

__all__ = ["Endpoints", "NotStarted", "safe_redirect_target"]

#: Failed token attempts allowed per client address per window before answering 429.
MAX_FAILED_ATTEMPTS = 10
FAILED_WINDOW_SECONDS = 60.0
#: Keys of a ``/recommendations`` slot that describe the shop's targeting, not the visitor's
#: widget: sent only when ``[middleware] debug_header`` is on.
DEBUG_ONLY_KEYS = ("reasons", "segment", "strategy")
#: The ``/recommendations`` answer when deciding fails (fail open: the page keeps its defaults).
FALLBACK_ANSWER = {"slots": {}, "fallback": True}
#: Bad products of the catalog listed by /health (all are counted; `segmint check` lists them).
HEALTH_PROBLEMS = 5
_json = msgspec.json.Encoder()
# Characters kept as they are in a redirect target; anything else (non-ASCII) is %-encoded.
_URL_SAFE = "/?&=#%:+;,@!$'()*[]~-._"


def safe_redirect_target(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/`` (no scheme, host, ``//`` or ``\\``)."""
    if (
        not target
        or len(target) > 2048
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target)
    ):
        return "/"
    return quote(target, safe=_URL_SAFE)


class _FailedAttempts:
    """Failed token attempts per client address: bounded, expiring, thread-safe."""

    def __init__(self, timer: Callable[[], float]) -> None:
        self._cache: TTLCache[str, int] = TTLCache(maxsize=10_000, ttl=FAILED_WINDOW_SECONDS, timer=timer)
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        with self._lock:
            return self._cache.get(client, 0) >= MAX_FAILED_ATTEMPTS

    def failed(self, client: str) -> None:
        with self._lock:
            self._cache[client] = self._cache.get(client, 0) + 1


class Endpoints:
    """Routes requests under the API prefix. ``handle`` returns False for other paths."""

    def __init__(self, services: Services, *, timer: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.failed = _FailedAttempts(timer)
        self._routes = {
            "/events": ("POST", self._events),
            "/recommendations": ("GET", self._recommendations),
            "/click": ("GET", self._click),
            "/health": ("GET", self._health),
            "/report": ("GET", self._report),
            "/report/login": ("POST", self._report_login),
            "/report/logout": ("POST", self._report_logout),
            "/profiles": ("DELETE", self._forget),
        }

    async def handle(self, scope: Scope, receive: Receive, send: Send, settings: Settings) -> bool:
        route = self._routes.get(scope["path"][len(settings.prefix):])
        if route is None:
            return False
        method, handler = route
        if scope["method"] != method:
            await _respond(send, 405, {"error": f"use {method}"}, [(b"allow", method.encode())])
            return True
        await handler(scope, receive, send, settings)
        return True

    # -- auth --------------------------------------------------------------------------------
    async def _authorized(self, scope: Scope, send: Send, settings: Settings) -> bool:
        return await _check_token(scope, send, settings.config.api.token, self.failed, self.services.counters)

    # -- POST /events ------------------------------------------------------------------------
    async def _events(self, scope: Scope, receive: Receive, send: Send, settings: Settings) -> None:
        if not await self._authorized(scope, send, settings):
            return
        body = await _read_body(scope, receive, settings.max_body)
        if body is None:
            await _respond(send, 413, {"error": f"the body is larger than {settings.max_body} bytes"})
            return
        try:
            events, errors = decode_events(body, now=self.services.runtime.clock())
        except EventError as exc:
            await _respond(send, 400, {"error": exc.message, "rejected": [exc.to_dict()]})
            return
        rejected = [e.to_dict() for e in errors]
        if not events:
            if rejected:  # nothing usable: a client error, not a success that stored nothing
                await _respond(send, 400, {"error": f"every event was rejected ({len(rejected)}); nothing was stored",
                                           "stored": 0, "duplicates": 0, "rejected": rejected})
            else:
                await _respond(send, 200, {"stored": 0, "duplicates": 0, "rejected": []})
            return
        try:
            result = await self.services.executor.run(self.services.runtime.record, events)
        except Overloaded:
            await _respond(send, 503, {"error": "busy; retry"}, [(b"retry-after", b"1")])
            return
        except Exception as exc:  # noqa: BLE001 - nothing acknowledged, the shop retries
            self.services.counters.failure("intake", exc)
            await _respond(send, 503, {"error": "the event store is unavailable; retry"}, [(b"retry-after", b"5")])
            return
        self.services.counters.incr("api.events_stored", result.stored)
        await _respond(send, 200, {"stored": result.stored, "duplicates": result.duplicates, "rejected": rejected})

    # -- DELETE /profiles --------------------------------------------------------------------
    async def _forget(self, scope: Scope, receive: Receive, send: Send, settings: Settings) -> None:
        """Erase one person (privacy request); the answer counts what was removed."""
        if not await self._authorized(scope, send, settings):
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), max_num_fields=10)
        ids = [(k, v) for k, v in query if k in ("customer", "visitor")]
        if len(ids) != 1 or not ids[0][1] or len(ids[0][1]) > 128:
            await _respond(send, 400, {"error": "give exactly one id: ?customer=ID or ?visitor=ID (1 to 128 "
                                                f"characters), e.g. DELETE {settings.prefix}/profiles?customer=42"})
            return
        kind, value = ids[0]
        try:
            gone = await self.services.executor.run(partial(self.services.runtime.forget, **{f"{kind}_id": value}))
        except Overloaded:
            await _respond(send, 503, {"error": "busy; retry"}, [(b"retry-after", b"1")])
            return
        except Exception as exc:  # noqa: BLE001 - nothing acknowledged: the caller retries
            self.services.counters.failure("forget", exc)
            await _respond(send, 503, {"error": "the store could not erase the person; retry"},
                           [(b"retry-after", b"5")])
            return
        self.services.visitors.unlink(gone.visitor_ids)
        self.services.counters.incr("api.people_forgotten")
        await _respond(send, 200, gone.counts(), [(b"cache-control", b"no-store")])

    # -- GET /recommendations ----------------------------------------------------------------
    async def _recommendations(self, scope: Scope, receive: Receive, send: Send,
                               settings: Settings) -> None:
        """The decision for the request's visitor, as JSON for client-rendered pages.

        The meanings below are those of ``docs/recommendations.md`` (generated); the other
        keys of a slot are ``SlotDecision``'s fields.

        :query slot: A slot to decide, named as in the page's ``data-segmint-slot``
            (e.g. ``slot=home``); repeat it for several slots.
        :query path: The path of the page the widgets are for (campaigns' ``pages`` patterns
            match it); must start with ``/``; default ``/``.
        :key slots: The decision per requested slot, by slot name.
        :key html: The rendered, escaped widget; empty when nothing is shown.
        :key fallback: Present (true) only when deciding failed: show the page's defaults.
        """
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), max_num_fields=100)
        slots = list(dict.fromkeys(v for k, v in query if k == "slot"))
        path = next((v for k, v in query if k == "path"), "/")
        bad = [s for s in slots if not valid_slot_name(s)]
        if not slots or bad or len(slots) > MAX_SLOTS or not path.startswith("/"):
            error = "give 1 to %d valid slot names (slot=name) and a path starting with /" % MAX_SLOTS
            await _respond(send, 400, {"error": error})
            return
        state = SegmintState(self.services.visitors, self.services.counters, scope, settings, path[:2048])
        identity = await state.identified()
        extra = [(b"cache-control", b"private, no-store"), (b"vary", b"Cookie")]
        if identity.is_new and identity.cookie_value:
            extra.append((b"set-cookie", settings.set_cookie(identity.cookie_value, scope.get("scheme", "http"))))
        try:
            decision = await state.decision(*slots)
            payload = await self.services.executor.run(_public_decision, self.services.runtime, decision,
                                                       settings.debug)
        except Exception as exc:  # noqa: BLE001 - fail open: the page shows its defaults
            self.services.counters.failure("recommendations", exc)
            await _respond(send, 200, FALLBACK_ANSWER, extra)
            return
        if identity.track:
            now = self.services.runtime.clock()
            events: list[Any] = []
            self.services.visitors.link(identity, events, now)
            view = state.page_view(now)  # a client-rendered page is a page view: it may start a visit
            if view is not None:
                events.append(view)
            events += [impression_event(identity, sd, now) for sd in decision.slots.values()
                       if sd.campaign and (sd.control or sd.products)]
            try:
                if events:
                    self.services.runtime.writer.submit(events)  # as built: like a page's
            except Exception as exc:  # noqa: BLE001
                self.services.counters.failure("track", exc)
        await _respond(send, 200, payload, extra)

    # -- GET /click --------------------------------------------------------------------------
    async def _click(self, scope: Scope, receive: Receive, send: Send, settings: Settings) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), max_num_fields=20))
        target = safe_redirect_target(query.get("to"))
        product = settings.product_match(target.partition("?")[0])
        click = parse_click(query.get(CLICK_PARAM, ""), product["sku"] if product else None)
        if click is not None:
            await record_click(self.services, scope, settings, click)
        await _redirect(send, target)

    # -- GET /health -------------------------------------------------------------------------
    async def _health(self, scope: Scope, receive: Receive, send: Send, settings: Settings) -> None:
        if not await self._authorized(scope, send, settings):
            return
        runtime = self.services.runtime
        await _respond(send, 200, {"status": "ok", "counters": self.services.counters.snapshot(),
                                   "warnings": config_warnings(runtime.config), **_runtime_health(runtime)},
                       [(b"cache-control", b"no-store")])

    # -- GET /report -------------------------------------------------------------------------
    async def _report(self, scope: Scope, receive: Receive, send: Send, settings: Settings) -> None:
        # A session cookie, or no credentials at all (a person: report_endpoint shows the form),
        # go straight on; a Bearer header is checked here, with the failed-attempt limit.
        session = signed_in(scope, settings.config.api.token, self.services.runtime.clock().timestamp())
        presented = any(key.lower() == b"authorization" for key, _ in scope.get("headers") or ())
        if not session and presented and not await self._authorized(scope, send, settings):
            return
        await report_endpoint(scope, receive, send, self.services.runtime)

    async def _report_login(self, scope: Scope, receive: Receive, send: Send,
                            settings: Settings) -> None:
        """The sign-in form's post: the right token sets the session cookie (``report_session``)."""
        prefix = settings.prefix or "/"
        if not same_origin(scope):
            await send_page(send, 403, "sign in from the report page's own form", "text/plain; charset=utf-8")
            return
        client = (scope.get("client") or ("?",))[0]
        if self.failed.blocked(client):
            self.services.counters.incr("api.rate_limited")
            await send_page(send, 429, sign_in_page(prefix, "Too many failed attempts; retry in a minute."),
                            extra=[(b"retry-after", str(int(FAILED_WINDOW_SECONDS)).encode())])
            return
        body = await _read_body(scope, receive, MAX_FORM_BYTES)
        if body is None:
            await send_page(send, 413, sign_in_page(prefix, "The form is too large."))
            return
        given = dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=5)).get("token", "").strip()
        expected = settings.config.api.token
        if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
            self.failed.failed(client)
            self.services.counters.incr("api.unauthorized")
            message = "That is not the API token." if expected else "The API is disabled: set [api] token in the config."
            await send_page(send, 401, sign_in_page(prefix, message))
            return
        cookie = session_cookie(expected, prefix=prefix, now=self.services.runtime.clock().timestamp(),
                                secure=scope.get("scheme") == "https")
        await _redirect(send, f"{prefix.rstrip('/')}/report", [(b"set-cookie", cookie)])

    async def _report_logout(self, scope: Scope, receive: Receive, send: Send,
                             settings: Settings) -> None:
        if not same_origin(scope):
            await send_page(send, 403, "sign out from the report page's own button", "text/plain; charset=utf-8")
            return
        prefix = settings.prefix or "/"
        cookie = clear_session_cookie(prefix=prefix, secure=scope.get("scheme") == "https")
        await _redirect(send, f"{prefix.rstrip('/')}/report", [(b"set-cookie", cookie)])


class NotStarted:
    """segmint's API while the runtime has not started (a ``RuntimeStarter`` retries).

    Without a started runtime only the decoded config is known, and only when it decodes:
    its ``[api] prefix`` and ``token`` apply as usual. When the config itself cannot be read
    or decoded, the prefix is the default one and no token can be checked, so ``/health``
    answers anyone, with the cause only: that text never holds a secret (config errors
    name the file, line and key, never a value of ``secret``, ``token`` or a store URL's
    password; store URLs are shown without credentials).
    """

    def __init__(self, starter: RuntimeStarter, counters: Counters, *, timer: Callable[[], float] = time.monotonic) -> None:
        self.starter = starter
        self.counters = counters
        self.failed = _FailedAttempts(timer)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer a request under segmint's prefix; False for any other path (the app's)."""
        config = self.starter.config
        api = config.api if config is not None else ApiConfig()
        prefix = api.prefix.rstrip("/")
        path = scope["path"]
        if not path.startswith(prefix + "/"):
            return False
        route = path[len(prefix):]
        if route == "/health" and scope["method"] == "GET":
            if config is None or await _check_token(scope, send, api.token, self.failed, self.counters):
                await self._health(send)
        elif route == "/recommendations" and scope["method"] == "GET":
            await _respond(send, 200, {"slots": {}, "fallback": True}, [(b"cache-control", b"private, no-store")])
        elif route == "/click" and scope["method"] == "GET":
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), max_num_fields=20))
            await _redirect(send, safe_redirect_target(query.get("to")))
        elif route in ("/events", "/report", "/report/login", "/report/logout", "/profiles"):
            await _respond(send, 503, {"error": "segmint has not started (see /health); retry"},
                           [(b"retry-after", b"30")])
        else:
            return False
        return True

    async def _health(self, send: Send) -> None:
        starter = self.starter
        retry_in = starter.retry_in
        await _respond(send, 503, {
            "status": "not_started", "error": starter.cause, "attempts": starter.attempts,
            "retry_in_seconds": None if retry_in is None else round(retry_in, 1),
            "counters": self.counters.snapshot(),
            "warnings": config_warnings(starter.config) if starter.config is not None else [],
        }, [(b"cache-control", b"no-store")])


async def _check_token(scope: Scope, send: Send, token: str | None, failed: _FailedAttempts,
                      counters: Counters) -> bool:
    """Check the Bearer token in constant time; answer 401/429 and return False if not."""
    client = (scope.get("client") or ("?",))[0]
    if failed.blocked(client):
        counters.incr("api.rate_limited")
        await _respond(send, 429, {"error": "too many failed attempts; retry later"},
                       [(b"retry-after", str(int(FAILED_WINDOW_SECONDS)).encode())])
        return False
    expected = (token or "").encode()
    given = b""
    for key, value in scope.get("headers") or ():
        if key.lower() == b"authorization":
            scheme, _, presented = value.partition(b" ")
            if scheme.lower() == b"bearer":
                given = presented.strip()
            break
    if expected and given and hmac.compare_digest(given, expected):
        return True
    failed.failed(client)
    counters.incr("api.unauthorized")
    message = "missing or invalid bearer token" if expected else "the API is disabled: set [api] token"
    await _respond(send, 401, {"error": message}, [(b"www-authenticate", b'Bearer realm="segmint"')])
    return False


def _runtime_health(runtime: Runtime) -> dict[str, Any]:
    """The runtime's own numbers: event writer (queued, written, dropped), profile cache
    (hits, misses, size, maxsize), compaction lag (events, seconds), contained plugin failures,
    the last failed config reload (None when healthy), the predictive model
    (``BatchStats.predict_status``: fitted, or why not) and the catalog (products served, bad
    products left out, the first ``HEALTH_PROBLEMS`` of them)."""
    health: dict[str, Any] = {
        "writer": runtime.writer.stats,
        "cache": {**runtime.profiles.stats, "maxsize": runtime.config.cache.maxsize},
    }
    if runtime.compaction is not None:  # events logged but not yet folded into the store's rows
        health["compaction"] = runtime.compaction
    error = runtime.last_reload_error
    health["reload_error"] = str(error) if error is not None else None
    health["plugin_failures"] = runtime.failures.counts()  # contained, by plugin, hook and error
    health["predict"] = runtime.batch.predict_status  # the predictive model: fitted, or why not
    catalog = runtime.catalog  # bad products are left out and served without
    health["catalog"] = {"products": len(catalog), "bad_products": catalog.rejected,
                         "problems": [str(p) for p in catalog.problems[:HEALTH_PROBLEMS]]}
    return health


def _public_decision(runtime: Runtime, decision: Decision, debug: bool) -> dict[str, Any]:
    """The decision as the browser may see it: what to show, not why.

    Segment names, strategies and the engine's reasons describe the shop's targeting, not the
    visitor's widget; they are included only when ``[middleware] debug_header`` is on. Each
    shown slot carries its rendered, escaped ``html`` for pages that just insert it.
    """
    slots: dict[str, Any] = {}
    for name, slot_decision in decision.slots.items():
        data = slot_decision.to_dict()
        if not debug:
            for private in DEBUG_ONLY_KEYS:
                data.pop(private, None)
        data["html"] = runtime.render(slot_decision) if slot_decision.campaign and not slot_decision.control else ""
        slots[name] = data
    return {"slots": slots}


async def record_click(services: Services, scope: Scope, settings: Settings, click: ClickInfo) -> None:
    """Queue a click event for the request's visitor (never raises: counted instead)."""
    try:
        identity = await services.visitors.aidentify(scope, settings.config)
        if identity.track and not identity.is_new:
            services.runtime.writer.submit([click_event(identity, click, services.runtime.clock())])
            services.counters.incr("clicks")
    except Exception as exc:  # noqa: BLE001
        services.counters.failure("click", exc)


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes."""
    for key, value in scope.get("headers") or ():
        if key.lower() == b"content-length":
            try:
                if int(value) > limit:
                    return None
            except ValueError:
                return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _redirect(send: Send, target: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", target.encode("utf-8")), (b"content-length", b"0"),
                            (b"cache-control", b"no-store"), *headers]})
    await send({"type": "http.response.body", "body": b""})


async def _respond(send: Send, status: int, payload: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = _json.encode(payload)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *headers],
    })
    await send({"type": "http.response.body", "body": body})
