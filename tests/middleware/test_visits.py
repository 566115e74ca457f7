"""Scenario 4 through the middleware: the first page of a visit already counts that visit.

The example config of scenario 4 (new visitors get a merchandiser's list, returning ones picks
from what they viewed) behind ``SegmintMiddleware`` in a Starlette shop, on a frozen clock.
A page view is stored by the background writer after the page went out; the decision must
not wait for it: it is made on the profile including this page's view.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from segmint.engine.clock import FrozenClock
from segmint.engine.config import load_config
from segmint.engine.runtime import Segmint
from segmint.engine.signing import verify
from segmint.middleware import SegmintMiddleware

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "4_new_vs_returning.toml"
NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
RETURNING = 'data-segmint-campaign="picked-for-you"'
NEW = 'data-segmint-campaign="welcome-bestsellers"'


class HeaderAuth(AuthenticationBackend):
    """The shop's login, simplified: ``x-user: <customer id>``."""

    async def authenticate(self, conn: Any) -> Any:
        user = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(user)) if user else None


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse('<!doctype html><html><body><div data-segmint-slot="home"></div></body></html>')


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat()


@pytest.fixture
def shop(mw: Any) -> Any:
    config = load_config(SCENARIO)
    config = msgspec.structs.replace(config, identity=msgspec.structs.replace(config.identity, secret=mw.SECRET))
    clock = FrozenClock(NOW)
    runtime = Segmint.from_config(config, clock=clock, watch=False)
    # Other shoppers' orders, so a returning visitor's picks (bestsellers as the fallback) are not empty.
    runtime.record([{"type": "order", "customer_id": f"c{i}", "order_id": f"o{i}", "at": ago(days=5),
                     "items": [{"sku": "EL-WER-003", "price": 199.0}, {"sku": "EL-SMH-001", "price": 49.0}]}
                    for i in range(3)])
    runtime.refresh_stats()
    app = Starlette(routes=[Route("/", home)])
    app.add_middleware(AuthenticationMiddleware, backend=HeaderAuth())
    app.add_middleware(SegmintMiddleware, runtime=runtime)
    with mw.TestClient(app) as client:
        yield client, runtime, clock
    runtime.close()


def test_a_member_seen_two_days_ago_gets_the_returning_campaign_on_the_landing_page(shop: Any, mw: Any):
    client, runtime, _ = shop
    runtime.record([
        {"type": "page_view", "customer_id": "m1", "path": "/", "at": ago(days=2)},
        {"type": "product_view", "customer_id": "m1", "sku": "EL-HPH-001", "at": ago(days=2)},
    ])
    assert runtime.profile(customer_id="m1").visits == 1  # one visit so far: this page starts the second

    landing = client.get("/", headers={"x-user": "m1"})
    assert RETURNING in landing.text and NEW not in landing.text
    assert mw.flushed_profile(runtime, customer_id="m1").visits == 2  # the store counts it once
    assert RETURNING in client.get("/", headers={"x-user": "m1"}).text
    assert mw.flushed_profile(runtime, customer_id="m1").visits == 2  # same visit


def test_a_brand_new_visitor_is_new_for_the_whole_first_visit_and_returning_on_the_next(shop: Any, mw: Any):
    client, runtime, clock = shop
    first = client.get("/")
    assert NEW in first.text
    visitor = verify(mw.cookie_of(first), mw.SECRET)
    assert NEW in client.get("/").text
    assert mw.flushed_profile(runtime, visitor_id=visitor).visits == 1

    clock.advance(days=2)
    assert RETURNING in client.get("/").text  # the first page of the second visit
    assert mw.flushed_profile(runtime, visitor_id=visitor).visits == 2


def test_a_first_request_to_recommendations_starts_a_visit(shop: Any, mw: Any):
    client, runtime, clock = shop
    answer = client.get("/_segmint/recommendations?slot=home&path=/")
    assert answer.json()["slots"]["home"]["campaign"] == "welcome-bestsellers"
    visitor = verify(mw.cookie_of(answer), mw.SECRET)
    profile = mw.flushed_profile(runtime, visitor_id=visitor)
    assert (profile.visits, profile.page_views) == (1, 1)

    clock.advance(days=2)
    again = client.get("/_segmint/recommendations?slot=home&path=/")
    assert again.json()["slots"]["home"]["campaign"] == "picked-for-you"
    assert mw.flushed_profile(runtime, visitor_id=visitor).visits == 2
