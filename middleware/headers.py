"""Response header rules for rewritten pages: charset, Vary, Cache-Control, the debug header."""

from __future__ import annotations

import codecs
import functools

from segmint.engine.decide import Decision
from segmint.engine.identity import Identity

from .html import SlotMatch

__all__ = ["html_charset", "merge_vary", "private_cache_control", "debug_value"]

_ASCII_COMPATIBLE = {"utf-8", "ascii", "cp1252"}  # and every iso8859-*
_MAX_DEBUG = 2000


@functools.lru_cache(maxsize=64)
def html_charset(content_type: bytes) -> str | None:
    """The Python codec of an HTML content type, or None when we must not touch the body.

    Cached: an app sends the same few content types on every page.
    """
    _, _, params = content_type.partition(b";")
    for param in params.split(b";"):
        name, _, value = param.strip().partition(b"=")
        if name.strip().lower() == b"charset":
            try:
                codec = codecs.lookup(value.strip().strip(b"\"'").decode("ascii")).name
            except (LookupError, UnicodeDecodeError):
                return None
            return codec if codec in _ASCII_COMPATIBLE or codec.startswith("iso8859") else None
    return "utf-8"


def merge_vary(value: bytes) -> bytes:
    """The app's ``Vary`` value with ``Cookie`` added (once): the page differs per visitor."""
    tokens = [t.strip().lower() for t in value.split(b",")]
    if b"cookie" in tokens or b"*" in tokens:
        return value
    return value + b", Cookie" if value.strip() else b"Cookie"


def private_cache_control(value: bytes) -> bytes:
    """``value`` made safe for one visitor: no ``public``/``s-maxage``, ``private`` added."""
    kept = [d.strip() for d in value.split(b",") if d.strip()]
    kept = [d for d in kept if d.lower() != b"public" and not d.lower().startswith(b"s-maxage")]
    lowered = {d.lower() for d in kept}
    if b"private" not in lowered and b"no-store" not in lowered:
        kept.insert(0, b"private")
    return b", ".join(kept)


def debug_value(identity: Identity, slots: list[SlotMatch], decision: Decision | None, failure: str | None) -> bytes:
    """``X-Segmint-Debug``: per slot ``campaign/variant segment=...``, or why nothing was shown.

    Only campaign ids, variant and segment names and the engine's reasons: no profile data.
    Printable ASCII, at most 2000 characters.
    """
    parts: list[str] = []
    if not identity.personalize:
        parts.append(f"personalize=off ({identity.reason or 'anonymous'})")
    chosen = decision.slots if decision is not None else {}
    for slot in slots:
        sd = chosen.get(slot.name)
        if failure is not None:
            parts.append(f"{slot.name}=unchanged ({failure})")
        elif sd is None or not sd.campaign:
            why = "; ".join(str(r) for r in (sd.reasons if sd is not None else ())[-3:]) or "no campaign"
            parts.append(f"{slot.name}=none ({why})")
        else:
            variant = "control" if sd.control else sd.variant
            parts.append(f"{slot.name}={sd.campaign}/{variant} segment={sd.segment or '-'}")
    text = "; ".join(parts)
    cleaned = "".join(ch if " " <= ch <= "~" else "?" for ch in text)[:_MAX_DEBUG]
    return cleaned.encode("ascii")
