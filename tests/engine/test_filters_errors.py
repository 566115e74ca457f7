"""Every way a filter can be wrong gives a FilterError with a path and a readable message."""

from __future__ import annotations

import json
import re

import pytest

from segmint.engine import FilterError, compile_filter
from segmint.engine.filters._regex import MAX_TEXT


def error_of(spec, **kwargs) -> FilterError:
    with pytest.raises(FilterError) as info:
        compile_filter(spec, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        ('{"a": 1,', "$", "not valid JSON"),
        (b"\xff\xfe", "$", "not UTF-8"),
        ('{"a": NaN}', "$", "NaN"),
        ("[1, 2]", "$", "must be a JSON object"),
        ("42", "$", "must be a JSON object"),
        ('{"a": 1, "a": 2}', "$.a", "appears twice"),
        ('{"$and": [{"x": {"$gte": 1, "$gte": 2}}]}', "$.$and[0].x.$gte", "appears twice"),
        ('{"a": {"$eq": {"k": 1, "k": 2}}}', "$.a.$eq.k", "appears twice"),
        ({"a": {"$gtee": 5}}, "$.a.$gtee", "unknown operator"),
        ({"$orr": [{"a": 1}]}, "$.$orr", "unknown operator"),
        ({"$gte": 5}, "$.$gte", "must be inside"),
        ({"a": {"$and": [{"b": 1}]}}, "$.a.$and", "cannot be used inside a field"),
        ({"a": {"$segment": "x"}}, "$.a.$segment", "cannot be used inside a field"),
        ({"a": {"$options": "i"}}, "$.a.$options", "only goes together with $regex"),
        ({"a": {"$gt": 1, "b": 2}}, "$.a", "mixes operators"),
        ({"a..b": 1}, "$.a..b", "empty part"),
        ({"$and": []}, "$.$and", "at least one condition"),
        ({"$or": []}, "$.$or", "at least one condition"),
        ({"$nor": []}, "$.$nor", "at least one condition"),
        ({"$or": {"a": 1}}, "$.$or", "needs a list"),
        ({"$and": [5]}, "$.$and[0]", "must be an object"),
        ({"a": {"$in": 5}}, "$.a.$in", "needs a list"),
        ({"a": {"$nin": "x"}}, "$.a.$nin", "needs a list"),
        ({"a": {"$in": [{"$gt": 1}]}}, "$.a.$in[0]", "plain values"),
        ({"a": {"$all": 1}}, "$.a.$all", "needs a list"),
        ({"a": {"$size": -1}}, "$.a.$size", "whole number"),
        ({"a": {"$size": 1.5}}, "$.a.$size", "whole number"),
        ({"a": {"$size": "2"}}, "$.a.$size", "whole number"),
        ({"a": {"$mod": [0, 1]}}, "$.a.$mod", "divide by zero"),
        ({"a": {"$mod": [4]}}, "$.a.$mod", "[divisor, remainder]"),
        ({"a": {"$type": "strng"}}, "$.a.$type", "unknown type"),
        ({"a": {"$type": 99}}, "$.a.$type", "unknown type"),
        ({"a": {"$exists": "yes"}}, "$.a.$exists", "true or false"),
        ({"a": {"$not": 5}}, "$.a.$not", "needs operators"),
        ({"a": {"$not": {"b": 1}}}, "$.a.$not", "needs operators"),
        ({"a": {"$elemMatch": 5}}, "$.a.$elemMatch", "needs an object"),
        ({"a": {"$between": [5, 1]}}, "$.a.$between", "reversed"),
        ({"a": {"$between": [1, "x"]}}, "$.a.$between", "same kind"),
        ({"a": {"$between": [1]}}, "$.a.$between", "[low, high]"),
        ({"a": float("nan")}, "$.a", "NaN"),
        ({"a": {"$eq": object()}}, "$.a.$eq", "cannot be used in a filter"),
        ({"$comment": 5}, "$.$comment", "must be a string"),
        ({"$segment": "x"}, "$.$segment", "no named segments"),
        ({"$segment": 5}, "$.$segment", "name of a segment"),
        # regexes: invalid, or able to hang a request
        ({"a": {"$regex": "["}}, "$.a.$regex", "invalid regular expression"),
        ({"a": {"$regex": 5}}, "$.a.$regex", "must be a string"),
        ({"a": {"$regex": "x", "$options": "q"}}, "$.a.$regex", "unknown regex option"),
        ({"a": {"$regex": "x" * 257}}, "$.a.$regex", "the limit is 256"),
        ({"a": {"$regex": "(a+)+$"}}, "$.a.$regex", "nested quantifier"),
        ({"a": {"$regex": "(a*)*b"}}, "$.a.$regex", "nested quantifier"),
        ({"a": {"$regex": "(?:\\d+\\s?)+x"}}, "$.a.$regex", "nested quantifier"),
        ({"a": {"$regex": "(a|ab)*c"}}, "$.a.$regex", "alternation inside a repeated group"),
        ({"a": {"$regex": "(a)\\1"}}, "$.a.$regex", "backreference"),
        ({"a": {"$regex": "(?P<x>a)(?P=x)"}}, "$.a.$regex", "backreference"),
        ({"a": {"$regex": "(a)?(?(1)b|c)"}}, "$.a.$regex", "backreference or conditional"),
        ({"a": {"$regex": "a.*b.*c.*d.*"}}, "$.a.$regex", "unbounded repeats"),
        ({"a": {"$in": [{"$regex": "(x+)+"}]}}, "$.a.$in[0]", "nested quantifier"),
        ('{"a": {"$in": [{"$regex": "x", "$regex": "y"}]}}', "$.a.$in[0].$regex", "appears twice"),
    ],
)
def test_error_has_path_and_message(spec, path, words):
    error = error_of(spec)
    assert error.path == path
    assert words in error.message
    assert path in str(error)


