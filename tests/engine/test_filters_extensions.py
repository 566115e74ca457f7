"""Catalog checks, named segments, plugin operators, and code-injection attempts."""

from __future__ import annotations

import importlib.util
import re
from collections import OrderedDict

import pytest

from segmint.engine import Filter, FilterError, compile_filter, compile_segments
from segmint.engine.fields import FieldCatalog, FieldDef, FieldType

CATALOG = FieldCatalog([
    FieldDef("spend.total", FieldType.NUMBER, "Total spend"),
    FieldDef("customer_segment.outbounds_value_total", FieldType.NUMBER, "Alias", alias_of="spend.total"),
    FieldDef("orders.count", FieldType.INTEGER, "Orders"),
    FieldDef("customer_segment.last_purchase_date", FieldType.DATETIME, "Last purchase"),
    FieldDef("is_customer", FieldType.BOOLEAN, "Has ordered"),
    FieldDef("discount.band", FieldType.STRING, "Discount affinity", choices=("high", "mid", "low")),
    FieldDef("email", FieldType.STRING, "Email"),
    FieldDef("viewed_skus", FieldType.LIST, "Recently viewed"),
    FieldDef("category.items.*", FieldType.INTEGER, "Items per category"),
    FieldDef("extra", FieldType.OBJECT, "Plugin values"),
])


def error_of(spec, **kwargs) -> FilterError:
    with pytest.raises(FilterError) as info:
        compile_filter(spec, **kwargs)
    return info.value


# -- catalog --------------------------------------------------------------------------------

def test_catalog_accepts_known_fields_aliases_and_patterns():
    f = compile_filter(
        {
            "customer_segment.outbounds_value_total": {"$gte": 1000},
            "category.items.skincare": {"$gte": 2},
            "customer_segment.last_purchase_date": {"$lte": "today-14d"},
            "discount.band": {"$in": ["high", "mid"]},
            "viewed_skus": {"$size": 3},
            "email": {"$regex": "@example\\.com$"},
            "is_customer": True,
        },
        catalog=CATALOG,
    )
    assert isinstance(f, Filter)


def test_unknown_field_suggests_the_closest():
    error = error_of({"$and": [{"spend.totl": {"$gte": 1}}]}, catalog=CATALOG)
    assert error.path == "$.$and[0].spend.totl"
    assert error.suggestion == "spend.total"
    assert "unknown field" in error.message
    assert compile_filter({"spend.totl": 1}).matches({"spend": {"totl": 1}})  # no catalog: open


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        # the seed's placeholder left in a date rule
        ({"$and": [{"customer_segment.last_purchase_date": {"$lte": "yyyy-mm-dd"}}]},
         "$.$and[0].customer_segment.last_purchase_date.$lte", "must be a date"),
        ({"customer_segment.last_purchase_date": {"$gte": 1700000000}},
         "$.customer_segment.last_purchase_date.$gte", "must be a date"),
        ({"spend.total": {"$gte": "1000"}}, "$.spend.total.$gte", "must be a number"),
        ({"spend.total": {"$in": [1, "2"]}}, "$.spend.total.$in[1]", "must be a number"),
        ({"spend.total": {"$between": [1, True]}}, "$.spend.total.$between[1]", "must be a number"),
        ({"orders.count": True}, "$.orders.count", "must be a number"),
        ({"is_customer": 1}, "$.is_customer", "true or false"),
        ({"is_customer": {"$ne": "yes"}}, "$.is_customer.$ne", "true or false"),
        ({"email": {"$gt": 5}}, "$.email.$gt", "must be a string"),
        ({"extra": 5}, "$.extra", "must be an object"),
        ({"discount.band": "hihg"}, "$.discount.band", "not a value of discount.band"),
        ({"spend.total": {"$size": 2}}, "$.spend.total.$size", "$size only applies to list fields"),
        ({"spend.total": {"$regex": "1"}}, "$.spend.total.$regex", "$regex only applies"),
        ({"email": {"$mod": [2, 0]}}, "$.email.$mod", "$mod only applies"),
        ({"email": {"$elemMatch": {"a": 1}}}, "$.email.$elemMatch", "$elemMatch only applies"),
    ],
)
def test_catalog_type_clashes(spec, path, words):
    error = error_of(spec, catalog=CATALOG)
    assert error.path == path
    assert words in error.message


