"""The middleware on HTML pages of a Starlette app: identify, fill slots, headers, tracking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

from segmint.engine.signing import new_visitor_id, sign, verify
from segmint.middleware import SegmintMiddleware


class HeaderAuth(AuthenticationBackend):
    """The shop's login, simplified: ``x-user: <customer id>``."""

    async def authenticate(self, conn: Any) -> Any:
        user = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(user)) if user else None


def page(extra: str = "") -> str:
    return ("<!doctype html><html><body><h1>Shop</h1>"
            f'<div class="recs" data-segmint-slot="cart"></div>{extra}</body></html>')


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(page())


async def product(request: Request) -> HTMLResponse:
    return HTMLResponse(page(f"<p>{request.path_params['sku']}</p>"))


async def echo_query(request: Request) -> HTMLResponse:
    return HTMLResponse(page(f"<p id=q>{request.url.query}</p>"))


async def own_cookie(request: Request) -> HTMLResponse:
    response = HTMLResponse(page())
    response.set_cookie("session", "abc", httponly=True)
    return response


async def cached(request: Request) -> HTMLResponse:
    return HTMLResponse(page(), headers={"etag": '"v1"', "vary": "Accept-Encoding",
                                         "cache-control": "public, max-age=60"})


async def no_slot(request: Request) -> HTMLResponse:
    return HTMLResponse("<html><body>plain</body></html>", headers={"etag": '"v2"'})


async def marker(request: Request) -> HTMLResponse:
    return HTMLResponse(page('<main data-segmint-product="cream-1"></main>'))


async def bad_slots(request: Request) -> HTMLResponse:
    return HTMLResponse('<div data-segmint-slot="<b>x</b>"></div><!-- segmint:slot "><script> -->')


async def not_found(request: Request) -> HTMLResponse:
    return HTMLResponse(page(), status_code=404)


async def post_page(request: Request) -> HTMLResponse:
    return HTMLResponse(page())


async def api(request: Request) -> JSONResponse:
    return JSONResponse({"items": [1, 2, 3]})


async def state(request: Request) -> JSONResponse:
    segmint = request.state.segmint
    decision = await segmint.decision("cart")
    return JSONResponse({"visitor": segmint.identity.visitor_id,
                         "campaign": decision.slots["cart"].campaign,
                         "html": segmint.render(decision.slots["cart"])[:8]})


async def stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'<html><div data-segmint-slot="cart"></div>'
        for _ in range(20):
            yield b"x" * 8192
        yield b"</html>"

    return StreamingResponse(chunks(), media_type="text/html")


ROUTES = [
    Route("/", home), Route("/products/{sku}", product), Route("/q", echo_query),
    Route("/own-cookie", own_cookie), Route("/cached", cached), Route("/plain", no_slot),
    Route("/marker", marker), Route("/bad-slots", bad_slots), Route("/missing", not_found),
    Route("/post", post_page, methods=["POST"]), Route("/api", api), Route("/state", state),
    Route("/stream", stream),
]


@pytest.fixture
def app_for(mw: Any) -> Any:
    def build(runtime: Any, *, auth: bool = False) -> Starlette:
        app = Starlette(routes=ROUTES)
        if auth:  # added first: it runs inside segmint, as in a typical shop
            app.add_middleware(AuthenticationMiddleware, backend=HeaderAuth())
        app.add_middleware(SegmintMiddleware, runtime=runtime)
        return app

    return build


@pytest.fixture
def client(mw: Any, runtime: Any, app_for: Any) -> Any:
    with mw.TestClient(app_for(runtime)) as client:
        yield client


