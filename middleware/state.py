"""``SegmintState``: what the app sees as ``request.state.segmint``.

Per request: the visitor's ``identity`` (computed on first use, so a JSON API request that
never looks costs nothing) and awaitable accessors for the profile and a decision, so an app
can render widgets itself::

    async def home(request):
        segmint = request.state.segmint
        decision = await segmint.decision("home")
        return templates.TemplateResponse("home.html", {"widget": segmint.render(decision.slots["home"])})
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, MutableMapping
from datetime import datetime, timezone
from typing import Any

from segmint.engine.decide import Decision, SlotDecision
from segmint.engine.events import PageView
from segmint.engine.folding import folded
from segmint.engine.identity import Identity
from segmint.engine.profile import Profile

from .context import ANONYMOUS_PROFILE_KEY, Core
from .tracking import page_view_event

__all__ = ["SegmintState", "InactiveState", "UNIDENTIFIED", "NOT_STARTED"]

#: The identity used when identification failed: no cookie, no tracking, defaults only.
UNIDENTIFIED = Identity(personalize=False, track=False, reason="identification failed")
#: The identity of every request while segmint has not started.
NOT_STARTED = Identity(personalize=False, track=False, reason="segmint has not started")


class SegmintState:
    """Per-request identity, profile and decision access (``request.state.segmint``)."""

    __slots__ = ("path", "_core", "_scope", "_config", "_identity", "_profile", "_profile_task", "_saw_user")

    def __init__(self, core: Core, scope: MutableMapping[str, Any], config: Any, path: str) -> None:
        self.path = path
        self._core = core
        self._scope = scope
        self._config = config
        self._identity: Identity | None = None
        self._profile: Profile | None = None
        self._profile_task: asyncio.Future[Profile] | None = None
        self._saw_user = False

    @property
    def identity(self) -> Identity:
        """Who the visitor is (asks the ``segmint_identify_visitor`` plugins once).

        A plugin that raises or returns garbage is counted and logged; the request then goes
        on as an anonymous one (``UNIDENTIFIED``): segmint fails open.
        """
        if self._identity is None:
            self._saw_user = "user" in self._scope
            try:
                self._identity = self._core.identify(self._scope, self._config)
            except Exception as exc:  # noqa: BLE001 - fail open
                self._core.counters.failure("identify", exc)
                self._identity = UNIDENTIFIED
        return self._identity

    def start_profile(self) -> None:
        """Have the profile ready soon: at once when no I/O is needed, else load it in the
        background (idempotent): as a task on this loop when the store has an async client,
        else in the pool. Raises ``Overloaded`` when too much work is pending, and what a
        cache peek raised (caller fails open).
        """
        if self._profile is not None or self._profile_task is not None:
            return
        identity = self.identity
        core = self._core
        self._profile = core.known_profile(identity)
        if self._profile is None:
            if core.async_profiles:
                self._profile_task = core.spawn(core.aload_profile, identity)
            else:
                self._profile_task = core.submit(core.load_profile, identity)

    def profile_now(self) -> Profile | None:
        """The profile if it is ready (no waiting), else None."""
        task = self._profile_task
        ready = task is not None and task.done() and not task.cancelled() and task.exception() is None
        if self._profile is None and ready:
            assert task is not None
            self._profile = task.result()
        return self._profile

    async def profile(self) -> Profile:
        self.start_profile()
        if self._profile is not None:
            return self._profile
        assert self._profile_task is not None
        return await asyncio.shield(self._profile_task)

    async def decision(self, *slots: str, path: str | None = None, exclude: Iterable[str] = ()) -> Any:
        """The decision for ``slots`` on this page (blocking work runs in the pool), made on
        the profile including this request's page view (``seen_profile``)."""
        profile = await self.profile()
        now = self._core.now()
        return await self._core.submit(self._core.decide, self.identity, self.seen_profile(profile, now), slots,
                                       path or self.path, tuple(exclude), now)

    def page_view(self, now: datetime) -> PageView | None:
        """The page view this request records (None when the visitor or page views are not
        tracked)."""
        identity = self.identity
        if not identity.track or not self._core.settings().track_page_views:
            return None
        return page_view_event(identity, self.path, now)

    def seen_profile(self, profile: Profile, now: datetime) -> Profile:
        """``profile`` as it will be once this request's page view is stored: decisions see
        the visit this page starts (the first page of a second visit is a returning
        visitor's) without waiting for the background writer. A copy: the cached profile is
        shared, and the store counts the page view once when it folds it."""
        view = self.page_view(now)
        return folded(profile, (view,)) if view is not None else profile

    def render(self, slot_decision: Any) -> str:
        """The HTML widget of one slot's decision (escaped by the renderer; "" for none)."""
        return self._core.render(slot_decision)

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

    def refresh_identity(self) -> None:
        """Re-identify when an inner middleware authenticated the request after we looked.

        Starlette's ``AuthenticationMiddleware`` usually runs inside segmint and sets
        ``scope["user"]`` on the shared scope; seeing it at response time lets a logged-in
        customer get their own profile even so. A changed identity restarts the profile load.
        """
        if self._identity is None or self._saw_user or "user" not in self._scope:
            return
        self._saw_user = True
        old = self._identity
        fresh = self._core.identify(self._scope, self._config)
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

    def render(self, slot_decision: Any) -> str:
        return ""

    def release(self) -> None:
        pass

    def refresh_identity(self) -> None:
        pass
