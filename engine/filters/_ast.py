"""The validated filter tree and MongoDB's path rules.

The parser (``_parse.py``) turns a spec into these nodes; the code generator
(``_codegen.py``) and the explainer (``_explain.py``) both work from them, and both use
``resolve`` and ``Cond.test`` here, so the fast path and the trace cannot disagree.

A leaf condition is a ``Cond``: an operator with a pre-converted operand, as a predicate
``p(value, now)`` over *one* value. MongoDB applies it to every value a path reaches
(``resolve``) and, for most operators, to each element of an array value as well as to the
array as a whole (``expands``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

from ._values import MISSING

__all__ = ["Cond", "NotCond", "FieldGroup", "Logical", "SegmentRef", "Node", "resolve", "group_matches"]

Predicate = Callable[[Any, "datetime | None"], bool]


@dataclass(eq=False, slots=True)
class Cond:
    """One operator applied to the value(s) at a path, e.g. ``$lte 14``."""

    op: str
    operand: Any  # as written, for explain and errors
    p: Predicate  # over a single value, no array expansion
    expands: bool = True  # also try each element of an array value
    negate: bool = False  # $ne, $nin, $exists false: NOT(any value matches p)
    fast: tuple[str, Any] | None = None  # a shortcut the code generator may inline
    needs_now: bool = False
    sub: Node | None = None  # $elemMatch over documents: the inner filter
    sub_conds: list[Cond | NotCond] | None = None  # $elemMatch over values

    def test(self, value: Any, now: datetime | None) -> bool:
        """Does ``p`` hold for ``value`` or, when it expands, for one of its elements?"""
        p = self.p
        if p(value, now):
            return True
        if self.expands and type(value) in (list, tuple):
            for element in value:
                if p(element, now):
                    return True
        return False


@dataclass(eq=False, slots=True)
class NotCond:
    """``{"$not": {...}}`` on a field: true unless all inner conditions match."""

    conds: list[Cond | NotCond]
    operand: Any
    op: str = "$not"


@dataclass(eq=False, slots=True)
class FieldGroup:
    """All conditions written on one field, ``{"a.b": {"$gte": 1, "$lte": 5}}`` (an AND)."""

    path: str
    parts: tuple[str, ...]
    items: list[Cond | NotCond]


@dataclass(eq=False, slots=True)
class Logical:
    """``$and`` / ``$or`` / ``$nor`` (the top level of a filter object is an ``$and``)."""

    op: str
    children: list[Node] = field(default_factory=list)
    implicit: bool = False  # the implicit AND of an object's keys, shown without a label


@dataclass(eq=False, slots=True)
class SegmentRef:
    """``{"$segment": "name"}``: the compiled filter of another named segment."""

    name: str
    target: Any  # a Filter


Node = Union[FieldGroup, Logical, SegmentRef]


# -- paths ----------------------------------------------------------------------------------

def _index(part: str) -> int | None:
    """A path part that addresses an array position (digits, no leading zero)."""
    if part.isdigit() and part.isascii() and (part == "0" or part[0] != "0"):
        return int(part)
    return None


def resolve(doc: Any, parts: tuple[str, ...]) -> tuple[list[Any], list[Any]]:
    """Every value ``parts`` reaches in ``doc``, as MongoDB's path iterator yields them.

    Returns ``(values, whole)``: ``values`` are tested with array expansion; ``whole`` holds
    arrays reached by an explicit position (``a.0`` when ``a[0]`` is an array), which MongoDB
    tests as a whole only. A path that stops at a non-document yields MISSING, except inside
    an array, where scalar elements are skipped.
    """
    values: list[Any] = []
    whole: list[Any] = []
    _walk(doc, parts, 0, values, whole)
    return values, whole


def _walk(value: Any, parts: tuple[str, ...], i: int, values: list, whole: list) -> None:
    n = len(parts)
    while i < n:
        if isinstance(value, Mapping):
            value = value.get(parts[i], MISSING)
            if value is MISSING:
                values.append(MISSING)
                return
            i += 1
        elif type(value) in (list, tuple):
            _walk_array(value, parts, i, values, whole)
            return
        else:
            values.append(MISSING)
            return
    values.append(value)


def _walk_array(array: Any, parts: tuple[str, ...], i: int, values: list, whole: list) -> None:
    position = _index(parts[i])
    last = i + 1 == len(parts)
    for pos, element in enumerate(array):
        if isinstance(element, Mapping):
            _walk(element, parts, i, values, whole)
        if pos != position:
            continue
        if last:
            (whole if type(element) in (list, tuple) else values).append(element)
        elif isinstance(element, Mapping):
            _walk(element, parts, i + 1, values, whole)
        elif type(element) in (list, tuple):
            _walk_array(element, parts, i + 1, values, whole)


def cond_matches(cond: Cond | NotCond, values: list, whole: list, now: datetime | None) -> bool:
    """One condition against the resolved values of its path."""
    if type(cond) is NotCond:
        return not all(cond_matches(c, values, whole, now) for c in cond.conds)
    hit = any(cond.test(v, now) for v in values) or any(cond.p(w, now) for w in whole)
    return hit != cond.negate


def group_matches(group: FieldGroup, doc: Any, now: datetime | None) -> bool:
    """The slow path: resolve the field's path in full, then test every condition."""
    values, whole = resolve(doc, group.parts)
    for cond in group.items:
        if not cond_matches(cond, values, whole, now):
            return False
    return True


def value_matches(conds: list[Cond | NotCond], value: Any, now: datetime | None) -> bool:
    """``$elemMatch`` over values: every condition holds for this one element, unexpanded."""
    for cond in conds:
        if type(cond) is NotCond:
            if value_matches(cond.conds, value, now):
                return False
        elif cond.p(value, now) == cond.negate:
            return False
    return True