def test_new_visitor_gets_a_signed_cookie_and_the_default_widget(client: Any, mw: Any, runtime: Any):
    response = client.get("/", headers={"accept": "text/html"})
    assert response.status_code == 200
    set_cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes and "secure" not in attributes
    assert "SameSite=Lax" in set_cookie and "Max-Age=31536000" in set_cookie
    visitor_id = verify(mw.cookie_of(response), mw.SECRET)
    assert visitor_id is not None
    body = response.text
    assert 'data-segmint-campaign="default"' in body and 'data-segmint-sku="serum-1"' in body
    assert body.startswith('<!doctype html><html><body><h1>Shop</h1><div class="recs" data-segmint-slot="cart">')
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers["vary"] == "Cookie"
    assert response.headers["cache-control"] == "private"
    assert "x-segmint-debug" not in response.headers
    # The page view and the impression were recorded for this visitor.
    profile = mw.flushed_profile(runtime, visitor_id=visitor_id)
    assert profile.page_views == 1
    assert profile.campaigns["default"].impressions == 1


def test_returning_visitor_keeps_the_id_and_gets_no_new_cookie(client: Any, mw: Any, runtime: Any):
    first = client.get("/")
    visitor_id = verify(mw.cookie_of(first), mw.SECRET)
    second = client.get("/")  # the client sends the cookie back
    assert "set-cookie" not in second.headers
    assert 'data-segmint-campaign="default"' in second.text
    assert mw.flushed_profile(runtime, visitor_id=visitor_id).page_views == 2


def test_https_cookie_is_secure(mw: Any, runtime: Any, app_for: Any):
    with mw.TestClient(app_for(runtime), base_url="https://shop.example") as client:
        assert "Secure" in client.get("/").headers["set-cookie"]


@pytest.mark.parametrize("value", ["garbage", "A" * 4000, "{forged}.sig", "\x7fbinary"])
def test_forged_garbled_or_oversized_cookie_gets_a_fresh_id(client: Any, mw: Any, value: str):
    response = client.get("/", headers={"cookie": f"segmint_vid={value}"})
    fresh = mw.cookie_of(response)
    assert fresh is not None and verify(fresh, mw.SECRET) is not None and fresh != value
    assert 'data-segmint-campaign="default"' in response.text


def test_another_visitors_id_with_a_forged_signature_is_not_accepted(client: Any, mw: Any):
    victim = new_visitor_id()
    forged = f"{victim}.{sign(new_visitor_id(), mw.SECRET).split('.')[1]}"
    response = client.get("/", headers={"cookie": f"segmint_vid={forged}"})
    assert verify(mw.cookie_of(response), mw.SECRET) != victim


def order(customer: str | None = None, visitor: str | None = None, order_id: str = "o-1") -> dict[str, Any]:
    event: dict[str, Any] = {"type": "order", "order_id": order_id,
                             "items": [{"sku": "tv-1", "category": "electronics", "price": 900.0}]}
    if customer:
        event["customer_id"] = customer
    if visitor:
        event["visitor_id"] = visitor
    return event


def test_customer_with_posted_orders_gets_the_segment_campaign(mw: Any, runtime: Any, app_for: Any):
    with mw.TestClient(app_for(runtime, auth=True)) as client:
        before = client.get("/", headers={"x-user": "cust-42"})
        assert 'data-segmint-campaign="default"' in before.text
        posted = client.post("/_segmint/events", json=[order(customer="cust-42")],
                             headers=mw.AUTH)
        assert posted.status_code == 200 and posted.json()["stored"] == 1
        after = client.get("/", headers={"x-user": "cust-42"})
        assert 'data-segmint-campaign="vip"' in after.text and 'data-segmint-sku="tv-1"' in after.text
        # Someone else (or the same browser logged out... as a new visitor) still gets the default.
        client.cookies.clear()
        other = client.get("/")
        assert 'data-segmint-campaign="default"' in other.text


def test_anonymous_visitor_with_orders_by_visitor_id_gets_the_segment_campaign(client: Any, mw: Any):
    visitor_id = verify(mw.cookie_of(client.get("/")), mw.SECRET)
    client.post("/_segmint/events", json=[order(visitor=visitor_id)],
                headers=mw.AUTH)
    assert 'data-segmint-campaign="vip"' in client.get("/").text