def test_catalog_allows_null_exists_and_type_on_any_field():
    compile_filter({"spend.total": None, "email": {"$exists": False}, "is_customer": {"$type": "bool"}},
                   catalog=CATALOG)
    assert error_of({"discount.band": "hihg"}, catalog=CATALOG).suggestion == "high"


# -- named segments -------------------------------------------------------------------------

def test_segments_reference_each_other():
    segments = compile_segments(
        {
            "lapsed_vip": '{"$and": [{"$segment": "vip"}, {"days_since_last_purchase": {"$gte": 45}}]}',
            "vip": {"spend.total": {"$gte": 2000}},
            "not_vip": {"$nor": [{"$segment": "vip"}]},
        }
    )
    assert list(segments) == ["lapsed_vip", "vip", "not_vip"]
    doc = {"spend": {"total": 2500}, "days_since_last_purchase": 50}
    assert segments["lapsed_vip"].matches(doc)
    assert not segments["lapsed_vip"].matches({**doc, "days_since_last_purchase": 3})
    assert not segments["not_vip"].matches(doc)
    assert segments["not_vip"].matches({})
    assert "segment 'vip'" in str(segments["lapsed_vip"].explain(doc))


def test_unknown_segment_and_cycles_fail_at_compile_time():
    with pytest.raises(FilterError) as info:
        compile_segments({"a": {"$segment": "vipp"}, "vip": {"x": 1}})
    assert info.value.suggestion == "vip"
    assert info.value.path == "$.$segment"
    with pytest.raises(FilterError) as info:
        compile_segments({"a": {"$segment": "b"}, "b": {"$or": [{"x": 1}, {"$segment": "c"}]}, "c": {"$segment": "a"}})
    assert "cycle: a -> b -> c -> a" in info.value.message
    with pytest.raises(FilterError) as info:
        compile_segments({"self": {"$and": [{"$segment": "self"}]}})
    assert "self -> self" in info.value.message


def test_error_inside_a_segment_names_the_segment():
    with pytest.raises(FilterError) as info:
        compile_segments({"a": {"$segment": "b"}, "b": {"x": {"$gtee": 1}}})
    assert info.value.message.startswith("segment 'b': unknown operator")
    assert info.value.path == "$.x.$gtee"


def test_compile_filter_with_given_segments():
    vip = compile_filter({"spend.total": {"$gte": 2000}})
    recent = compile_filter({"seen": {"$gte": "now-1d"}})
    f = compile_filter({"$or": [{"$segment": "vip"}, {"$segment": "recent"}]}, segments={"vip": vip, "recent": recent})
    assert f.needs_now  # inherited from the referenced segment
    assert f.matches({"spend": {"total": 3000}})
    assert not f.matches({"spend": {"total": 3}})
    assert error_of({"$segment": "vpi"}, segments={"vip": vip}).suggestion == "vip"


# -- plugin operators -----------------------------------------------------------------------

def near_price(operand, path):
    if not isinstance(operand, (int, float)):
        raise ValueError("needs a price")
    return lambda value: isinstance(value, (int, float)) and abs(value - operand) <= operand * 0.1


def test_plugin_operator_is_applied_mongo_style():
    calls = []

    def factory(operand, path):
        calls.append((operand, path))
        return near_price(operand, path)

    f = compile_filter({"$and": [{"cart.value": {"$near_price": 100}}]}, operators={"$near_price": factory})
    assert calls == [(100, "$.$and[0].cart.value.$near_price")]  # once, at compile time
    assert f.matches({"cart": {"value": 105}})
    assert f.matches({"cart": {"value": [3, 95]}})  # any element of an array
    assert not f.matches({"cart": {"value": 150}})
    assert not f.matches({})  # a missing value is never passed to the predicate
    assert compile_filter({"x": {"$not": {"$near_price": 10}}}, operators={"$near_price": near_price}).matches({})
    assert "x $near_price 10" in str(compile_filter({"x": {"$near_price": 10}}, operators={"$near_price": near_price}).explain({}))
    assert len(calls) == 1


