"""Personalizing one page: decide its slots on the profile as this page leaves it, and
render each shown widget for the page's charset.

``Segmint.personalize`` is the one call the middleware makes per HTML page that has slots
(on the event loop when no plugin on the way may block, else in its pool). What the page
records (page view, product view, impressions) is built by ``tracking.py``; the page view is
passed in, so the decision sees the visit this page starts (the first page of a second visit
is a returning visitor's) without waiting for the writer to store it.

Rendered widgets are cached per compiled config and decision content: most visitors of a page
get one of a few decisions, rendering costs more than deciding, and the renderer hook sees
only the decision and the config, so equal inputs give equal HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from .decide import Decision, LazyDocument, SlotDecision, decide
from .document import enriched_document
from .events import PageView
from .folding import folded
from .hooks import call_each
from .identity import Identity
from .profile import Profile

if TYPE_CHECKING:
    from .config import CompiledConfig
    from .runtime import Segmint

__all__ = ["PageVisit", "Personalization", "Personalizer", "RENDER_CACHE_SIZE", "ANONYMOUS_VISITOR"]

T = TypeVar("T")
#: Rendered widgets kept (str and page bytes); the cache starts over when full.
RENDER_CACHE_SIZE = 2048
#: Who variants are bucketed by for visitors segmint does not personalize for (bots, no consent).
ANONYMOUS_VISITOR = "anonymous"


@dataclass(frozen=True, slots=True)
class PageVisit:
    """One page view to personalize."""

    identity: Identity
    path: str
    #: The page's slot names, in page order.
    slots: Sequence[str]
    now: datetime
    #: The product of a product page (kept out of its own widgets), else None.
    sku: str | None = None
    #: The page view this request records (None when not tracked): folded into the profile
    #: the decision sees.
    view: PageView | None = None
    #: The page's charset: widgets come back encoded in it.
    charset: str = "utf-8"


class Personalization(NamedTuple):
    decision: Decision
    #: Slot name -> the widget's HTML in the page's charset, for each slot that shows one.
    widgets: dict[str, bytes]


class Personalizer:
    """``Segmint.personalize``: decide and render one page, with the render cache.

    It also makes every decision of the runtime (``Segmint.decide`` and ``explain`` call
    ``decide`` here), so a page goes from the middleware to the decision without a hop back
    through the runtime."""

    def __init__(self, runtime: Segmint) -> None:
        self._runtime = runtime
        self._rendered: dict[tuple[Any, ...], Any] = {}  # widget HTML (str) and its bytes
        self._rendered_for: Any = None  # the compiled config the cache was filled under

    def personalize(self, visit: PageVisit, profile: Profile) -> Personalization:
        """Decide ``visit``'s slots for ``profile`` (plus the visit's page view) and render
        the shown widgets. Blocking only where a plugin blocks; raises what the decision
        raised (the caller serves the page unchanged)."""
        identity = visit.identity
        if visit.view is not None:
            profile = folded(profile, (visit.view,))
        visitor = identity.visitor_id if identity.personalize and identity.visitor_id else ANONYMOUS_VISITOR
        decision = self.decide(profile, visit.slots, path=visit.path, visitor_id=visitor, now=visit.now,
                               exclude=(visit.sku,) if visit.sku else ())
        widgets: dict[str, bytes] = {}
        for name, slot_decision in decision.slots.items():
            if slot_decision.campaign and not slot_decision.control and slot_decision.products:
                html = self.widget(slot_decision, visit.charset)
                if html:
                    widgets[name] = html
        return Personalization(decision, widgets)

    def decide(self, profile: Profile, slots: Iterable[str], *, path: str, visitor_id: str | None,
               now: datetime, exclude: Iterable[str] = (), document: Mapping[str, Any] | None = None,
               state: CompiledConfig | None = None, observed: bool = True) -> Decision:
        """``Segmint.decide``: the campaign of each slot under the current config (or
        ``state``), on the document built by ``document.py`` when a rule or strategy first
        reads it (or on ``document``). ``segmint_decision_made`` observers are told unless
        ``observed`` is False (``explain`` asks what would be shown; nothing was)."""
        runtime = self._runtime
        state = runtime.state if state is None else state
        batch, failures = runtime.batch, runtime.failures
        if document is None:
            document = LazyDocument(partial(enriched_document, profile, now, rfm=batch.rfm, predict=batch.predict,
                                            pm=state.pm, failure_log=failures))
        decision = decide(state.campaigns, profile=profile, document=document, slots=slots, path=path,
                          visitor_key=visitor_id or profile.key, now=now, segments=state.segments,
                          strategies=state.strategies, catalog=state.catalog, stats=batch.products,
                          exclude=exclude, failure_log=failures)
        if observed and state.pm.hook.segmint_decision_made.get_hookimpls():  # none: skip the call machinery
            call_each(state.pm, "segmint_decision_made", failure_log=failures, decision=decision, profile=profile)
        return decision

    def render(self, slot_decision: SlotDecision) -> str:
        """The widget HTML of one slot decision ("" for none), cached per (config, decision
        content); the cache is dropped when a hot reload swaps the config."""
        return self._cached(_render_key(slot_decision), lambda: self._runtime.render_uncached(slot_decision))

    def widget(self, slot_decision: SlotDecision, charset: str) -> bytes:
        """``render`` encoded for a page in ``charset`` (characters it lacks as references),
        cached alongside: the bytes a page's slot is filled with."""
        return self._cached((charset, _render_key(slot_decision)),
                            lambda: self.render(slot_decision).encode(charset, "xmlcharrefreplace"))

    def _cached(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        # A plain dict swapped whole on reload or when full: a read is one atomic ``get``
        # under the GIL, with no lock and no LRU bookkeeping on the request path.
        state = self._runtime.state
        cache = self._rendered
        if self._rendered_for is not state:
            cache = self._rendered = {}
            self._rendered_for = state
        value = cache.get(key)
        if value is None:
            value = make()
            if len(cache) >= RENDER_CACHE_SIZE:
                cache = self._rendered = {}
            cache[key] = value
        return value


def _render_key(slot_decision: SlotDecision) -> tuple[Any, ...]:
    """What a rendered widget depends on besides the config."""
    return (slot_decision.slot, slot_decision.campaign, slot_decision.variant, slot_decision.segment,
            slot_decision.title, slot_decision.strategy, slot_decision.coupon, slot_decision.control,
            tuple([p.sku for p in slot_decision.products]))
