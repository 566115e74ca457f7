"""Single-value predicates ``p(value, now) -> bool`` for each MongoDB operator.

Operands are converted once here: dates parsed, ``$in`` literals split into hashable sets by
type bracket, regexes compiled. Each builder also names a *fast* shortcut the code generator
inlines for the common case (a number compared with a number) so evaluation rarely calls
back into Python functions.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ._dates import DateOperand, date_operand, to_instant
from ._regex import MAX_TEXT
from ._values import MISSING, NUMBER, STRING, bracket, bson_compare, is_number, mongo_equal

__all__ = ["eq_predicate", "cmp_predicate", "in_predicate", "between_predicate", "regex_predicate"]

Pred = Callable[[Any, Any], bool]  # (value, now) -> bool

_OPS = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def _never(v: Any, now: Any) -> bool:
    return False


def _is_null(v: Any, now: Any) -> bool:
    return v is None or v is MISSING


def regex_predicate(pattern: re.Pattern[str]) -> Pred:
    search = pattern.search

    def p(v: Any, now: Any) -> bool:
        return isinstance(v, str) and search(v, 0, MAX_TEXT) is not None

    return p


def _date_eq(d: DateOperand) -> Pred:
    text, fixed = d.text, d.fixed

    def p(v: Any, now: Any) -> bool:
        if text is not None and v == text and type(v) is str:
            return True  # the literal string itself, date or not (see docs/filters.md)
        instant = to_instant(v)
        return instant is not None and instant == (fixed if fixed is not None else d.at(now))

    return p


def eq_predicate(x: Any) -> tuple[Pred, Any]:
    """Equality with literal ``x``: (predicate, fast shortcut or None)."""
    if x is None:
        return _is_null, ("is_none", None)
    if isinstance(x, re.Pattern):
        return regex_predicate(x), ("regex", x)
    d = date_operand(x)
    if d is not None:
        return _date_eq(d), None
    if type(x) is bool:
        return (lambda v, now: v is x), ("is", x)
    if is_number(x):
        return (lambda v, now: is_number(v) and v == x), ("num_eq", x)
    if isinstance(x, str):
        return (lambda v, now: isinstance(v, str) and v == x), ("str_eq", x)
    return (lambda v, now: mongo_equal(v, x)), None


def cmp_predicate(op: str, x: Any) -> tuple[Pred, Any]:
    """``$gt/$gte/$lt/$lte`` against literal ``x``, within x's type bracket only."""
    if x is None:
        return (_is_null if op in ("$gte", "$lte") else _never), None
    d = date_operand(x)
    if d is not None:
        p = _date_cmp(op, d)
        # The generated code compares with a fixed instant as a constant, else calls p.instant.
        return p, ("date_" + op[1:], (d.fixed, p.instant))  # type: ignore[attr-defined]
    if is_number(x):
        # NaN fails every ordering comparison, as in MongoDB (and Python).
        p = {
            "$gt": lambda v, now: is_number(v) and v > x,
            "$gte": lambda v, now: is_number(v) and v >= x,
            "$lt": lambda v, now: is_number(v) and v < x,
            "$lte": lambda v, now: is_number(v) and v <= x,
        }[op]
        return p, ("num_" + op[1:], x)
    fn = _OPS[op]
    if isinstance(x, str):
        return (lambda v, now: isinstance(v, str) and fn(v, x)), ("str_" + op[1:], x)
    b = bracket(x)
    return (lambda v, now: bracket(v) == b and fn(bson_compare(v, x), 0)), None


def _date_cmp(op: str, d: DateOperand) -> Pred:
    """The comparison with a date operand; ``p.instant(now)`` is the operand's instant.

    A relative operand (today-14d) resolves against ``now``; every segment of a page view is
    evaluated with the same ``now`` object, so the last resolution is kept (one tuple,
    assigned at once, so threads with different ``now`` values cannot mix them up).
    """
    fn = _OPS[op]
    fixed = d.fixed
    last: list[tuple[Any, datetime]] = [(None, datetime.min)]

    def instant(now: Any) -> datetime:
        if fixed is not None:
            return fixed
        seen, at = last[0]
        if seen is not now:
            at = d.at(now)
            last[0] = (now, at)
        return at

    def p(v: Any, now: Any) -> bool:
        value = to_instant(v)
        return value is not None and fn(value, instant(now))

    p.instant = instant  # type: ignore[attr-defined]
    return p


def between_predicate(lo: Any, hi: Any) -> Pred:
    """``$between: [lo, hi]``: one value within both bounds, inclusive."""
    above, _ = cmp_predicate("$gte", lo)
    below, _ = cmp_predicate("$lte", hi)
    return lambda v, now: above(v, now) and below(v, now)


def in_predicate(values: list[Any], regexes: list[re.Pattern[str]]) -> tuple[Pred, Any]:
    """``$in``: hashable literals go into per-bracket sets; the rest are tested one by one."""
    strs: set[str] = set()
    nums: set[Any] = set()
    bools: set[bool] = set()
    has_null = False
    others: list[Pred] = [regex_predicate(r) for r in regexes]
    for x in values:
        if x is None:
            has_null = True
        elif type(x) is bool:
            bools.add(x)
        elif date_operand(x) is not None:
            others.append(eq_predicate(x)[0])
        elif isinstance(x, str):
            strs.add(str(x))
        elif is_number(x):
            nums.add(x)
        else:
            others.append(eq_predicate(x)[0])
    fstrs, fnums, fbools = frozenset(strs), frozenset(nums), frozenset(bools)

    def p(v: Any, now: Any) -> bool:
        t = type(v)
        if t is str:
            hit = v in fstrs
        elif t is int or t is float:
            hit = v in fnums
        elif t is bool:
            hit = v in fbools
        elif v is None or v is MISSING:
            hit = has_null
        else:
            b = bracket(v)
            hit = (b == STRING and v in fstrs) or (b == NUMBER and v in fnums)
        if hit:
            return True
        for other in others:
            if other(v, now):
                return True
        return False

    fast = None
    if not others and not has_null and not bools:
        if strs and not nums:
            fast = ("in_str", fstrs)
        elif nums and not strs:
            fast = ("in_num", fnums)
    return p, fast


def needs_now(x: Any) -> bool:
    d = date_operand(x)
    return d is not None and d.relative
