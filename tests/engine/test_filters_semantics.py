"""MongoDB query semantics, case by case (the documented behaviour, not Python's == and <).

Each case runs through both the generated code (``matches``) and the tracing evaluator
(``explain``), which must agree.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from datetime import date, datetime, timezone

import pytest

from segmint.engine import compile_filter

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def check(spec, doc, expected):
    f = compile_filter(spec)
    assert f.matches(doc, NOW) is expected, (spec, doc)
    assert f.explain(doc, NOW).matched is expected, (spec, doc)


CASES = [
    # implicit equality and type bracketing
    ({"a": 1}, {"a": 1}, True),
    ({"a": 1}, {"a": 1.0}, True),
    ({"a": 1}, {"a": "1"}, False),
    ({"a": 1}, {"a": True}, False),
    ({"a": True}, {"a": 1}, False),
    ({"a": 0}, {"a": False}, False),
    ({"a": "x"}, {"a": "x"}, True),
    ({"a": "x"}, {}, False),
    # null matches null and missing, not other falsy values
    ({"a": None}, {}, True),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {"a": 0}, False),
    ({"a": None}, {"a": [None, 1]}, True),
    ({"a": None}, {"a": []}, False),
    ({"a.b": None}, {"a": 5}, True),
    ({"a.b": None}, {"a": [{"b": 1}, {"c": 2}]}, True),
    ({"a.b": None}, {"a": [1, 2]}, False),  # scalars inside arrays yield nothing
    ({"a.b": None}, {"a": [{"b": 1}]}, False),
    # $ne / $nin match missing; they negate "any element"
    ({"a": {"$ne": 1}}, {}, True),
    ({"a": {"$ne": 1}}, {"a": [1, 2]}, False),
    ({"a": {"$ne": 1}}, {"a": [2, 3]}, True),
    ({"a": {"$ne": None}}, {}, False),
    ({"a": {"$ne": None}}, {"a": 0}, True),
    ({"a": {"$nin": [1, 2]}}, {}, True),
    ({"a": {"$nin": [1, 2]}}, {"a": [3, 2]}, False),
    # ordering stays inside the type bracket
    ({"a": {"$gt": 5}}, {"a": 6}, True),
    ({"a": {"$gt": 5}}, {"a": "6"}, False),
    ({"a": {"$gt": 5}}, {"a": True}, False),
    ({"a": {"$lt": "b"}}, {"a": "a"}, True),
    ({"a": {"$lt": "b"}}, {"a": 1}, False),
    ({"a": {"$gte": None}}, {}, True),
    ({"a": {"$lte": None}}, {"a": None}, True),
    ({"a": {"$gt": None}}, {"a": None}, False),
    ({"a": {"$lt": 5}}, {"a": math.nan}, False),
    ({"a": {"$gte": 5}}, {"a": math.nan}, False),
    ({"a": {"$gt": 1, "$lt": 3}}, {"a": [0, 5]}, True),  # each operator may use another element
    ({"a": {"$gt": 1, "$lt": 3}}, {"a": [0, 0.5]}, False),
    ({"a": {"$gte": False}}, {"a": True}, True),
    # arrays: any element, or the whole array
    ({"tags": "vip"}, {"tags": ["new", "vip"]}, True),
    ({"tags": ["new", "vip"]}, {"tags": ["new", "vip"]}, True),
    ({"tags": ["vip", "new"]}, {"tags": ["new", "vip"]}, False),
    ({"tags": ["new"]}, {"tags": [["new"], "x"]}, True),
    ({"tags": "new"}, {"tags": [["new"]]}, False),  # one level of expansion only
    ({"a": {"$gt": [1, 2]}}, {"a": [1, 3]}, True),
    ({"a": {"$gt": [1, 2]}}, {"a": 5}, False),
    ({"a": {"$in": [[1, 2]]}}, {"a": [1, 2]}, True),
    ({"a": {"$in": [2, "x"]}}, {"a": [1, 2]}, True),
    ({"a": {"$in": [1]}}, {"a": True}, False),
    ({"a": {"$in": [True]}}, {"a": 1}, False),
    ({"a": {"$in": [None]}}, {}, True),
    ({"a": {"$in": []}}, {"a": 1}, False),
    # embedded documents: exact match, key order matters
    ({"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 2}}, True),
    ({"a": {"x": 1, "y": 2}}, {"a": {"y": 2, "x": 1}}, False),
    ({"a": {"x": 1}}, {"a": {"x": 1, "y": 2}}, False),
    ({"a": {}}, {"a": {}}, True),
    ({"a": {"x": 1}}, {"a": {"x": 1.0}}, True),
    ({"a": {"x": 1}}, {"a": OrderedDict(x=1)}, True),
    ({"a": {"$gt": {"x": 1}}}, {"a": {"x": 2}}, True),
    ({"a": {"$gt": {"x": 1}}}, {"a": {"y": 0}}, True),  # field names compare first
    # dotted paths through documents and arrays, numeric positions
    ({"a.b.c": 1}, {"a": {"b": {"c": 1}}}, True),
    ({"a.b": 1}, {"a": [{"b": 2}, {"b": 1}]}, True),
    ({"a.b": 1}, {"a": [{"b": [0, 1]}]}, True),
    ({"a.b": 1}, {"a": [[{"b": 1}]]}, False),  # nested arrays are not traversed implicitly
    ({"items.0.sku": "A"}, {"items": [{"sku": "A"}, {"sku": "B"}]}, True),
    ({"items.1.sku": "A"}, {"items": [{"sku": "A"}, {"sku": "B"}]}, False),
    ({"items.0": "A"}, {"items": ["A", "B"]}, True),
    ({"items.0": 1}, {"items": [[1, 2]]}, False),  # a positional array is not expanded
    ({"items.0": [1, 2]}, {"items": [[1, 2]]}, True),
    ({"items.0.1": 2}, {"items": [[1, 2]]}, True),
    ({"items.01": "A"}, {"items": ["A"]}, False),
    ({"a.0": 5}, {"a": {"0": 5}}, True),
    ({"a.0": 5}, {"a": [{"0": 5}]}, True),
    ({"a.5": None}, {"a": [1]}, False),
    # $exists
    ({"a": {"$exists": True}}, {"a": None}, True),
    ({"a": {"$exists": True}}, {}, False),
    ({"a": {"$exists": False}}, {}, True),
    ({"a.b": {"$exists": True}}, {"a": [{"c": 1}, {"b": 1}]}, True),
    ({"a.b": {"$exists": False}}, {"a": [{"c": 1}, {"b": 1}]}, False),
    ({"a.b": {"$exists": False}}, {"a": [1, 2]}, True),
    ({"a": {"$exists": True}}, {"a": []}, True),
    # $not, $and, $or, $nor
    ({"a": {"$not": {"$gt": 5}}}, {"a": 3}, True),
    ({"a": {"$not": {"$gt": 5}}}, {}, True),
    ({"a": {"$not": {"$gt": 5}}}, {"a": [3, 7]}, False),
    ({"a": {"$not": {"$gt": 1, "$lt": 5}}}, {"a": 3}, False),
    ({"a": {"$not": {"$gt": 1, "$lt": 5}}}, {"a": 7}, True),
    ({"$or": [{"a": 1}, {"b": 1}]}, {"b": 1}, True),
    ({"$or": [{"a": 1}, {"b": 1}]}, {"b": 2}, False),
    ({"$nor": [{"a": 1}, {"b": 1}]}, {"b": 2}, True),
    ({"$nor": [{"a": 1}, {"b": 1}]}, {"a": 1}, False),
    ({"$and": [{"a": 1}, {"$or": [{"b": 1}, {"c": 1}]}]}, {"a": 1, "c": 1}, True),
    ({"$and": [{"a": 1}, {"$or": [{"b": 1}, {"c": 1}]}]}, {"a": 1}, False),
    ({}, {"anything": 1}, True),
    ({"$and": [{}]}, {}, True),
    # $all, $size, $elemMatch
    ({"t": {"$all": ["a", "b"]}}, {"t": ["b", "c", "a"]}, True),
    ({"t": {"$all": ["a", "b"]}}, {"t": ["a"]}, False),
    ({"t": {"$all": ["a"]}}, {"t": "a"}, True),
    ({"t": {"$all": []}}, {"t": []}, False),
    ({"t": {"$all": [[1, 2]]}}, {"t": [1, 2]}, True),
    ({"t": {"$size": 2}}, {"t": [1, [2, 3]]}, True),
    ({"t": {"$size": 0}}, {"t": []}, True),
    ({"t": {"$size": 1}}, {"t": "x"}, False),
    ({"t": {"$size": 1}}, {}, False),
    ({"s": {"$elemMatch": {"$gte": 80, "$lt": 85}}}, {"s": [82, 90]}, True),
    ({"s": {"$elemMatch": {"$gte": 80, "$lt": 85}}}, {"s": [79, 90]}, False),
    ({"s": {"$elemMatch": {"$gte": 80}}}, {"s": 90}, False),
    ({"i": {"$elemMatch": {"sku": "A", "qty": {"$gte": 2}}}}, {"i": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 5}]}, False),
    ({"i": {"$elemMatch": {"sku": "A", "qty": {"$gte": 2}}}}, {"i": [{"sku": "B", "qty": 1}, {"sku": "A", "qty": 5}]}, True),
    ({"i": {"$elemMatch": {"$or": [{"sku": "Z"}, {"qty": 5}]}}}, {"i": [{"sku": "A", "qty": 5}]}, True),
    ({"t": {"$all": [{"$elemMatch": {"q": 1}}, {"$elemMatch": {"q": 2}}]}}, {"t": [{"q": 2}, {"q": 1}]}, True),
    ({"t": {"$all": [{"$elemMatch": {"q": 1}}, {"$elemMatch": {"q": 3}}]}}, {"t": [{"q": 2}, {"q": 1}]}, False),
    # $regex
    ({"n": {"$regex": "^ab"}}, {"n": "abc"}, True),
    ({"n": {"$regex": "^AB"}}, {"n": "abc"}, False),
    ({"n": {"$regex": "^AB", "$options": "i"}}, {"n": "abc"}, True),
    ({"n": {"$regex": "^b", "$options": "m"}}, {"n": "a\nb"}, True),
    ({"n": {"$regex": "a.b", "$options": "s"}}, {"n": "a\nb"}, True),
    ({"n": {"$regex": "a b  # comment", "$options": "x"}}, {"n": "ab"}, True),
    ({"n": {"$regex": "b"}}, {"n": ["a", "xbx"]}, True),
    ({"n": {"$regex": "1"}}, {"n": 1}, False),
    ({"n": {"$in": [{"$regex": "^z"}, "abc"]}}, {"n": "zoo"}, True),
    ({"n": {"$in": [{"$regex": "^z"}, "abc"]}}, {"n": "abc"}, True),
    ({"n": {"$nin": [{"$regex": "^z"}]}}, {"n": "abc"}, True),
    ({"n": {"$not": {"$regex": "^z"}}}, {"n": "zoo"}, False),
    # $mod: C-style remainder, doubles truncated
    ({"q": {"$mod": [4, 0]}}, {"q": 8}, True),
    ({"q": {"$mod": [4, 1]}}, {"q": 9.9}, True),
    ({"q": {"$mod": [4, -1]}}, {"q": -5}, True),
    ({"q": {"$mod": [4, 3]}}, {"q": -5}, False),
    ({"q": {"$mod": [4, 0]}}, {"q": "8"}, False),
    ({"q": {"$mod": [4, 0]}}, {"q": math.inf}, False),
    # $type
    ({"v": {"$type": "string"}}, {"v": "x"}, True),
    ({"v": {"$type": 2}}, {"v": "x"}, True),
    ({"v": {"$type": "double"}}, {"v": 1.5}, True),
    ({"v": {"$type": "int"}}, {"v": 7}, True),
    ({"v": {"$type": "long"}}, {"v": 2**40}, True),
    ({"v": {"$type": "number"}}, {"v": 7}, True),
    ({"v": {"$type": "number"}}, {"v": True}, False),
    ({"v": {"$type": "bool"}}, {"v": False}, True),
    ({"v": {"$type": "null"}}, {"v": None}, True),
    ({"v": {"$type": "null"}}, {}, False),
    ({"v": {"$type": "array"}}, {"v": []}, True),
    ({"v": {"$type": "string"}}, {"v": [1, "x"]}, True),
    ({"v": {"$type": "object"}}, {"v": {"a": 1}}, True),
    ({"v": {"$type": "date"}}, {"v": NOW}, True),
    ({"v": {"$type": ["string", "int"]}}, {"v": 3}, True),
    # $between extension: one value within both bounds
    ({"x": {"$between": [80, 120]}}, {"x": 80}, True),
    ({"x": {"$between": [80, 120]}}, {"x": 120.0}, True),
    ({"x": {"$between": [80, 120]}}, {"x": 121}, False),
    ({"x": {"$between": [80, 120]}}, {"x": [10, 200]}, False),
    ({"x": {"$between": [80, 120]}}, {"x": [10, 100]}, True),
    ({"x": {"$between": ["b", "d"]}}, {"x": "c"}, True),
    ({"x": {"$between": ["b", "d"]}}, {"x": 5}, False),
]


@pytest.mark.parametrize(("spec", "doc", "expected"), CASES)
def test_mongo_semantics(spec, doc, expected):
    check(spec, doc, expected)


def test_tuples_and_mapping_subclasses_are_arrays_and_documents():
    check({"a.b": 2}, OrderedDict(a=({"b": 1}, {"b": 2})), True)
    check({"a": 2}, {"a": (1, 2)}, True)


def test_date_values_are_their_own_bracket():
    check({"d": {"$gt": 5}}, {"d": NOW}, False)
    check({"d": {"$gt": "2026-01-01"}}, {"d": date(2026, 5, 1)}, True)


@pytest.mark.parametrize("op,doc,expected", [
    ("$in", {"a": ["z", "x"]}, True), ("$in", {"a": []}, False), ("$in", {"a": [["x"]]}, False),
    ("$in", {"a": [{"b": 1}]}, False), ("$in", {"a": [None]}, False),
    ("$nin", {"a": ["z", "x"]}, False), ("$nin", {"a": []}, True), ("$nin", {"a": [["x"]]}, True),
    ("$nin", {"a": [None, 1]}, True), ("$nin", {}, True),
])
def test_in_and_nin_of_strings_over_arrays_agree_with_explain(op, doc, expected):
    # The generated fast path tests arrays of strings with a set; explain uses the full rules.
    f = compile_filter({"a": {op: ["x", "y"]}})
    assert f.matches(doc) is expected
    assert f.explain(doc).matched is expected


def test_an_empty_query_inside_or_and_nor():
    # {} matches every document, as a top-level filter does (found by the fuzz test).
    assert compile_filter({"$or": [{}]}).matches({})
    assert compile_filter({"$or": [{"a": 1}, {}]}).matches({"a": 2})
    assert not compile_filter({"$nor": [{}]}).matches({})
