"""Who the visitor of a request is, and their profile.

``Visitors`` (one per middleware) asks the ``segmint_identify_visitor`` plugins who a request
is, links a cookie visitor to a customer once (one ``identify`` event per process), and
loads profiles: from memory when it can (bots, brand-new visitors, the runtime's cache), else
from the store in the pool or, for stores with an async client, on the loop.

``SegmintState`` is the per-request side, what the app sees as ``request.state.segmint``:
the visitor's ``identity`` (computed on first use, so a JSON API request that never looks
costs nothing) and awaitable accessors for the profile and a decision, so an app can render
widgets itself::

    async def home(request):
        segmint = request.state.segmint
        decision = await segmint.decision("home")
        return templates.TemplateResponse("home.html", {"widget": segmint.render(decision.slots["home"])})
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from datetime import datetime, timezone

from cachetools import LRUCache

from segmint.engine.config.schema import Config
from segmint.engine.decide import Decision, SlotDecision
from segmint.engine.events import Event, PageView
from segmint.engine.folding import folded
from segmint.engine.identity import Identity
from segmint.engine.personalize import ANONYMOUS_VISITOR
from segmint.engine.profile import Profile
from segmint.engine.runtime import Runtime
from segmint.engine.tracking import identify_event, page_view_event

from .asgi_types import Scope
from .counters import Counters
from .executor import Executor
from .shared import Settings

__all__ = ["Visitors", "SegmintState", "InactiveState", "UNIDENTIFIED", "NOT_STARTED", "ANONYMOUS_PROFILE_KEY"]

#: Profile used for bots and visitors without consent: nothing known, so defaults apply.
ANONYMOUS_PROFILE_KEY = "v:anonymous"
#: The identity used when identification failed: no cookie, no tracking, defaults only.
UNIDENTIFIED = Identity(personalize=False, track=False, reason="identification failed")
#: The identity of every request while segmint has not started.
NOT_STARTED = Identity(personalize=False, track=False, reason="segmint has not started")
#: Visitors remembered as linked to a customer by this process (an ``identify`` sent).
LINKED_VISITORS = 50_000


class Visitors:
    """Identification, identity links and profile loading, shared by all requests."""

    def __init__(self, runtime: Runtime, executor: Executor) -> None:
        self.runtime = runtime
        self.executor = executor
        # visitor id -> customer id already linked by an identify event from this process.
        self._linked: LRUCache[str, str] = LRUCache(maxsize=LINKED_VISITORS)
        self._linked_lock = threading.Lock()

    def identify(self, scope: Scope, config: Config) -> Identity:
        """Ask the plugins who this is, here and now. Raises whatever a plugin raised (caller
        fails open). On the event loop only when ``runtime.identifies_on_loop``."""
        identity = self.runtime.state.pm.hook.segmint_identify_visitor(scope=scope, config=config)
        if not isinstance(identity, Identity):
            raise TypeError(f"segmint_identify_visitor returned {type(identity).__name__}, not Identity")
        return identity

    async def aidentify(self, scope: Scope, config: Config) -> Identity:
        """``identify`` from the event loop: there when every identify plugin is loop-safe
        (the built-in is), else in the pool, where a plugin that blocks (a session lookup)
        holds one worker instead of the server. Raises ``Overloaded`` and what a plugin raised."""
        if self.runtime.identifies_on_loop:
            return self.identify(scope, config)
        return await self.executor.submit(self.identify, scope, config)

    def link(self, identity: Identity, events: list[Event], now: datetime) -> None:
        """Add one ``identify`` event the first time a cookie visitor is seen as a customer."""
        visitor, customer = identity.visitor_id, identity.customer_id
        if not (visitor and customer and identity.track):
            return
        with self._linked_lock:
            if self._linked.get(visitor) == customer:
                return
            self._linked[visitor] = customer
        events.append(identify_event(identity, now))

    def unlink(self, visitor_ids: Iterable[str]) -> None:
        """Forget that these visitors were linked (their person was erased): a later login
        sends ``identify`` again, so the link is stored anew."""
        with self._linked_lock:
            for visitor in visitor_ids:
                self._linked.pop(visitor, None)

    def known_profile(self, identity: Identity) -> Profile | None:
        """The profile when it needs no I/O (else None): empty for bots and brand-new visitors,
        or already in the runtime's cache (``Profiles.peek``)."""
        if not identity.personalize or not (identity.customer_id or identity.visitor_id):
            return Profile(key=ANONYMOUS_PROFILE_KEY)
        if identity.is_new and not identity.customer_id:  # a fresh random id has no history
            assert identity.visitor_id is not None
            return Profile(key=f"v:{identity.visitor_id}", visitor_ids=(identity.visitor_id,))
        return self.runtime.profiles.peek(visitor_id=identity.visitor_id, customer_id=identity.customer_id)

    def load_profile(self, identity: Identity) -> Profile:
        """The profile to decide for (blocking: run it in the pool)."""
        known = self.known_profile(identity)
        if known is not None:
            return known
        return self.runtime.profile(visitor_id=identity.visitor_id, customer_id=identity.customer_id)

    async def aload_profile(self, identity: Identity) -> Profile:
        """``load_profile`` on the event loop, for stores with an async client (Redis)."""
        known = self.known_profile(identity)
        if known is not None:
            return known
        return await self.runtime.profiles.aget(visitor_id=identity.visitor_id, customer_id=identity.customer_id)

    def start_load(self, identity: Identity) -> asyncio.Future[Profile]:
        """Load the profile in the background: a task on this loop when the store has an
        async client, else pool work. Raises ``Overloaded`` when too much is pending."""
        if self.runtime.profiles.supports_async:
            return self.executor.spawn(self.aload_profile, identity)
        return self.executor.submit(self.load_profile, identity)


