"""Header rules for rewritten pages, and the public surface of segmint.middleware."""

from __future__ import annotations

import pytest

import segmint.middleware
from segmint.middleware.headers import html_charset, merge_vary, private_cache_control


@pytest.mark.parametrize("value,expected", [
    (b"", b"Cookie"),
    (b"Accept-Encoding", b"Accept-Encoding, Cookie"),
    (b"accept-encoding, cookie", b"accept-encoding, cookie"),
    (b"*", b"*"),
])
def test_merge_vary(value: bytes, expected: bytes):
    assert merge_vary(value) == expected


@pytest.mark.parametrize("value,expected", [
    (b"public, max-age=60", b"private, max-age=60"),
    (b"max-age=60, s-maxage=600", b"private, max-age=60"),
    (b"no-store", b"no-store"),
    (b"private, no-cache", b"private, no-cache"),
])
def test_private_cache_control(value: bytes, expected: bytes):
    assert private_cache_control(value) == expected


@pytest.mark.parametrize("content_type,codec", [
    (b"text/html", "utf-8"),
    (b"text/html; charset=UTF-8", "utf-8"),
    (b'text/html; charset="iso-8859-1"', "iso8859-1"),
    (b"text/html; charset=utf-16", None),
    (b"text/html; charset=klingon", None),
])
def test_html_charset(content_type: bytes, codec: str | None):
    assert html_charset(content_type) == codec


def test_public_surface():
    assert segmint.middleware.__all__[0] == "SegmintMiddleware"
    for name in segmint.middleware.__all__:
        assert getattr(segmint.middleware, name) is not None