def test_plugin_operator_errors():
    ops = {"$near_price": near_price}
    error = error_of({"a": {"$near_price": "x"}}, operators=ops)
    assert error.path == "$.a.$near_price" and "needs a price" in error.message
    assert "clashes with a built-in" in error_of({"a": 1}, operators={"$gt": near_price}).message
    assert "clashes with a built-in" in error_of({"a": 1}, operators={"$where": near_price}).message
    assert error_of({"a": {"$near_prce": 1}}, operators=ops).suggestion == "$near_price"
    assert "must be inside" in error_of({"$near_price": 1}, operators=ops).message
    assert "did not return a predicate" in error_of({"a": {"$x": 1}}, operators={"$x": lambda o, p: 5}).message
    assert "must look like $name" in error_of({"a": 1}, operators={"near": near_price}).message


# -- code injection -------------------------------------------------------------------------

HOSTILE = [
    "__import__('os').system('touch /tmp/pwned')",
    "a'] or __import__('os').system('x') or doc['",
    '"); import os; os.system("x"); ("',
    "\n    import os\n",
    "doc, now): pass\ndef matches(doc, now=None",
    "{0.__class__}",
    "\\x00\\",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_config_text_never_reaches_generated_source(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = {
        text: text,
        f"{text}.x": {"$in": [text, 1], "$gt": text, "$regex": re.escape(text[:50])},
        "$or": [{"ok": {"$ne": text}}, {text: {"$exists": True}}],
    }
    f = compile_filter(spec)
    assert text not in f._source
    for line in f._source.splitlines():
        assert re.fullmatch(r"[\w ()\[\].,:=<>!'-]*", line), line
    doc = {text: text, f"{text}": {"x": [text]}, "ok": 1}
    assert f.matches(doc) is f.explain(doc).matched
    assert not list(tmp_path.iterdir())


def test_generated_source_uses_only_generated_names():
    f = compile_filter({"customer_segment.returns_articles_ratio": {"$lte": 5}, "tags": {"$in": ["a"]}})
    names = set(re.findall(r"\b_[a-zA-Z]+\d*\b", f._source))
    assert names <= {"_LOOKUP", "_inner", "_prepare"} | {n for n in names if re.fullmatch(r"_[kgtns]\d+", n)}
    assert "customer_segment" not in f._source and "returns_articles_ratio" not in f._source


# -- package surface and profiles -----------------------------------------------------------

def test_exported_surface():
    import segmint.engine as engine
    import segmint.engine.filters as filters

    for name in ["Filter", "Explanation", "compile_filter", "compile_segments"]:
        assert name in engine.__all__
        assert getattr(engine, name) is getattr(filters, name)
    assert engine.FilterError is FilterError


@pytest.mark.skipif(
    importlib.util.find_spec("segmint.engine.document") is None
    or importlib.util.find_spec("segmint.engine.field_table") is None,
    reason="profile documents not built yet",
)
def test_a_profile_is_matched_through_its_document():
    from datetime import datetime, timezone

    from segmint.engine import Profile
    from segmint.engine.field_table import default_field_catalog

    now = datetime(2026, 11, 22, tzinfo=timezone.utc)
    profile = Profile(key="c:1", orders=3, spend=2500.0, last_order_at=now.timestamp() - 20 * 86400)
    f = compile_filter(
        {"orders.count": {"$gte": 2}, "customer_segment.last_purchase_date": {"$lte": "now-14d"}},
        catalog=default_field_catalog(),
    )
    assert f.matches(profile, now)
    assert not f.matches(profile, datetime(2026, 11, 10, tzinfo=timezone.utc))
    assert "orders.count >= 2 (actual: 3)" in str(f.explain(profile, now))


def test_spec_forms_and_document_forms():
    text = '{"orders.count": {"$gte": 2}}'
    for spec in (text, text.encode(), bytearray(text.encode())):
        assert compile_filter(spec).spec == {"orders.count": {"$gte": 2}}
    f = compile_filter(text)
    assert f.matches(OrderedDict(orders=OrderedDict(count=3)))
    with pytest.raises(TypeError, match="mapping"):
        f.matches([("orders", 3)])
