"""What segmint reads from request URLs: the product of a product page, and the widget click
parameter (removed from the query string before the app sees it)."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from segmint.engine.tracking import CLICK_PARAM

__all__ = ["product_path_pattern", "split_click_param", "CLICK_NEEDLE"]

_CLICK_KEY = CLICK_PARAM.encode()
#: A query string without these bytes has no click parameter (the cheap check per request).
CLICK_NEEDLE = _CLICK_KEY + b"="


def split_click_param(query: bytes) -> tuple[bytes, str | None]:
    """``query`` without the click parameter, and the parameter's decoded value (or None).

    Other parameters are kept byte for byte, in order.
    """
    kept: list[bytes] = []
    value: str | None = None
    for pair in query.split(b"&"):
        key, _, raw = pair.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == _CLICK_KEY:
            if value is None:
                value = unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "replace")
            continue
        kept.append(pair)
    return b"&".join(kept), value


def product_path_pattern(template: str) -> re.Pattern[str] | None:
    """``/products/{sku}`` -> a regex whose ``sku`` group matches one path segment."""
    if not template or "{sku}" not in template:
        return None
    before, _, after = template.partition("{sku}")
    return re.compile(f"^{re.escape(before)}(?P<sku>[^/]{{1,128}}){re.escape(after)}/?$")
