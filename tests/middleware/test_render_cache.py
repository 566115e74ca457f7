"""The request path's small caches: rendered widgets (per config and page charset) and what an
Accept value says of HTML. Both must answer exactly what computing afresh answers."""

from __future__ import annotations

from typing import Any

from segmint.engine.catalog import Product
from segmint.engine.decide import SlotDecision
from segmint.middleware import asgi
from segmint.middleware.context import RENDER_CACHE_SIZE, Core


class _Runtime:
    """Just what ``Core.render`` reads: the config (swapped on reload) and the renderer."""

    def __init__(self) -> None:
        self.config: Any = object()
        self.calls = 0

    def render(self, slot_decision: SlotDecision) -> str:
        self.calls += 1
        names = ", ".join(p.name for p in slot_decision.products)
        return f"<section>{slot_decision.title}: {names} \u20ac</section>"


def _decision(title: str = "Cr\xe8me picks", skus: tuple[str, ...] = ("a",)) -> SlotDecision:
    products = [Product(sku=s, name=f"Name {s}", url=f"/p/{s}", price=1.0, category="x") for s in skus]
    return SlotDecision(slot="home", campaign="c", variant="default", strategy="manual", title=title,
                        products=products)


def test_widgets_are_encoded_per_page_charset_and_rendered_once_per_config():
    runtime = _Runtime()
    core = Core(runtime, max_workers=1)
    try:
        first = _decision()
        utf8 = core.widget(first, "utf-8")
        latin = core.widget(_decision(), "iso8859-1")  # an equal decision, another page charset
        assert utf8 == "<section>Cr\xe8me picks: Name a \u20ac</section>".encode()
        assert latin == b"<section>Cr\xe8me picks: Name a &#8364;</section>"
        assert core.widget(_decision(), "utf-8") is utf8 and runtime.calls == 1
        assert core.render(_decision(skus=("a", "b"))).endswith("Name a, Name b \u20ac</section>")
        assert runtime.calls == 2  # other products: rendered anew

        runtime.config = object()  # a hot reload: nothing rendered under the old config is reused
        assert core.widget(_decision(), "utf-8") == utf8 and runtime.calls == 3
    finally:
        core.close()


def test_the_widget_cache_stays_bounded():
    runtime = _Runtime()
    core = Core(runtime, max_workers=1)
    try:
        for i in range(RENDER_CACHE_SIZE * 2 + 5):
            assert core.render(_decision(title=f"t{i}")).startswith(f"<section>t{i}:")
            assert len(core._rendered) <= RENDER_CACHE_SIZE
    finally:
        core.close()


def test_accept_values_are_classified_as_afresh_and_the_memo_stays_bounded():
    def scope(accept: bytes) -> dict[str, Any]:
        return {"headers": [(b"host", b"x"), (b"accept", accept)]}

    for _ in range(2):  # the second pass answers from the memo
        assert asgi._accept_kind(scope(b"text/html,application/xhtml+xml")) == asgi._PAGE
        assert asgi._accept_kind(scope(b"TEXT/HTML")) == asgi._PAGE
        assert asgi._accept_kind(scope(b"application/xhtml+xml")) == asgi._MAYBE
        assert asgi._accept_kind(scope(b"*/*")) == asgi._MAYBE
        assert asgi._accept_kind(scope(b"application/json")) == asgi._NO_HTML
        assert asgi._accept_kind({"headers": [(b"host", b"x")]}) == asgi._MAYBE
    for i in range(asgi._ACCEPT_KINDS_MAX * 2):
        value = f"application/x-{i}".encode()
        assert asgi._accept_kind(scope(value)) == asgi._NO_HTML
        assert len(asgi._ACCEPT_KINDS) <= asgi._ACCEPT_KINDS_MAX