def test_logged_in_visitor_is_linked_to_the_customer_once(mw: Any, runtime: Any, app_for: Any):
    with mw.TestClient(app_for(runtime, auth=True)) as client:
        visitor_id = verify(mw.cookie_of(client.get("/")), mw.SECRET)  # anonymous first
        client.get("/", headers={"x-user": "cust-7"})
        client.get("/", headers={"x-user": "cust-7"})
        profile = mw.flushed_profile(runtime, customer_id="cust-7")
    assert visitor_id in profile.visitor_ids
    assert profile.page_views == 3  # the anonymous view was merged into the customer


def test_health_counts_the_personalized_pages(client: Any, mw: Any):
    client.get("/")
    client.get("/")
    client.get("/plain")  # no slot: served, not personalized
    counters = client.get("/_segmint/health", headers=mw.AUTH).json()["counters"]
    assert counters["personalized"] == 2


def test_product_names_and_titles_are_escaped(client: Any):
    body = client.get("/").text
    assert "<script>alert(1)</script>" not in body
    assert "Lip &lt;script&gt;alert(1)&lt;/script&gt; Tint" in body
    assert "Popular &lt;right&gt; now" in body


def test_slot_names_with_markup_are_left_alone(client: Any):
    response = client.get("/bad-slots")
    assert response.text == '<div data-segmint-slot="<b>x</b>"></div><!-- segmint:slot "><script> -->'


def test_own_set_cookie_is_preserved(client: Any):
    response = client.get("/own-cookie")
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert any(c.startswith("session=abc") for c in cookies)
    assert any(c.startswith("segmint_vid=") for c in cookies)


def test_etag_dropped_vary_merged_cache_control_private(client: Any):
    response = client.get("/cached")
    assert "etag" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding, Cookie"
    assert response.headers["cache-control"] == "private, max-age=60"


def test_unchanged_page_keeps_its_etag(client: Any):
    client.get("/")  # get a cookie: no Set-Cookie next time
    response = client.get("/plain")
    assert response.headers["etag"] == '"v2"' and "set-cookie" not in response.headers
    assert response.text == "<html><body>plain</body></html>"


def test_click_parameter_is_stripped_and_recorded(client: Any, mw: Any, runtime: Any):
    visitor_id = verify(mw.cookie_of(client.get("/")), mw.SECRET)
    response = client.get("/q?a=1&_sgm=default.a.cart&b=x%20y")
    assert "<p id=q>a=1&amp;b=x%20y</p>" in response.text or "<p id=q>a=1&b=x%20y</p>" in response.text
    assert "_sgm" not in response.text.split("<p id=q>")[1].split("</p>")[0]
    profile = mw.flushed_profile(runtime, visitor_id=visitor_id)
    assert profile.campaigns["default"].clicks == 1


def test_product_page_records_a_product_view_and_excludes_the_product(client: Any, mw: Any, runtime: Any):
    visitor_id = verify(mw.cookie_of(client.get("/")), mw.SECRET)
    body = client.get("/products/serum-1").text
    assert 'data-segmint-sku="serum-1"' not in body and 'data-segmint-sku="lip-1"' in body
    client.get("/marker")
    profile = mw.flushed_profile(runtime, visitor_id=visitor_id)
    assert profile.product_views == 2
    assert set(profile.viewed_skus) == {"serum-1", "cream-1"}


def test_debug_header_only_when_enabled(mw: Any, make_runtime: Any, app_for: Any):
    with mw.TestClient(app_for(make_runtime(debug=True))) as client:
        header = client.get("/").headers["x-segmint-debug"]
    assert header.startswith("cart=default/") and "campaign vip: visitor is not in segment" not in header


