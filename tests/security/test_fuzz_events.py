"""Fuzzing the event intake: ``decode_events`` never raises on an event (only on the body),
and a batch the HTTP intake rejects leaves the store byte for byte as it was."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmint.engine.errors import EventError
from segmint.engine.events import decode_events

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = ["page_view", "product_view", "cart_update", "order", "return", "identify", "impression", "click", "nope"]
FIELDS = ["type", "at", "visitor_id", "customer_id", "path", "sku", "items", "order_id", "total", "coupon",
          "campaign", "skus", "quantity", "price", "discount", "category", "value", "extra"]
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20)
           | st.sampled_from(TYPES + ["2026-01-01T00:00:00Z", "2026-13-45", "x" * 300]))
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=6),
                         max_leaves=25)
event_like = st.fixed_dictionaries({"type": st.sampled_from(TYPES)}, optional={
    name: json_like for name in FIELDS if name != "type"})
batches = st.lists(event_like | json_like, max_size=8)

ORDER = {"type": "order", "customer_id": "c-1", "order_id": "A-1",
         "items": [{"sku": "safe-1", "category": "skincare", "quantity": 2, "price": 30.0}]}


def _check(events: list[Any], errors: list[Any], size: int) -> None:
    assert all(isinstance(e, EventError) for e in errors)
    assert len(events) + len(errors) == size
    assert sorted(e.index for e in errors) == [e.index for e in errors]  # in batch order, each once
    for error in errors:
        assert 0 <= error.index < size and error.message


@FUZZ
@given(batches)
def test_decode_events_reports_every_bad_event_and_never_raises_for_one(batch: list[Any]):
    _check(*decode_events(batch), len(batch))
    try:
        text = json.dumps(batch, allow_nan=False)
    except ValueError:  # NaN and infinities are not JSON
        return
    _check(*decode_events(text.encode()), len(batch))


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_a_malformed_body_is_one_event_error_without_index(body: bytes):
    try:
        events, errors = decode_events(body)
    except EventError as exc:
        assert exc.index is None
    else:
        assert all(isinstance(e, EventError) for e in errors)


def test_absurdly_deep_bodies_are_an_event_error():
    for body in [b"[" * 100_000 + b"]" * 100_000, b'{"type": "order", "items": ' + b"[" * 50_000]:
        try:
            decode_events(body)
        except EventError as exc:
            assert exc.index is None
        else:
            raise AssertionError("accepted")


# -- through HTTP: rejected events change nothing ------------------------------------------------
def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every segmint table, read through SQLite (WAL included)."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}


def _wrong(value: Any) -> list[Any]:
    return [v for v in (None, "12", -1, 1e300, [], {}, True, "x" * 200) if type(v) is not type(value)]


def test_rejected_batches_never_change_stored_data(shop: Any):
    runtime = shop.runtime()
    db = shop.tmp_path / "segmint.db"
    with shop.client(runtime) as client:
        assert client.post("/_segmint/events", json=[ORDER], headers=shop.AUTH).status_code == 200
        runtime.store.catch_up()  # the order folded into its profile row: nothing changes after
        before = snapshot(db)
        assert before["orders"] and before["profiles"]

        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(batch=st.lists(event_like | json_like, min_size=1, max_size=6))
        def post_rejected(batch: list[Any]) -> None:
            events, _ = decode_events(batch)
            if events:  # a valid event slipped in: make it invalid by a wrong-typed total
                batch = [dict(e, total="lots") if isinstance(e, dict) else e for e in batch]
                if decode_events(batch)[0]:
                    return
            try:
                body = json.dumps(batch, allow_nan=False)
            except ValueError:
                return
            response = client.post("/_segmint/events", content=body, headers=shop.AUTH)
            assert response.status_code == 400, response.text
            rejected = response.json()["rejected"]
            assert [r["index"] for r in rejected] == list(range(len(batch)))
            assert snapshot(db) == before

        post_rejected()

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(data=st.data())
        def post_one_wrong_field(data: Any) -> None:
            name = data.draw(st.sampled_from(["order_id", "customer_id", "items", "total", "coupon", "at"]))
            value = data.draw(st.sampled_from(_wrong(ORDER.get(name, 1.0))))
            event = {**ORDER, "order_id": "A-2", name: value}
            if not decode_events([event])[1]:
                return  # e.g. at=None and coupon=None are valid
            response = client.post("/_segmint/events", json=[event], headers=shop.AUTH)
            assert response.status_code == 400
            (error,) = response.json()["rejected"]
            # A null customer_id leaves the order without any id: reported as visitor_id.
            expected = {name, "visitor_id"} if name == "customer_id" else {name}
            assert error["index"] == 0 and error["field"].split("[")[0].split(".")[0] in expected
            assert snapshot(db) == before

        post_one_wrong_field()
