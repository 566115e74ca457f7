"""``explain``: every clause, the value found, pass/fail, readable by a merchandiser."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from segmint.engine import Explanation, compile_filter

NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
SEED = {
    "$and": [
        {"customer_segment.outbounds_avg_time_delta": {"$lte": 14}},
        {"customer_segment.returns_articles_ratio": {"$lte": 5}},
    ]
}


def test_failing_clause_shows_the_actual_value():
    doc = {"customer_segment": {"outbounds_avg_time_delta": 9, "returns_articles_ratio": 12.5}}
    ex = compile_filter(SEED).explain(doc)
    assert isinstance(ex, Explanation)
    assert not ex.matched
    assert str(ex) == (
        "✗ all of\n"
        "  ✓ customer_segment.outbounds_avg_time_delta <= 14 (actual: 9)\n"
        "  ✗ customer_segment.returns_articles_ratio <= 5 (actual: 12.5)"
    )


def test_no_short_circuit_every_clause_is_traced():
    ex = compile_filter({"$or": [{"a": 1}, {"b": 2}, {"c": {"$exists": False}}]}).explain({"a": 1, "c": 0})
    assert ex.matched
    assert [c.matched for c in ex.children] == [True, False, False]
    assert str(ex).splitlines() == [
        "✓ any of",
        "  ✓ a = 1 (actual: 1)",
        "  ✗ b = 2 (actual: missing)",
        "  ✗ c does not exist (actual: 0)",
    ]


def test_relative_dates_show_what_they_resolved_to():
    ex = compile_filter({"last_order_at": {"$lte": "now-45d"}}).explain(
        {"last_order_at": datetime(2026, 11, 1, tzinfo=timezone.utc)}, now=NOW
    )
    assert str(ex) == (
        "✗ last_order_at <= now-45d (2026-10-08T00:00:00+00:00) (actual: 2026-11-01T00:00:00+00:00)"
    )


def test_nested_operators_and_elem_match_children():
    f = compile_filter({
        "n": {"$gt": 1, "$lt": 5},
        "m": {"$not": {"$gt": 3}},
        "items": {"$elemMatch": {"sku": "A", "qty": {"$gte": 2}}},
        "name": {"$regex": "^jo", "$options": "i"},
    })
    text = str(f.explain({"n": 3, "m": 7, "items": [{"sku": "A", "qty": 1}], "name": "Joe"}))
    assert text.splitlines() == [
        "✗ all of",
        "  ✓ n: all of",
        "    ✓ n > 1 (actual: 3)",
        "    ✓ n < 5 (actual: 3)",
        "  ✗ m not (> 3) (actual: 7)",
        '  ✗ items has an element matching {"sku": "A", "qty": {"$gte": 2}} (actual: [{"sku": "A", "qty": 1}])',
        "    ✗ element 0",
        "      ✗ all of",
        '        ✓ sku = "A" (actual: "A")',
        "        ✗ qty >= 2 (actual: 1)",
        '  ✓ name matches /^jo/i (actual: "Joe")',
    ]


def test_to_dict_is_json_ready():
    doc = {"customer_segment": {"outbounds_avg_time_delta": 20}, "t": NOW}
    data = compile_filter({**SEED, "t": {"$gte": "today"}}).explain(doc, NOW).to_dict()
    json.dumps(data)
    assert data["matched"] is False
    first, second = data["children"][0]["children"]
    assert first == {
        "matched": False, "label": "customer_segment.outbounds_avg_time_delta <= 14", "op": "$lte",
        "path": "customer_segment.outbounds_avg_time_delta", "operand": 14, "actual": 20,
    }
    assert second["missing"] is True and "actual" not in second
    assert data["children"][1]["actual"] == NOW.isoformat()


def test_explain_accepts_objects_with_a_document_method():
    class Visitor:
        calls = 0

        def __segmint_document__(self, now):
            Visitor.calls += 1
            return {"seen_at": now}

    f = compile_filter({"seen_at": {"$gte": "today"}})
    assert f.explain(Visitor(), NOW).matched
    assert f.matches(Visitor(), NOW)
    assert Visitor.calls == 2


docs = st.dictionaries(
    st.sampled_from(["a", "b"]),
    st.recursive(
        st.one_of(st.integers(-2, 2), st.booleans(), st.none(), st.sampled_from(["x", "2026-01-01"])),
        lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "0"]), c, max_size=2)),
        max_leaves=6,
    ),
    max_size=2,
)
clauses = st.builds(
    lambda path, op, operand: {path: {op: operand}},
    st.sampled_from(["a", "b", "a.b", "a.0", "b.a.0", "a.0.b"]),
    st.sampled_from(["$eq", "$ne", "$gt", "$lte", "$in", "$nin", "$size", "$type", "$between"]),
    st.sampled_from([0, 1, True, None, "x", "2026-01-01", "now", [0, 1], ["x", None], "number"]),
)


@settings(max_examples=300, deadline=None)
@given(doc=docs, clause=clauses)
def test_explain_and_generated_code_agree(doc, clause):
    from segmint.engine import FilterError

    try:
        f = compile_filter({"$or": [clause, {"$nor": [clause]}]} if doc.get("a") == 0 else clause)
    except FilterError:
        return
    assert f.matches(doc, NOW) is f.explain(doc, NOW).matched