@pytest.mark.parametrize("op", ["$where", "$expr", "$function", "$accumulator", "$jsonSchema", "$text"])
def test_code_operators_are_refused_everywhere(op):
    assert "never evaluates code" in error_of({op: "sleep(1000)"}).message
    assert "never evaluates code" in error_of({"a": {op: "x"}}).message
    assert "never evaluates code" in error_of({"$or": [{op: "x"}]}).message


@pytest.mark.parametrize("op", ["$near", "$geoWithin", "$bitsAllSet"])
def test_other_mongo_operators_are_refused_clearly(op):
    assert "not supported" in error_of({"a": {op: [1, 2]}}).message


def test_unknown_operator_suggests_a_known_one():
    assert error_of({"a": {"$gtee": 1}}).suggestion == "$gte"
    assert error_of({"a": {"$elemmatch": {}}}).suggestion == "$elemMatch"
    assert error_of({"$nro": [{"a": 1}]}).suggestion == "$nor"
    assert "did you mean '$gte'" in str(error_of({"a": {"$gtee": 1}}))


def test_depth_limit():
    spec = {"a": 1}
    for _ in range(40):
        spec = {"$and": [spec]}
    assert "nested too deeply" in error_of(spec).message
    assert "nested too deeply" in error_of("[" * 100_000).message
    assert "nested too deeply" in error_of({"a": json.loads("[" * 40 + "]" * 40)}).message
    ok = {"a": 1}
    for _ in range(20):
        ok = {"$and": [ok]}
    assert compile_filter(ok).matches({"a": 1})


def test_size_limit():
    error = error_of({"$or": [{"a": i} for i in range(1001)]})
    assert "more than 1000 conditions" in error.message
    assert compile_filter({"$or": [{"a": i} for i in range(900)]}).matches({"a": 899})


def test_regex_sees_only_a_bounded_prefix_of_the_text():
    f = compile_filter({"a": {"$regex": "needle"}})
    assert f.matches({"a": "x" * (MAX_TEXT - 6) + "needle"})
    assert not f.matches({"a": "x" * MAX_TEXT + "needle"})


def test_safe_regexes_are_accepted():
    for pattern in ["^sku-\\d{3}$", "(shoe|boot)s?", "a+b+", "^[a-z]+@example\\.com$", "(ab){2}", "(?i)sale"]:
        compile_filter({"a": {"$regex": pattern}})
    assert compile_filter({"a": re.compile("^x", re.I)}).matches({"a": "XY"})
