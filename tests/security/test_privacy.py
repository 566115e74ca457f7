"""What a personalized response may reveal: the widget and nothing else, never to a shared cache."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segmint.middleware import SegmintMiddleware

CUSTOMER = "alice.private@example.com"
SPEND = 1234.56


class HeaderAuth(AuthenticationBackend):
    async def authenticate(self, conn: Any) -> Any:
        user = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(user)) if user else None


async def cached_page(request: Request) -> HTMLResponse:
    return HTMLResponse('<html><body><div data-segmint-slot="cart"></div></body></html>',
                        headers={"cache-control": "public, max-age=600, s-maxage=3600", "vary": "Accept-Encoding"})


@pytest.fixture
def client(shop: Any, request: Any) -> Any:
    runtime = shop.runtime(debug=getattr(request, "param", False))
    runtime.record([{"type": "order", "customer_id": CUSTOMER, "order_id": "p-1", "total": SPEND, "coupon": "SECRET10",
                     "items": [{"sku": "tv-1", "category": "electronics", "price": SPEND}]}])
    app = Starlette(routes=[Route("/", cached_page)])
    app.add_middleware(AuthenticationMiddleware, backend=HeaderAuth())
    app.add_middleware(SegmintMiddleware, runtime=runtime)
    with shop.TestClient(app) as client:
        yield client


def _everything(response: Any) -> str:
    return response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


@pytest.mark.parametrize("client", [False, True], indirect=True, ids=["debug-off", "debug-on"])
def test_the_customers_page_shows_the_widget_and_no_profile_data(client: Any):
    response = client.get("/", headers={"x-user": CUSTOMER, "accept": "text/html"})
    assert 'data-segmint-campaign="vip"' in response.text  # personalized from the stored order
    everything = _everything(response)
    for private in (CUSTOMER, "alice", "1234.56", "1,234", "SECRET10", "c:"):
        assert private not in everything
    api = client.get("/_segmint/recommendations", params={"slot": "cart"}, headers={"x-user": CUSTOMER})
    for private in (CUSTOMER, "1234.56", "SECRET10", "visitor_key", "c:"):
        assert private not in _everything(api)


@pytest.mark.parametrize("client", [False], indirect=True)
def test_personalized_responses_are_private_and_vary_by_cookie(client: Any):
    response = client.get("/", headers={"x-user": CUSTOMER, "accept": "text/html"})
    cache_control = [d.strip() for d in response.headers["cache-control"].split(",")]
    assert "private" in cache_control and "public" not in cache_control
    assert not any(d.startswith("s-maxage") for d in cache_control)
    assert "Cookie" in [v.strip() for v in response.headers["vary"].split(",")]
    assert "etag" not in response.headers
    api = client.get("/_segmint/recommendations", params={"slot": "cart"})
    assert api.headers["cache-control"].startswith("private") and api.headers["vary"] == "Cookie"


@pytest.mark.parametrize("client", [False], indirect=True)
def test_no_debug_header_unless_configured(client: Any):
    response = client.get("/", headers={"x-user": CUSTOMER})
    assert not any(k.lower().startswith("x-segmint") for k in response.headers)
    api = client.get("/_segmint/recommendations", params={"slot": "cart"}).json()["slots"]["cart"]
    assert not {"reasons", "segment", "strategy"} & set(api)


@pytest.mark.parametrize("client", [True], indirect=True)
def test_the_debug_header_names_campaigns_not_people(client: Any):
    header = client.get("/", headers={"x-user": CUSTOMER}).headers["x-segmint-debug"]
    assert header.startswith("cart=vip/") and CUSTOMER not in header and "1234" not in header
