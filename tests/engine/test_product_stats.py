import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from segmint.engine.product_stats import ProductStats

NOW = datetime(2024, 6, 30, 12, tzinfo=timezone.utc)


def order(customer, days_ago, *items, at=None):
    return {"type": "order", "customer_id": customer, "at": at or (NOW - timedelta(days=days_ago)).isoformat(),
            "items": [{"sku": sku, "category": cat, "quantity": qty} for sku, cat, qty in items]}


def view(visitor, minutes, sku, category="x"):
    return {"type": "product_view", "visitor_id": visitor, "sku": sku, "category": category,
            "at": NOW - timedelta(days=1) + timedelta(minutes=minutes)}


def test_units_by_window_with_injected_now():
    events = [
        order("c1", 2, ("A", "skincare", 1)),
        order("c2", 10, ("B", "skincare", 5)),
        order("c3", 40, ("C", "makeup", 9), ("A", "skincare", 1)),
        order("c4", 200, ("D", "makeup", 20)),
    ]
    stats = ProductStats.build(events, NOW)
    assert stats.bestsellers(7) == ["A"]
    assert stats.bestsellers(30) == ["B", "A"]
    assert stats.bestsellers(90) == ["C", "B", "A"]
    assert stats.bestsellers(None) == ["D", "C", "B", "A"]
    assert stats.units("A", 7) == 1 and stats.units("A", 90) == 2 and stats.units("D") == 20
    # The same events seen from a later "now" shift every window.
    later = ProductStats.build(events, NOW + timedelta(days=60))
    assert later.bestsellers(30) == []
    assert later.bestsellers(90) == ["B", "A"]


def test_bestsellers_by_category_and_ties():
    events = [order("c1", 1, ("B", "skincare", 2), ("A", "skincare", 2), ("M", "makeup", 3))]
    stats = ProductStats.build(events, NOW)
    assert stats.bestsellers(30) == ["M", "A", "B"]  # ties by sku for a stable order
    assert stats.bestsellers(30, category="skincare") == ["A", "B"]
    assert stats.bestsellers(30, category="toys") == []
    assert stats.category_of("M") == "makeup"


def test_a_window_that_was_not_computed_uses_the_next_larger_one():
    stats = ProductStats.build([order("c1", 20, ("A", "x", 1)), order("c1", 60, ("B", "x", 1))], NOW,
                               windows=(30, 90))
    assert stats.windows == (30, 90)
    assert stats.bestsellers(14) == stats.bestsellers(30) == ["A"]
    assert stats.bestsellers(365) == stats.bestsellers(None) == ["A", "B"]


def test_co_purchase_within_an_order_and_across_a_customers_orders():
    events = [
        order("c1", 30, ("cleanser", "skincare", 1), ("serum", "skincare", 1)),
        order("c1", 20, ("lipstick", "makeup", 1)),
        order("c2", 10, ("cleanser", "skincare", 1), ("serum", "skincare", 1)),
        order("c3", 5, ("cleanser", "skincare", 1), ("toner", "skincare", 1)),
    ]
    stats = ProductStats.build(events, NOW)
    assert stats.co_purchased("cleanser") == [("serum", 2), ("lipstick", 1), ("toner", 1)]
    assert stats.co_purchased("lipstick") == [("cleanser", 1), ("serum", 1)]
    assert stats.co_purchased("unknown") == []


def test_co_purchase_is_bounded_per_item():
    events = [order(f"c{i}", 1, ("hub", "x", 1), (f"p{i:02d}", "x", 1)) for i in range(60)]
    events += [order("big", 1, ("hub", "x", 1), ("p07", "x", 1))] * 3
    stats = ProductStats.build(events, NOW, top_n=5)
    related = stats.co_purchased("hub")
    assert len(related) == 5
    # Counts of pruned partners are approximate; a clearly frequent partner stays on top.
    assert related[0][0] == "p07" and related[0][1] >= 3


def test_co_view_pairs_views_of_one_visitor_within_the_gap():
    events = [
        view("v1", 0, "A"), view("v1", 5, "B"), view("v1", 10, "C"),
        view("v2", 0, "A"), view("v2", 3, "B"),
        view("v3", 0, "A"), view("v3", 60 * 30, "D"),  # 30 hours later: another session
    ]
    stats = ProductStats.build(events, NOW)
    assert stats.co_viewed("A") == [("B", 2), ("C", 1)]
    assert stats.co_viewed("C") == [("A", 1), ("B", 1)]
    assert stats.co_viewed("D") == []


