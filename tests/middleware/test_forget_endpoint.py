"""``DELETE {prefix}/profiles``: token-protected erasure of one person, answering what went."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from segmint.middleware import SegmintMiddleware


def order(customer: str, order_id: str) -> dict[str, Any]:
    return {"type": "order", "customer_id": customer, "order_id": order_id,
            "items": [{"sku": "serum-1", "category": "skincare", "quantity": 1, "price": 30.0}]}


@pytest.fixture
def people(runtime: Any) -> Any:
    runtime.record([{"type": "page_view", "visitor_id": "v-1", "path": "/"},
                    {"type": "identify", "visitor_id": "v-1", "customer_id": "c-1"},
                    order("c-1", "A-1"), order("c-2", "B-1")])
    return runtime


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong-token-xyz"}])
def test_without_the_token_nothing_is_erased(client: Any, people: Any, headers: Any):
    response = client.delete("/_segmint/profiles?customer=c-1", headers=headers)
    assert response.status_code == 401
    assert people.profile(customer_id="c-1").orders == 1


def test_erases_the_person_and_answers_what_went(client: Any, auth: Any, people: Any):
    assert people.profile(visitor_id="v-1").orders == 1  # cached now
    response = client.delete("/_segmint/profiles?customer=c-1", headers=auth)
    assert response.status_code == 200
    assert response.json() == {"customer_id": "c-1", "visitor_ids": ["v-1"], "profiles": 1, "links": 1,
                               "events": 3, "report_states": 0}
    assert response.headers["cache-control"] == "no-store"
    assert people.profile(customer_id="c-1").orders == 0
    assert people.profile(visitor_id="v-1").orders == 0  # the cached copy went too
    assert not [e for e in people.store.iter_events() if e.customer_id == "c-1" or e.visitor_id == "v-1"]
    assert people.profile(customer_id="c-2").orders == 1  # someone else is untouched


def test_a_queued_event_of_the_person_is_erased_too(client: Any, auth: Any, people: Any):
    people.writer.flush_interval = 60.0  # the page view waits in the queue (nobody flushes)
    assert people.track([{"type": "page_view", "visitor_id": "v-1", "path": "/later"}])
    response = client.delete("/_segmint/profiles?visitor=v-1", headers=auth)
    assert response.json()["events"] == 4 and response.json()["customer_id"] == "c-1"
    people.writer.flush()
    assert people.store.load(customer_id="c-1") is None
    assert people.store.load(visitor_id="v-1") is None


@pytest.mark.parametrize("query", ["", "customer=", "customer=c-1&visitor=v-1", "customer=a&customer=b",
                                   "customer=" + "x" * 129, "id=c-1"])
def test_exactly_one_id_or_400(client: Any, auth: Any, people: Any, query: str):
    response = client.delete(f"/_segmint/profiles?{query}", headers=auth)
    assert response.status_code == 400
    assert "?customer=ID" in response.json()["error"]
    assert people.profile(customer_id="c-1").orders == 1


def test_other_methods_are_405(client: Any, auth: Any):
    response = client.get("/_segmint/profiles?customer=c-1", headers=auth)
    assert response.status_code == 405 and response.headers["allow"] == "DELETE"


def test_a_store_failure_is_503_and_counted(client: Any, auth: Any, people: Any, monkeypatch: Any):
    from segmint.engine.errors import StoreError

    def broken(**ids: Any) -> Any:
        raise StoreError("database is locked", store="test")

    monkeypatch.setattr(people.profiles, "forget", broken)
    response = client.delete("/_segmint/profiles?customer=c-1", headers=auth)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    health = client.get("/_segmint/health", headers=auth).json()
    assert any("forget" in key for key in health["counters"])


def test_a_store_down_answers_503_instead_of_waiting_for_the_queue(client: Any, auth: Any, people: Any,
                                                                   monkeypatch: Any):
    from segmint.engine import runtime as runtime_module
    from segmint.engine.errors import StoreError

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("database is locked", store="test")

    monkeypatch.setattr(runtime_module, "PRIVACY_FLUSH_SECONDS", 0.01)
    monkeypatch.setattr(people.store, "append", down)  # the queue waits the outage out
    monkeypatch.setattr(people.store, "forget", down)
    assert people.track([{"type": "page_view", "visitor_id": "v-1", "path": "/later"}])
    response = client.delete("/_segmint/profiles?customer=c-1", headers=auth)
    assert response.status_code == 503


def test_a_later_login_links_the_visitor_again(mw: Any, auth: Any, people: Any):
    from segmint.engine.identity import Identity

    segmint = SegmintMiddleware(Starlette(routes=[Route("/{path:path}", mw.fallback)]), runtime=people)
    login = Identity(visitor_id="v-1", customer_id="c-1")
    with mw.TestClient(segmint) as client:
        segmint.services.visitors.link(login, [], people.clock())  # the middleware saw this login and recorded its identify
        assert client.delete("/_segmint/profiles?customer=c-1", headers=auth).status_code == 200
        events: list[Any] = []
        segmint.services.visitors.link(login, events, people.clock())
    assert [e.visitor_id for e in events] == ["v-1"]  # sent again: the link is stored anew