class SegmintState:
    """Per-request identity, profile and decision access (``request.state.segmint``)."""

    __slots__ = ("path", "_visitors", "_scope", "_settings", "_identity", "_profile", "_profile_task", "_saw_user",
                 "_counters")

    def __init__(self, visitors: Visitors, counters: Counters, scope: Scope, settings: Settings, path: str) -> None:
        self.path = path
        self._visitors = visitors
        self._counters = counters
        self._scope = scope
        self._settings = settings
        self._identity: Identity | None = None
        self._profile: Profile | None = None
        self._profile_task: asyncio.Future[Profile] | None = None
        self._saw_user = False

    @property
    def identity(self) -> Identity:
        """Who the visitor is (asks the ``segmint_identify_visitor`` plugins once).

        A plugin that raises or returns garbage is counted and logged; the request then goes
        on as an anonymous one (``UNIDENTIFIED``): segmint fails open. The middleware has
        asked already (``identified``) when a plugin that may block implements the hook, so
        reading this on the event loop never blocks.
        """
        if self._identity is None:
            self._saw_user = "user" in self._scope
            try:
                self._identity = self._visitors.identify(self._scope, self._settings.config)
            except Exception as exc:  # noqa: BLE001 - fail open
                self._counters.failure("identify", exc)
                self._identity = UNIDENTIFIED
        return self._identity

    async def identified(self) -> Identity:
        """``identity``, asked in the pool when an identify plugin may block (``aidentify``)."""
        if self._identity is None:
            self._saw_user = "user" in self._scope
            try:
                self._identity = await self._visitors.aidentify(self._scope, self._settings.config)
            except Exception as exc:  # noqa: BLE001 - fail open (Overloaded included)
                self._counters.failure("identify", exc)
                self._identity = UNIDENTIFIED
        return self._identity

    def start_profile(self) -> None:
        """Have the profile ready soon: at once when no I/O is needed, else load it in the
        background (idempotent). Raises ``Overloaded`` when too much work is pending, and what
        a cache peek raised (caller fails open).
        """
        if self._profile is not None or self._profile_task is not None:
            return
        identity = self.identity
        self._profile = self._visitors.known_profile(identity)
        if self._profile is None:
            self._profile_task = self._visitors.start_load(identity)

    def profile_now(self) -> Profile | None:
        """The profile if it is ready (no waiting), else None."""
        task = self._profile_task
        if self._profile is None and task is not None and task.done() and not task.cancelled() \
                and task.exception() is None:
            self._profile = task.result()
        return self._profile

    async def profile(self) -> Profile:
        self.start_profile()
        if self._profile is not None:
            return self._profile
        assert self._profile_task is not None
        return await asyncio.shield(self._profile_task)

    async def decision(self, *slots: str, path: str | None = None, exclude: Iterable[str] = ()) -> Decision:
        """The decision for ``slots`` on this page (blocking work runs in the pool), made on
        the profile including this request's page view (``seen_profile``)."""
        profile = await self.profile()
        runtime = self._visitors.runtime
        now = runtime.clock()
        identity = self.identity
        visitor = identity.visitor_id if identity.personalize and identity.visitor_id else None
        return await self._visitors.executor.submit(
            _decide, runtime, self.seen_profile(profile, now), slots, path or self.path, visitor, now, tuple(exclude))

    def page_view(self, now: datetime) -> PageView | None:
        """The page view this request records (None when the visitor or page views are not
        tracked)."""
        identity = self.identity
        if not identity.track or not self._settings.track_page_views:
            return None
        return page_view_event(identity, self.path, now)

    def seen_profile(self, profile: Profile, now: datetime) -> Profile:
        """``profile`` as it will be once this request's page view is stored: decisions see
        the visit this page starts (the first page of a second visit is a returning
        visitor's) without waiting for the background writer. A copy: the cached profile is
        shared, and the store counts the page view once when it folds it."""
        view = self.page_view(now)
        return folded(profile, (view,)) if view is not None else profile

    def render(self, slot_decision: SlotDecision) -> str:
        """The HTML widget of one slot's decision (escaped by the renderer; "" for none)."""
        return self._visitors.runtime.render(slot_decision)

    def release(self) -> None:
        """The request is over: leave the scope.

        The scope holds this object (``scope["state"]["segmint"]``) and this object holds the
        scope, so every request would be a reference cycle, freed only by the cyclic garbage
        collector (a collection every ~140 requests, and survivors promoted to the older
        generations, whose collections walk every cached profile). Removing the entry breaks
        the cycle; whoever kept a reference to this object can still use it.
        """
        state = self._scope.get("state")
        if state is not None and state.get("segmint") is self:
            del state["segmint"]

    async def refresh_identity(self) -> None:
        """Re-identify when an inner middleware authenticated the request after we looked.

        Starlette's ``AuthenticationMiddleware`` usually runs inside segmint and sets
        ``scope["user"]`` on the shared scope; seeing it at response time lets a logged-in
        customer get their own profile even so. A changed identity restarts the profile load.
        Raises what identification raised (the caller fails open).
        """
        if self._identity is None or self._saw_user or "user" not in self._scope:
            return
        self._saw_user = True
        old = self._identity
        fresh = await self._visitors.aidentify(self._scope, self._settings.config)
        if fresh.customer_id == old.customer_id:
            return
        # Keep the cookie decision already made (is_new, cookie_value) for the same visitor.
        self._identity = Identity(
            visitor_id=old.visitor_id or fresh.visitor_id,
            customer_id=fresh.customer_id,
            is_new=old.is_new,
            personalize=fresh.personalize and old.personalize,
            track=fresh.track and old.track,
            cookie_value=old.cookie_value,
            reason=fresh.reason or old.reason,
        )
        self._profile = None
        if self._profile_task is not None:
            self._profile_task.cancel()
            self._profile_task = None


