"""Finding widget slots and product markers in an HTML page, and filling the slots.

A page marks a slot with an element or a comment::

    <div data-segmint-slot="cart"></div>        (other attributes, single quotes, ``/>``,
    <section class="x" data-segmint-slot='home'> </section>      whitespace are all fine)
    <!-- segmint:slot cart -->

and a product page may say which product it shows with ``data-segmint-product="sku"``.
Tag names may be in any case; the ``data-segmint-*`` attribute names are lowercase.
An element slot is filled inside the element (the page keeps its container and classes);
its placeholder text, if any, is replaced; a slot element with nested markup is left alone.
A comment slot is replaced by the widget.

Everything works on the raw bytes (no decoding of the page) with precompiled regexes whose
attribute scans are bounded, so a hostile page cannot make matching quadratic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

__all__ = ["SlotMatch", "scan_page", "find_slots", "find_product", "fill_slots", "valid_slot_name", "MAX_SLOTS"]

#: At most this many slots per page are filled; more are left as they are.
MAX_SLOTS = 32
#: Longest attribute text scanned inside one tag.
_MAX_TAG = 2048

_NAME = rb"[A-Za-z0-9_.:-]{1,64}"
_SLOT_NAME_RE = re.compile(_NAME.decode())
_ATTR_VALUE = rb"""(?:"(?P<dq>[^"<>]{0,256})"|'(?P<sq>[^'<>]{0,256})'|(?P<uq>[^\s"'=<>`/]{1,256}))"""

# An element slot: <tag ... data-segmint-slot="name" ...> text </tag>, or self-closing.
_ELEMENT_SLOT = re.compile(
    rb"<(?P<tag>[A-Za-z][A-Za-z0-9-]{0,20})(?P<before>[^<>]{0,%d}?)\s(?-i:data-segmint-slot)\s*=\s*"
    % _MAX_TAG
    + _ATTR_VALUE
    + rb"(?P<after>[^<>]{0,%d}?)(?:(?P<selfclose>/\s*>)|>(?P<inner>[^<]{0,%d})</(?P=tag)\s*>)"
    % (_MAX_TAG, 65536),
    re.IGNORECASE,
)
_COMMENT_SLOT = re.compile(rb"<!--\s{0,16}segmint:slot\s{1,16}(?P<name>[^\s<>]{1,256})\s{0,16}-->")
_PRODUCT = re.compile(rb"\sdata-segmint-product\s*=\s*" + _ATTR_VALUE)
_NEEDLE = b"segmint"
#: Slot elements up to this many bytes are memoized (``_element_slot``), this many of them.
_MEMO_BYTES, _MEMO_SIZE = 512, 256
_memo: dict[tuple[int, bytes], tuple[SlotMatch | None, int]] = {}


class SlotMatch(msgspec.Struct, frozen=True):
    """One slot found in a page: where it is and what replaces it.

    ``start``/``end`` delimit the bytes to replace; ``prefix``/``suffix`` are kept around the
    widget (the element's own tags), so filling is ``prefix + widget + suffix``. (A struct:
    built on every page view, at a fifth of a frozen dataclass's cost.)
    """

    name: str
    start: int
    end: int
    prefix: bytes = b""
    suffix: bytes = b""


def valid_slot_name(name: str) -> bool:
    """Slot names are short tokens; anything with markup or spaces is ignored."""
    return _SLOT_NAME_RE.fullmatch(name) is not None


def _attr(match: re.Match[bytes]) -> bytes:
    return match["dq"] if match["dq"] is not None else match["sq"] if match["sq"] is not None else match["uq"]


def _decode_name(raw: bytes) -> str | None:
    try:
        name = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    return name if valid_slot_name(name) else None