def test_views_without_a_visitor_only_record_the_category():
    stats = ProductStats.build([{"type": "product_view", "sku": "A", "category": "makeup"}], NOW)
    assert stats.co_viewed("A") == [] and stats.category_of("A") == "makeup"


@dataclass
class Item:
    sku: str
    category: str | None = None
    quantity: int = 1


@dataclass
class OrderEvent:
    at: float
    customer_id: str | None
    items: list = field(default_factory=list)
    visitor_id: str | None = None
    type: str = "order"


def test_neighbours_are_pair_counts_normalized_by_both_items_popularity():
    # A was bought with C twice and with B once, but C is also bought alone by 400 customers.
    events = [
        order("c1", 5, ("A", "x", 1), ("B", "x", 1)),
        order("c2", 5, ("A", "x", 1), ("C", "x", 1)),
        order("c3", 5, ("A", "x", 1), ("C", "x", 1)),
        *(order(f"loner{i}", 5, ("C", "x", 1)) for i in range(400)),
        view("v1", 0, "A"), view("v1", 1, "B"),
    ]
    stats = ProductStats.build(events, NOW)
    assert stats.co_purchased("A") == [("C", 2), ("B", 1)]
    shrink = 20.0  # product_stats.SHRINK: cosine = count / (sqrt(n_a * n_b) + shrink)
    to_b, to_c = 1 / (math.sqrt(3 * 1) + shrink), 2 / (math.sqrt(3 * 402) + shrink)
    assert stats.purchase_neighbours("A") == (("B", pytest.approx(to_b)), ("C", pytest.approx(to_c)))
    # neighbours adds the co-view similarity (A and B viewed once each, together once).
    assert stats.neighbours("A") == (("B", pytest.approx(to_b + 1 / (1 + shrink))), ("C", pytest.approx(to_c)))
    assert stats.neighbours("unknown") == () and ProductStats.empty().purchase_neighbours("A") == ()


def test_accepts_event_structs_with_epoch_timestamps_and_ignores_other_types():
    recent = (NOW - timedelta(days=3)).timestamp()
    events = [
        OrderEvent(at=recent, customer_id="c1", items=[Item("A", "x", 2), Item("B")]),
        {"type": "page_view", "visitor_id": "v", "path": "/"},
        {"type": "return", "customer_id": "c1", "items": [{"sku": "A", "quantity": 2}]},
    ]
    stats = ProductStats.build(events, NOW)
    assert stats.bestsellers(7) == ["A", "B"]
    assert stats.units("A", 7) == 2
    assert stats.co_purchased("B") == [("A", 1)]


class TaggedItem(msgspec.Struct):
    sku: str
    quantity: int = 1
    category: str | None = None


class TaggedOrder(msgspec.Struct, tag_field="type", tag="order", kw_only=True):
    items: list[TaggedItem]
    at: datetime | None = None
    customer_id: str | None = None


class TaggedView(msgspec.Struct, tag_field="type", tag="product_view", kw_only=True):
    sku: str
    at: datetime | None = None
    visitor_id: str | None = None


def test_accepts_tagged_msgspec_structs_whose_type_is_the_tag():
    events = msgspec.json.decode(
        b'[{"type": "order", "customer_id": "c", "at": "2024-06-29T10:00:00Z",'
        b'  "items": [{"sku": "A", "quantity": 2}, {"sku": "B"}]},'
        b' {"type": "product_view", "visitor_id": "v", "sku": "A", "at": "2024-06-29T10:00:00Z"},'
        b' {"type": "product_view", "visitor_id": "v", "sku": "C", "at": "2024-06-29T10:05:00Z"}]',
        type=list[TaggedOrder | TaggedView])
    stats = ProductStats.build(events, NOW)
    assert stats.bestsellers(7) == ["A", "B"]
    assert stats.co_purchased("A") == [("B", 1)]
    assert stats.co_viewed("A") == [("C", 1)]


def test_naive_and_bad_timestamps():
    events = [
        {"type": "order", "customer_id": "c", "at": datetime(2024, 6, 29), "items": [{"sku": "A"}]},
        {"type": "order", "customer_id": "c", "at": "not a date", "items": [{"sku": "B"}]},
    ]
    stats = ProductStats.build(events, NOW)
    assert stats.bestsellers(7) == ["A"]          # naive = UTC, one day old
    assert stats.bestsellers(None) == ["A", "B"]  # undated counts for all time only


def test_empty():
    stats = ProductStats.empty()
    assert stats.bestsellers() == [] and stats.bestsellers(None) == []
    assert stats.co_purchased("A") == [] and stats.co_viewed("A") == []
    assert stats.units("A", 30) == 0
