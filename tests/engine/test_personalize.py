"""``Personalizer``: one page decided on the profile including its page view, and the widget
render cache (per compiled config and page charset), which must answer exactly what rendering
afresh answers."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from segmint.engine.catalog import Product
from segmint.engine.decide import Decision, SlotDecision
from segmint.engine.identity import Identity
from segmint.engine.personalize import ANONYMOUS_VISITOR, RENDER_CACHE_SIZE, PageVisit, Personalizer
from segmint.engine.profile import Profile
from segmint.engine.tracking import page_view_event

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


class _Runtime:
    """Just what ``Personalizer`` reads for rendering: the compiled state (swapped on reload)
    and the renderer."""

    def __init__(self) -> None:
        self.state: Any = object()
        self.calls = 0

    def render_uncached(self, slot_decision: SlotDecision) -> str:
        self.calls += 1
        names = ", ".join(p.name for p in slot_decision.products)
        return f"<section>{slot_decision.title}: {names} \u20ac</section>"


class _Personalizer(Personalizer):
    """Decides every slot but "empty" as ``_decision``, recording what it was asked."""

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        self.decided: list[tuple[Profile, dict[str, Any]]] = []

    def decide(self, profile: Profile, slots: Any, **kwargs: Any) -> Decision:  # type: ignore[override]
        self.decided.append((profile, kwargs))
        return Decision(slots={name: _decision(slot=name) if name != "empty" else SlotDecision(slot=name)
                               for name in slots}, visitor_key=profile.key, now=kwargs["now"])


def _decision(title: str = "Cr\xe8me picks", skus: tuple[str, ...] = ("a",), slot: str = "home") -> SlotDecision:
    products = [Product(sku=s, name=f"Name {s}", url=f"/p/{s}", price=1.0, category="x") for s in skus]
    return SlotDecision(slot=slot, campaign="c", variant="default", strategy="manual", title=title,
                        products=products)


def test_widgets_are_encoded_per_page_charset_and_rendered_once_per_config():
    runtime = _Runtime()
    pages = Personalizer(runtime)  # type: ignore[arg-type]
    first = _decision()
    utf8 = pages.widget(first, "utf-8")
    latin = pages.widget(_decision(), "iso8859-1")  # an equal decision, another page charset
    assert utf8 == "<section>Cr\xe8me picks: Name a \u20ac</section>".encode()
    assert latin == b"<section>Cr\xe8me picks: Name a &#8364;</section>"
    assert pages.widget(_decision(), "utf-8") is utf8 and runtime.calls == 1
    assert pages.render(_decision(skus=("a", "b"))).endswith("Name a, Name b \u20ac</section>")
    assert runtime.calls == 2  # other products: rendered anew

    runtime.state = object()  # a hot reload: nothing rendered under the old config is reused
    assert pages.widget(_decision(), "utf-8") == utf8 and runtime.calls == 3


def test_the_widget_cache_stays_bounded():
    runtime = _Runtime()
    pages = Personalizer(runtime)  # type: ignore[arg-type]
    for i in range(RENDER_CACHE_SIZE * 2 + 5):
        assert pages.render(_decision(title=f"t{i}")).startswith(f"<section>t{i}:")
        assert len(pages._rendered) <= RENDER_CACHE_SIZE


def test_a_page_is_decided_on_the_profile_with_its_page_view_and_renders_shown_slots():
    pages = _Personalizer(_Runtime())
    identity = Identity(visitor_id="v1")
    profile = Profile(key="v:v1", visitor_ids=("v1",))
    visit = PageVisit(identity=identity, path="/p/x", slots=["home", "empty"], now=NOW, sku="x",
                      view=page_view_event(identity, "/p/x", NOW), charset="iso8859-1")
    decision, widgets = pages.personalize(visit, profile)
    seen, kwargs = pages.decided[0]
    assert seen.page_views == 1 and seen.visits == 1 and profile.page_views == 0  # a copy
    assert kwargs == {"path": "/p/x", "visitor_id": "v1", "now": NOW, "exclude": ("x",)}
    assert set(decision.slots) == {"home", "empty"}
    assert widgets == {"home": b"<section>Cr\xe8me picks: Name a &#8364;</section>"}  # nothing for "empty"


def test_visitors_not_personalized_are_bucketed_together_and_an_untracked_page_adds_no_view():
    pages = _Personalizer(_Runtime())
    bot = Identity(visitor_id=None, personalize=False, track=False)
    profile = Profile(key="v:anonymous")
    pages.personalize(PageVisit(identity=bot, path="/", slots=["home"], now=NOW), profile)
    seen, kwargs = pages.decided[0]
    assert seen is profile and kwargs["visitor_id"] == ANONYMOUS_VISITOR and kwargs["exclude"] == ()
