"""The request path's memo of what an Accept value says of HTML: it must answer exactly what
computing afresh answers (the widget cache is tested in tests/engine/test_personalize.py)."""

from __future__ import annotations

from typing import Any

from segmint.middleware import asgi


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
