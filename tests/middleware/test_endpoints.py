"""segmint's HTTP API: event intake, recommendations JSON, click redirect, health."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from segmint.middleware import SegmintMiddleware
from segmint.middleware.endpoints import safe_redirect_target


ORDER = {"type": "order", "customer_id": "c-1", "order_id": "A-1",
         "items": [{"sku": "serum-1", "category": "skincare", "quantity": 2, "price": 30.0}]}


def test_intake_stores_valid_events_durably(client: Any, auth: Any, runtime: Any):
    response = client.post("/_segmint/events", json=[ORDER], headers=auth)
    assert response.status_code == 200
    assert response.json() == {"stored": 1, "duplicates": 0, "rejected": []}
    # Durable before the answer: visible without flushing the background writer.
    assert runtime.profile(customer_id="c-1").orders == 1


def test_intake_counts_a_resent_order_once(client: Any, auth: Any, runtime: Any):
    client.post("/_segmint/events", json=[ORDER], headers=auth)
    again = client.post("/_segmint/events", json=[ORDER], headers=auth).json()
    assert again["duplicates"] == 1 and again["stored"] == 0
    assert runtime.profile(customer_id="c-1").orders == 1


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong-token-xyz"},
                                     {"authorization": "Basic abc"}, {"authorization": "Bearer "}])
def test_intake_without_a_valid_token_is_401_and_stores_nothing(client: Any, runtime: Any, headers: Any):
    response = client.post("/_segmint/events", json=[ORDER], headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "intake-token" not in response.text  # never echo the secret
    assert runtime.profile(customer_id="c-1").orders == 0


def test_intake_rejects_oversized_bodies_with_413(client: Any, auth: Any, mw: Any):
    huge = b"[" + b" " * 70_000 + b"]"
    response = client.post("/_segmint/events", content=huge, headers=auth)
    assert response.status_code == 413 and "larger than" in response.json()["error"]


def test_intake_rejects_malformed_json_with_400(client: Any, auth: Any):
    response = client.post("/_segmint/events", content=b"{not json", headers=auth)
    assert response.status_code == 400
    assert response.json()["rejected"][0]["index"] is None


def test_intake_names_the_bad_event_index_and_field(client: Any, auth: Any, runtime: Any):
    bad = {"type": "order", "customer_id": "c-2", "items": [{"sku": "x", "price": 1.0}]}  # no order_id
    worse = {"type": "page_view", "visitor_id": "v", "path": 5}
    partial = client.post("/_segmint/events", json=[ORDER, bad, worse], headers=auth)
    assert partial.status_code == 200
    data = partial.json()
    assert data["stored"] == 1
    assert [(r["index"], r["field"]) for r in data["rejected"]] == [(1, "order_id"), (2, "path")]
    all_bad = client.post("/_segmint/events", json=[bad], headers=auth)
    assert all_bad.status_code == 400 and all_bad.json()["rejected"][0]["index"] == 0
    assert runtime.profile(customer_id="c-2").orders == 0


def test_a_batch_with_every_event_rejected_is_a_400_naming_each_one(client: Any, auth: Any):
    batch = [{"type": "pageview", "visitor_id": "v"}, {"type": "order", "customer_id": "c"}]
    response = client.post("/_segmint/events", json=batch, headers=auth)
    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "every event was rejected (2); nothing was stored"
    assert data["stored"] == 0
    unknown, missing = data["rejected"]
    assert (unknown["index"], unknown["field"]) == (0, "type")
    assert unknown["error"] == ("unknown event type 'pageview'; valid types: page_view, product_view, "
                                "cart_update, order, return, identify, impression, click")
    assert (missing["index"], missing["field"]) == (1, "order_id") and "missing" in missing["error"]
    assert client.post("/_segmint/events", json=[], headers=auth).json() == {"stored": 0, "duplicates": 0,
                                                                            "rejected": []}


def test_failed_token_attempts_are_rate_limited_per_client(client: Any, auth: Any):
    for _ in range(10):
        assert client.post("/_segmint/events", json=[], headers={"authorization": "Bearer nope-nope"}).status_code == 401
    blocked = client.post("/_segmint/events", json=[ORDER], headers=auth)
    assert blocked.status_code == 429 and "retry-after" in blocked.headers


def test_rate_limit_window_expires(mw: Any, runtime: Any):
    now = [0.0]
    app = SegmintMiddleware(Starlette(), runtime=runtime)
    from segmint.middleware.endpoints import Endpoints

    app.endpoints = Endpoints(app.services, timer=lambda: now[0])
    with mw.TestClient(app) as client:
        for _ in range(10):
            client.get("/_segmint/health", headers={"authorization": "Bearer bad-token"})
        assert client.get("/_segmint/health", headers=mw.AUTH).status_code == 429
        now[0] += 61
        assert client.get("/_segmint/health", headers=mw.AUTH).status_code == 200


def test_intake_answers_503_when_the_store_fails(mw: Any, faulty: Any, auth: Any):
    faulty.fail_record = OSError("disk full")
    with mw.TestClient(SegmintMiddleware(Starlette(), runtime=faulty)) as client:
        response = client.post("/_segmint/events", json=[ORDER], headers=auth)
    assert response.status_code == 503 and "retry-after" in response.headers


def test_wrong_method_is_405_and_unknown_paths_reach_the_app(client: Any):
    assert client.get("/_segmint/events").status_code == 405
    assert client.get("/_segmint/other").text == "app"


def test_recommendations_json_for_the_visitor(client: Any, mw: Any):
    response = client.get("/_segmint/recommendations?slot=cart&slot=home&path=/cart")
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("private")
    data = response.json()
    assert set(data["slots"]) == {"cart", "home"}
    assert data["slots"]["cart"]["campaign"] == "default"
    assert [p["sku"] for p in data["slots"]["cart"]["products"]][:1] == ["serum-1"]
    assert data["slots"]["cart"]["html"].startswith("<section") and "&lt;script&gt;" in data["slots"]["cart"]["html"]
    assert mw.cookie_of(response) is not None
    # What to show, not why: no targeting details for the browser unless debugging.
    assert "reasons" not in data["slots"]["cart"] and "segment" not in data["slots"]["cart"]
    assert "visitor_key" not in data and "big_spender" not in response.text


@pytest.mark.parametrize("query", ["", "slot=%3Cscript%3E", "slot=cart&path=javascript:x"])
def test_recommendations_rejects_bad_queries(client: Any, query: str):
    response = client.get(f"/_segmint/recommendations?{query}")
    assert response.status_code == 400 and "<script>" not in response.text


@pytest.mark.parametrize("target,expected", [
    ("/products/lip-1", "/products/lip-1"),
    ("/products/lip-1?color=red", "/products/lip-1?color=red"),
    ("//evil.example/x", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("/ok\r\nSet-Cookie: x=1", "/"),
    ("/caf\u00e9?q=\u00e9", "/caf%C3%A9?q=%C3%A9"),
    (None, "/"),
])
def test_click_redirect_is_never_open(client: Any, target: str | None, expected: str):
    params = {"_sgm": "default.a.cart"}
    if target is not None:
        params["to"] = target
    response = client.get("/_segmint/click", params=params, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == expected
    assert safe_redirect_target(target) == expected


def test_click_endpoint_records_the_click(client: Any, mw: Any, runtime: Any):
    from segmint.engine.signing import verify

    visitor_id = verify(mw.cookie_of(client.get("/_segmint/recommendations?slot=cart")), mw.SECRET)
    client.get("/_segmint/click", params={"_sgm": "default.a.cart", "to": "/products/lip-1"},
               follow_redirects=False)
    stats = mw.flushed_profile(runtime, visitor_id=visitor_id).campaigns["default"]
    assert stats.clicks == 1 and stats.impressions == 1


def test_health_needs_the_token_and_reports_counters(client: Any, auth: Any):
    assert client.get("/_segmint/health").status_code == 401
    data = client.get("/_segmint/health", headers=auth).json()
    assert data["status"] == "ok" and data["counters"]["api.unauthorized"] == 1
    assert data["warnings"] == []
    # Too few customers for a predictive model yet: health says why the fields are absent.
    assert data["predict"]["status"] == "waiting" and "100 customers" in data["predict"]["reason"]


def test_health_shows_the_compaction_lag(client: Any, auth: Any, runtime: Any):
    client.post("/_segmint/events", json=[ORDER], headers=auth)
    runtime.store.compact = lambda **kwargs: None  # another process holds the compactor lock
    runtime.compact()  # what the embedded compactor thread runs
    assert client.get("/_segmint/health", headers=auth).json()["compaction"]["events"] == 1
    del runtime.store.compact
    runtime.compact()
    assert client.get("/_segmint/health", headers=auth).json()["compaction"] == {"events": 0, "seconds": 0.0}


def test_health_and_the_start_log_warn_when_no_identity_secret_is_set(mw: Any, tmp_path: Any, auth: Any,
                                                                       caplog: Any):
    config = mw.write_config(tmp_path)
    config.write_text(config.read_text().replace(f'secret = "{mw.SECRET}"', ""))
    app = Starlette(routes=[Route("/{path:path}", mw.fallback)])
    with caplog.at_level("WARNING", logger="segmint.middleware"):
        with mw.TestClient(SegmintMiddleware(app, config=config)) as client:  # lifespan closes it
            for _ in range(3):
                page = client.get("/", headers={"accept": "text/html"})
                assert page.text == "app" and "set-cookie" not in page.headers
            warnings = client.get("/_segmint/health", headers=auth).json()["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("no [identity] secret: anonymous visitors")
    logged = [r.getMessage() for r in caplog.records if "no [identity] secret" in r.getMessage()]
    assert logged == [f"segmint: {warnings[0]}"]  # once, at start, not per request