def _element_slot(body: bytes, pos: int) -> tuple[SlotMatch | None, int]:
    """The element slot whose ``data-segmint-slot`` attribute is at ``pos``; where to go on.

    Pages of one template repeat the same slot markup on every view, so the answer is
    memoized on the element's own bytes (from its ``<`` to the ``>`` that would close it):
    a match lies within them, so equal bytes give the same match, shifted.
    """
    start = body.rfind(b"<", max(0, pos - _MAX_TAG), pos)
    if start == -1:
        return None, pos + 1
    open_end = body.find(b">", pos)
    inner_end = body.find(b"<", open_end) if open_end != -1 else -1
    close_end = body.find(b">", inner_end) if inner_end != -1 else -1
    end = (close_end if close_end != -1 else open_end) + 1
    key = (pos - start, body[start:end]) if 0 < end - start <= _MEMO_BYTES else None
    found = _memo.get(key) if key is not None else None
    if found is None:
        found = _element_at(body, start, pos)
        if key is not None:
            if len(_memo) >= _MEMO_SIZE:
                _memo.clear()
            _memo[key] = found
    slot, resume = found
    if slot is None:
        return None, start + resume
    return SlotMatch(slot.name, start + slot.start, start + slot.end, slot.prefix, slot.suffix), start + resume


def _element_at(body: bytes, start: int, pos: int) -> tuple[SlotMatch | None, int]:
    """``_element_slot`` without the memo; offsets relative to ``start``."""
    m = _ELEMENT_SLOT.match(body, start)
    if m is None or not m.start("before") <= pos <= m.end("after"):
        return None, pos + 1 - start
    name = _decode_name(_attr(m))
    if name is None:
        return None, m.end() - start
    tag = m["tag"]
    end_of_open = m.start("selfclose") if m["selfclose"] else m.start("inner") - 1
    open_tag = b"<" + tag + body[m.end("tag") : end_of_open].rstrip() + b">"
    return SlotMatch(name, 0, m.end() - start, open_tag, b"</" + tag + b">"), m.end() - start


def _comment_slot(body: bytes, pos: int) -> tuple[SlotMatch | None, int]:
    start = body.rfind(b"<!--", max(0, pos - 24), pos)
    m = _COMMENT_SLOT.match(body, start) if start != -1 else None
    if m is None:
        return None, pos + 1
    name = _decode_name(m["name"])
    return (SlotMatch(name, m.start(), m.end()) if name is not None else None), m.end()


def scan_page(body: bytes) -> tuple[list[SlotMatch], str | None]:
    """The slots (as ``find_slots``) and the product marker (as ``find_product``) in one pass.

    One ``bytes.find`` scan for ``segmint`` drives everything, so the cost is one pass over
    the page plus a bounded regex match per marker, however many tags the page has.
    """
    slots: list[SlotMatch] = []
    product: str | None = None
    pos = body.find(_NEEDLE)
    while pos != -1 and len(slots) < MAX_SLOTS * 2:
        after = body[pos + len(_NEEDLE) : pos + len(_NEEDLE) + 8]
        slot: SlotMatch | None = None
        resume = pos + 1
        if after.startswith(b"-slot") and body[pos - 5 : pos] == b"data-":
            slot, resume = _element_slot(body, pos - 5)
        elif after.startswith(b":slot"):
            slot, resume = _comment_slot(body, pos)
        elif product is None and after.startswith(b"-product") and body[pos - 5 : pos] == b"data-":
            product = _product_at(body, pos - 6)
        if slot is not None:
            slots.append(slot)
        pos = body.find(_NEEDLE, max(resume, pos + 1))
    seen: set[str] = set()
    unique = []
    for slot in slots:
        if slot.name not in seen:
            seen.add(slot.name)
            unique.append(slot)
    return unique[:MAX_SLOTS], product


def find_slots(body: bytes) -> list[SlotMatch]:
    """The slots in ``body``, in page order (first occurrence of a name wins), at most MAX_SLOTS."""
    return scan_page(body)[0]


def _product_at(body: bytes, pos: int) -> str | None:
    m = _PRODUCT.match(body, max(pos, 0))
    if m is None:
        return None
    try:
        sku = _attr(m).decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return sku if 0 < len(sku) <= 128 else None


def find_product(body: bytes) -> str | None:
    """The sku of the first ``data-segmint-product`` attribute, or None."""
    return scan_page(body)[1]


def fill_slots(body: bytes, slots: list[SlotMatch], widgets: Mapping[str, bytes]) -> bytes:
    """``body`` with each slot that has a widget filled; other slots stay as they were."""
    parts: list[bytes] = []
    pos = 0
    for slot in slots:
        widget = widgets.get(slot.name)
        if widget is None:
            continue
        parts.append(body[pos : slot.start])
        parts.append(slot.prefix)
        parts.append(widget)
        parts.append(slot.suffix)
        pos = slot.end
    if not parts:
        return body
    parts.append(body[pos:])
    return b"".join(parts)
