"""Event decoding: the public JSON form, validation errors by index and field."""

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from segmint.engine.errors import EventError
from segmint.engine.events import (
    EVENT_TYPES,
    Order,
    OrderItem,
    PageView,
    decode_events,
    encode_events,
    event_to_dict,
)

UTC = timezone.utc
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

GOOD = [
    {"type": "page_view", "visitor_id": "v1", "path": "/shoes", "at": "2025-05-01T10:00:00Z"},
    {"type": "product_view", "visitor_id": "v1", "sku": "s1", "category": "shoes"},
    {"type": "cart_update", "visitor_id": "v1", "items": [{"sku": "s1", "quantity": 2, "price": 9.5}]},
    {"type": "order", "customer_id": "c1", "order_id": "o1", "coupon": "X",
     "items": [{"sku": "s1", "category": "shoes", "quantity": 2, "price": 9.5, "discount": 1.0}]},
    {"type": "return", "customer_id": "c1", "order_id": "o1", "items": [{"sku": "s1"}], "amount": 8.5},
    {"type": "identify", "visitor_id": "v1", "customer_id": "c1"},
    {"type": "impression", "visitor_id": "v1", "campaign": "win", "variant": "a", "slot": "cart",
     "skus": ["s1", "s2"]},
    {"type": "click", "visitor_id": "v1", "campaign": "win", "variant": "a", "slot": "cart", "skus": ["s1"]},
]


def test_every_type_decodes_and_round_trips_through_the_json_form():
    events, errors = decode_events(msgspec.json.encode(GOOD), now=NOW)
    assert errors == []
    assert [type(e).__struct_config__.tag for e in events] == [g["type"] for g in GOOD]
    assert set(EVENT_TYPES) == {g["type"] for g in GOOD}
    again, errors = decode_events(encode_events(events), now=NOW)
    assert errors == [] and again == events
    assert event_to_dict(events[0]) == {**GOOD[0], "at": "2025-05-01T10:00:00Z"}


def test_missing_at_defaults_to_now_and_offsets_become_utc():
    events, _ = decode_events([
        {"type": "page_view", "visitor_id": "v"},
        {"type": "page_view", "visitor_id": "v", "at": "2025-01-01T12:00:00+02:00"},
        {"type": "page_view", "visitor_id": "v", "at": "2025-01-01T12:00:00"},
    ], now=NOW)
    assert events[0].at == NOW
    assert events[1].at == datetime(2025, 1, 1, 10, tzinfo=UTC) and events[1].at.utcoffset() == timedelta(0)
    assert events[2].at == datetime(2025, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(("event", "field", "words"), [
    ({"type": "order", "customer_id": "c", "order_id": "o",
      "items": [{"sku": "s", "price": -1}]}, "items[0].price", ">= 0"),
    ({"type": "order", "customer_id": "c", "order_id": "o",
      "items": [{"sku": "s", "quantity": -2}]}, "items[0].quantity", ">= 0"),
    ({"type": "order", "customer_id": "c", "order_id": "o",
      "items": [{"sku": "s", "price": 5, "discount": 6}]}, "items[0].discount", "larger than the price"),
    ({"type": "return", "customer_id": "c", "order_id": "o", "amount": -5}, "amount", ">= 0"),
    ({"type": "order", "customer_id": "c", "items": [{"sku": "s"}]}, "order_id", "missing"),
    ({"type": "order", "customer_id": "c", "order_id": "o", "items": []}, "items", "length"),
    ({"type": "order", "customer_id": "c", "order_id": "o", "items": [{"price": 1}]}, "items[0].sku", "missing"),
    ({"type": "page_view", "visitor_id": "x" * 129}, "visitor_id", "length"),
    ({"type": "page_view"}, "visitor_id", "visitor_id or a customer_id"),
    ({"type": "identify", "visitor_id": "v"}, "customer_id", "both"),
    ({"type": "identify", "customer_id": "c"}, "visitor_id", "both"),
    ({"type": "page_vew", "visitor_id": "v"}, "type", "unknown event type 'page_vew'"),
    ({"visitor_id": "v"}, "type", "missing"),
    ({"type": "page_view", "visitor_id": "v", "pth": "/"}, "pth", "unknown field"),
    ({"type": "page_view", "visitor_id": "v", "at": "yesterday"}, "at", "not a date or time; write it like 2026-11-01"),
    ({"type": "cart_update", "visitor_id": "v", "items": [{"sku": "s"}] * 501}, "items", "length"),
])
def test_a_bad_event_is_rejected_by_index_and_field_and_the_good_ones_are_kept(event, field, words):
    body = [GOOD[0], event, GOOD[1]]
    for form in (body, msgspec.json.encode(body)):
        events, errors = decode_events(form, now=NOW)
        assert len(events) == 2
        assert [(e.index, e.field) for e in errors] == [(1, field)]
        assert words in errors[0].message
        assert errors[0].to_dict()["field"] == field


@pytest.mark.parametrize("event", [{"type": "pageview", "visitor_id": "v"}, {"visitor_id": "v"},
                                   {"type": 5, "visitor_id": "v"}])
def test_a_bad_or_missing_type_lists_the_valid_types(event):
    _, errors = decode_events([event], now=NOW)
    assert errors[0].field == "type"
    assert errors[0].message.endswith("; valid types: page_view, product_view, cart_update, order, return, "
                                      "identify, impression, click")


def test_a_single_object_body_is_one_event():
    events, errors = decode_events(b'{"type": "page_view", "visitor_id": "v"}', now=NOW)
    assert len(events) == 1 and errors == []


@pytest.mark.parametrize("body", [b"not json", b'"a string"', b"[1, 2", b'{"a": 1} x'])
def test_a_malformed_body_raises_an_error_without_index(body):
    with pytest.raises(EventError) as info:
        decode_events(body)
    assert info.value.index is None


def test_a_non_object_item_is_reported_by_index():
    events, errors = decode_events(b'[5, {"type": "page_view", "visitor_id": "v"}]', now=NOW)
    assert len(events) == 1 and errors[0].index == 0


def test_too_many_events_in_one_batch_is_an_error():
    with pytest.raises(EventError, match="too many events"):
        decode_events([{"type": "page_view", "visitor_id": "v"}] * 10_001)


def test_python_constructed_events_encode_to_the_same_form():
    order = Order(customer_id="c", order_id="o", at=NOW,
                  items=[OrderItem(sku="s", category="k", quantity=1, price=3.0)])
    data = event_to_dict(order)
    assert data["type"] == "order" and data["at"] == "2025-06-01T12:00:00Z"
    assert decode_events([data], now=NOW)[0] == [order]
    assert event_to_dict(PageView(visitor_id="v", at=NOW)) == {
        "type": "page_view", "visitor_id": "v", "at": "2025-06-01T12:00:00Z"}
