"""The six segment filters of the product seed (../shared/seeds/001_c0f19470400baf23.txt).

Two are given there as JSON (kept verbatim, including the ``"yyyy-mm-dd"`` placeholder the
seed tells users to replace); four are described in prose and written here in the same style.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timedelta, timezone

import pytest

from segmint.engine import FilterError, compile_filter

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)
TODAY = NOW.replace(hour=0)

REPEAT_CUSTOMERS_MINIMAL_RETURNS = """{
"$and": [
{
"customer_segment.outbounds_avg_time_delta": {
"$lte": 14
}
},
{
"customer_segment.returns_articles_ratio": {
"$lte": 5
}
}
]
}"""

HIGH_SPENDING_RECENT_BUYERS = """{
"$and": [
{
"customer_segment.last_purchase_date": {
"$lte": "yyyy-mm-dd"
}
},
{
"customer_segment.outbounds_value_total": {
"$gte": 1000
}
}
]
}"""

# "Don't forget to add the required last purchase date": the placeholder filled in.
HIGH_SPENDING_RECENT_BUYERS_FILLED = HIGH_SPENDING_RECENT_BUYERS.replace("yyyy-mm-dd", "today-14d")

# Average days between order <= 14; last purchase date <= dd/mm/yyyy - interval '60 days'.
LAPSED_FREQUENT_BUYERS = """{
"$and": [
{
"customer_segment.outbounds_avg_time_delta": {
"$lte": 14
}
},
{
"customer_segment.last_purchase_date": {
"$lte": "today-60d"
}
}
]
}"""

# Total article return rate >= 40%.
HIGH_RETURN_RISK = """{
"$and": [
{
"customer_segment.returns_articles_ratio": {
"$gte": 40
}
}
]
}"""

# Total amount of purchase value >= $1,000; total article return rate >= 30%.
PREMIUM_FREQUENT_RETURNERS = """{
"$and": [
{
"customer_segment.outbounds_value_total": {
"$gte": 1000
}
},
{
"customer_segment.returns_articles_ratio": {
"$gte": 30
}
}
]
}"""

# Average basket size <= 2; total amount of orders >= 10.
FREQUENT_LOW_VALUE_BUYERS = """{
"$and": [
{
"customer_segment.basket_size_avg": {
"$lte": 2
}
},
{
"customer_segment.outbounds_count": {
"$gte": 10
}
}
]
}"""


def customer(**fields):
    return {"customer_segment": fields}


CASES = [
    (REPEAT_CUSTOMERS_MINIMAL_RETURNS,
     [customer(outbounds_avg_time_delta=14, returns_articles_ratio=0),
      customer(outbounds_avg_time_delta=3.5, returns_articles_ratio=5.0)],
     [customer(outbounds_avg_time_delta=14.1, returns_articles_ratio=0),
      customer(outbounds_avg_time_delta=7, returns_articles_ratio=12.5),
      customer(returns_articles_ratio=1),  # never ordered twice: no average
      customer(outbounds_avg_time_delta="7", returns_articles_ratio=1)]),
    (HIGH_SPENDING_RECENT_BUYERS_FILLED,
     [customer(last_purchase_date=TODAY - timedelta(days=14), outbounds_value_total=1000),
      customer(last_purchase_date=NOW - timedelta(days=30), outbounds_value_total=5400.5)],
     [customer(last_purchase_date=NOW - timedelta(days=13), outbounds_value_total=5000),
      customer(last_purchase_date=NOW - timedelta(days=30), outbounds_value_total=999.99),
      customer(outbounds_value_total=5000)]),
    (LAPSED_FREQUENT_BUYERS,
     [customer(outbounds_avg_time_delta=10, last_purchase_date=NOW - timedelta(days=61))],
     [customer(outbounds_avg_time_delta=10, last_purchase_date=NOW - timedelta(days=20)),
      customer(outbounds_avg_time_delta=30, last_purchase_date=NOW - timedelta(days=90))]),
    (HIGH_RETURN_RISK,
     [customer(returns_articles_ratio=40), customer(returns_articles_ratio=87.5)],
     [customer(returns_articles_ratio=39.9), {}, customer(returns_articles_ratio=None)]),
    (PREMIUM_FREQUENT_RETURNERS,
     [customer(outbounds_value_total=1000, returns_articles_ratio=30)],
     [customer(outbounds_value_total=1000, returns_articles_ratio=29),
      customer(outbounds_value_total=800, returns_articles_ratio=50)]),
    (FREQUENT_LOW_VALUE_BUYERS,
     [customer(basket_size_avg=1.2, outbounds_count=10), customer(basket_size_avg=2, outbounds_count=40)],
     [customer(basket_size_avg=2.5, outbounds_count=40), customer(basket_size_avg=1, outbounds_count=9),
      customer(basket_size_avg=1, outbounds_count=True)]),
]


@pytest.mark.parametrize(("spec", "matching", "other"), CASES)
def test_seed_filter(spec, matching, other):
    f = compile_filter(spec)
    assert f.spec == json.loads(spec)
    for doc in matching:
        assert f.matches(doc, NOW), doc
        assert f.explain(doc, NOW).matched
    for doc in other:
        assert not f.matches(doc, NOW), doc
        assert not f.explain(doc, NOW).matched


def test_placeholder_seed_compiles_as_a_plain_string_without_catalog():
    # Without a catalog "yyyy-mm-dd" is just a string: it never orders against a date.
    f = compile_filter(HIGH_SPENDING_RECENT_BUYERS)
    assert not f.matches(customer(last_purchase_date=NOW, outbounds_value_total=5000), NOW)


@pytest.mark.skipif(importlib.util.find_spec("segmint.engine.field_table") is None, reason="field table not built yet")
def test_seeds_against_the_default_catalog():
    from segmint.engine.field_table import default_field_catalog

    catalog = default_field_catalog()
    for spec, _, _ in CASES:
        compile_filter(spec, catalog=catalog)
    with pytest.raises(FilterError) as info:
        compile_filter(HIGH_SPENDING_RECENT_BUYERS, catalog=catalog)
    assert info.value.path == "$.$and[0].customer_segment.last_purchase_date.$lte"
    assert "yyyy-mm-dd" in info.value.message
