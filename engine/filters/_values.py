"""MongoDB value semantics: type brackets, BSON ordering and equality, ``$type`` codes.

MongoDB never compares values of different *type brackets* in a query: ``5`` does not equal
``"5"``, ``true`` is not ``1``, and ``{"$gt": 3}`` never matches a string. Inside arrays and
embedded documents (``{"a": [1, "x"]}`` against ``[1, "y"]``) the full BSON order applies:
brackets first, then values; documents compare field by field (type, name, value) so key
order matters. Python's ``==`` and ``<`` get these wrong (``True == 1``, dict equality ignores
order), which is why everything here is spelled out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from numbers import Real
from typing import Any

__all__ = ["MISSING", "bracket", "bson_compare", "mongo_equal", "is_number", "type_code"]

UTC = timezone.utc


class _Missing:
    """The value of a path that is not in the document (distinct from ``None``/null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# Canonical type brackets, in BSON sort order (minKey and maxKey cannot come from JSON).
NULL, NUMBER, STRING, OBJECT, ARRAY, BINARY, OBJECT_ID, BOOL, DATE, TIMESTAMP, REGEX = range(1, 12)
OTHER = 99


def is_number(value: Any) -> bool:
    """A JSON number: int or float, never bool (``true`` is not ``1`` in MongoDB)."""
    t = type(value)
    if t is int or t is float:
        return True
    return isinstance(value, Real) and not isinstance(value, bool)


def bracket(value: Any) -> int:
    t = type(value)
    if t is str:
        return STRING
    if t is int or t is float:
        return NUMBER
    if t is bool:
        return BOOL
    if value is None or value is MISSING:
        return NULL
    if t is dict or isinstance(value, Mapping):
        return OBJECT
    if t is list or isinstance(value, (list, tuple)):
        return ARRAY
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, Real):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, date):
        return DATE
    if isinstance(value, (bytes, bytearray)):
        return BINARY
    if isinstance(value, re.Pattern):
        return REGEX
    return OTHER


def as_utc(value: date) -> datetime:
    """A ``date``/``datetime`` as an aware UTC datetime (naive means UTC, a date is midnight)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return datetime.combine(value, time(), tzinfo=UTC)


def _sign(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def bson_compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 in MongoDB's BSON order (NaN equals NaN and sorts below every number)."""
    ba, bb = bracket(a), bracket(b)
    if ba != bb:
        return -1 if ba < bb else 1
    if ba == NUMBER:
        if a != a:
            return 0 if b != b else -1
        if b != b:
            return 1
        return _sign(a, b)
    if ba == STRING or ba == BOOL or ba == BINARY:
        if ba == BINARY and len(a) != len(b):
            return _sign(len(a), len(b))
        return _sign(a, b)
    if ba == NULL:
        return 0
    if ba == DATE:
        return _sign(as_utc(a), as_utc(b))
    if ba == ARRAY:
        for x, y in zip(a, b):
            c = bson_compare(x, y)
            if c:
                return c
        return _sign(len(a), len(b))
    if ba == OBJECT:
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            c = _sign(bracket(va), bracket(vb))
            if c:
                return c
            c = _sign(ka, kb) if isinstance(ka, str) and isinstance(kb, str) else 0
            if c:
                return c
            c = bson_compare(va, vb)
            if c:
                return c
        return _sign(len(a), len(b))
    if ba == REGEX:
        return _sign((a.pattern, a.flags), (b.pattern, b.flags))
    return 0 if a == b else 1


def mongo_equal(a: Any, b: Any) -> bool:
    """Equality as MongoDB means it: same bracket, same value, embedded key order included."""
    ta, tb = type(a), type(b)
    if ta is tb and (ta is str or ta is int or ta is bool):
        return a == b
    return bson_compare(a, b) == 0


# -- $type ----------------------------------------------------------------------------------

TYPE_NAMES: dict[str, int] = {
    "double": 1, "string": 2, "object": 3, "array": 4, "binData": 5, "undefined": 6,
    "objectId": 7, "bool": 8, "date": 9, "null": 10, "regex": 11, "dbPointer": 12,
    "javascript": 13, "symbol": 14, "javascriptWithScope": 15, "int": 16, "timestamp": 17,
    "long": 18, "decimal": 19, "minKey": -1, "maxKey": 127,
}
NUMBER_CODES = frozenset({1, 16, 18, 19})
_INT32 = 2**31


def type_code(value: Any) -> int | None:
    """The BSON type code a value would be stored with (None when the path is missing)."""
    t = type(value)
    if t is float:
        return 1
    if t is str:
        return 2
    if t is bool:
        return 8
    if t is int:
        return 16 if -_INT32 <= value < _INT32 else 18
    if value is None:
        return 10
    if value is MISSING:
        return None
    b = bracket(value)
    if b == NUMBER:
        return 1 if isinstance(value, float) or not isinstance(value, int) else type_code(int(value))
    return {STRING: 2, OBJECT: 3, ARRAY: 4, BINARY: 5, BOOL: 8, DATE: 9, REGEX: 11}.get(b)