def test_bots_get_the_default_without_cookie_or_tracking(client: Any, runtime: Any):
    response = client.get("/", headers={"user-agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    assert "set-cookie" not in response.headers
    assert 'data-segmint-campaign="default"' in response.text
    runtime.writer.flush(timeout=5)
    assert runtime.store.count_profiles() == 0


def test_bots_never_reach_the_campaign_report(client: Any, runtime: Any):
    """Bots are excluded from experiments where they arrive: no impression, click or page view
    is recorded for a ``bot_user_agents`` match, so no report counts them."""
    from datetime import datetime, timedelta, timezone

    from segmint.engine.analytics import build_report

    for agent in ("Googlebot/2.1", "Mozilla/5.0 (compatible; AhrefsBot/7.0)", "HeadlessChrome/120.0"):
        client.get("/", headers={"user-agent": agent})
    client.get("/", headers={"user-agent": "Mozilla/5.0 (Macintosh) Safari/605.1.15"})  # one shopper
    runtime.writer.flush(timeout=5)
    assert [type(e).__name__ for e in runtime.store.iter_events(types=("impression", "click"))] == ["Impression"]
    report = build_report(runtime.store, now=datetime.now(timezone.utc) + timedelta(minutes=1), checkpoint=False)
    assert [v.visitors for c in report.campaigns for v in c.variants] == [1]


def test_consent_required_and_missing(mw: Any, make_runtime: Any, app_for: Any):
    runtime = make_runtime(consent=True)
    with mw.TestClient(app_for(runtime)) as client:
        without = client.get("/")
        assert "set-cookie" not in without.headers
        granted = client.get("/", headers={"cookie": "segmint_consent=yes"})
        assert mw.cookie_of(granted) is not None


def test_request_state_gives_identity_and_decision(client: Any, mw: Any):
    data = client.get("/state", headers={"accept": "application/json"}).json()
    assert data["campaign"] == "default" and data["html"].startswith("<section")
    assert data["visitor"] and len(data["visitor"]) == 22


@pytest.mark.parametrize("path,method", [("/missing", "GET"), ("/post", "POST"), ("/api", "GET")])
def test_non_page_responses_are_not_touched(client: Any, path: str, method: str):
    response = client.request(method, path)
    assert "data-segmint-campaign" not in response.text
    assert "set-cookie" not in response.headers and "vary" not in response.headers


@pytest.mark.parametrize("accept,filled", [
    ("application/json", False), ("image/avif,image/webp", False), ("APPLICATION/JSON", False),
    ("text/html,application/xhtml+xml", True), ("application/xhtml+xml", True), ("*/*", True),
    ("application/json, text/plain, */*", True), ("text/*", True), (None, True),
])
def test_a_client_that_takes_no_html_gets_the_response_untouched(client: Any, accept: str | None, filled: bool):
    """Accept ruling HTML out (an API call): the response is passed on as is, not even
    inspected; anything that may take HTML gets its page filled."""
    response = client.get("/", headers={"accept": accept} if accept else {})
    assert response.status_code == 200
    assert ('data-segmint-campaign="default"' in response.text) is filled
    if not filled:
        assert 'data-segmint-slot="cart"></div>' in response.text  # the slot, still empty
        assert "set-cookie" not in response.headers and "vary" not in response.headers


def test_request_state_is_there_for_clients_that_take_no_html(client: Any):
    data = client.get("/state", headers={"accept": "application/json"}).json()
    assert data["campaign"] == "default" and data["visitor"]


def test_streaming_page_beyond_the_bound_is_untouched(client: Any):
    response = client.get("/stream")
    expected = b'<html><div data-segmint-slot="cart"></div>' + b"x" * 8192 * 20 + b"</html>"
    assert response.content == expected
    assert response.headers.get("set-cookie", "").startswith("segmint_vid=")  # headers may carry the cookie


def test_control_group_sees_nothing_but_the_impression_is_recorded(mw: Any, make_runtime: Any, app_for: Any):
    runtime = make_runtime(control=True, debug=True)
    with mw.TestClient(app_for(runtime)) as client:
        response = client.get("/")
        visitor_id = verify(mw.cookie_of(response), mw.SECRET)
        assert response.text == page()
        assert response.headers["x-segmint-debug"] == "cart=default/control segment=-"
        stats = mw.flushed_profile(runtime, visitor_id=visitor_id).campaigns["default"]
    assert stats.impressions == 1 and stats.last_variant == "control"