def _decide(runtime: Runtime, profile: Profile, slots: Iterable[str], path: str, visitor: str | None,
            now: datetime, exclude: tuple[str, ...]) -> Decision:
    return runtime.decide(profile, slots, path=path, visitor_id=visitor or ANONYMOUS_VISITOR, now=now, exclude=exclude)


class InactiveState:
    """``request.state.segmint`` while segmint has not started: the same interface, and the
    answers of a visitor segmint knows nothing about (no slot shows anything), so an app that
    renders widgets itself serves its page without them instead of failing."""

    __slots__ = ("path",)

    identity = NOT_STARTED

    def __init__(self, path: str) -> None:
        self.path = path

    def start_profile(self) -> None:
        pass

    def profile_now(self) -> Profile:
        return Profile(key=ANONYMOUS_PROFILE_KEY)

    async def profile(self) -> Profile:
        return self.profile_now()

    async def decision(self, *slots: str, path: str | None = None, exclude: Iterable[str] = ()) -> Decision:
        return Decision(slots={slot: SlotDecision(slot=slot) for slot in slots}, visitor_key=ANONYMOUS_PROFILE_KEY,
                        now=datetime.now(timezone.utc))

    def render(self, slot_decision: SlotDecision) -> str:
        return ""

    async def identified(self) -> Identity:
        return NOT_STARTED

    def release(self) -> None:
        pass

    async def refresh_identity(self) -> None:
        pass
