"""The middleware before its runtime has started: the app is served as if segmint were absent,
segmint's API says why (health 503), and personalization starts once the files are mended."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

from segmint.middleware import SegmintMiddleware

PAGE = '<!doctype html><html><body><h1>Shop</h1><div data-segmint-slot="cart"></div></body></html>'


async def page(request: Any) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def api(request: Any) -> JSONResponse:
    return JSONResponse({"items": [1, 2, 3]})


async def stream(request: Any) -> StreamingResponse:
    async def chunks() -> Any:
        for i in range(3):
            yield f"<p>chunk {i}</p>".encode()
    return StreamingResponse(chunks(), media_type="text/html")


async def own_widget(request: Any) -> JSONResponse:
    """An app that asks segmint itself (``request.state.segmint``) and renders the answer."""
    segmint = request.state.segmint
    decision = await segmint.decision("cart")
    return JSONResponse({"html": segmint.render(decision.slots["cart"]), "reason": segmint.identity.reason})


def shop() -> Starlette:
    return Starlette(routes=[Route("/", page), Route("/api", api), Route("/stream", stream),
                             Route("/own", own_widget)])


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def broken_catalog(mw: Any, tmp_path: Path) -> Path:
    config = mw.write_config(tmp_path)
    (tmp_path / "catalog.json").write_text("this is not JSON")
    return config


def test_every_route_gets_the_apps_own_response(mw: Any, broken_catalog: Path):
    segmint = SegmintMiddleware(shop(), config=broken_catalog)
    assert segmint.runtime is None
    with mw.TestClient(segmint) as client:
        response = client.get("/", headers={"accept": "text/html"})
        assert response.status_code == 200 and response.text == PAGE
        assert "set-cookie" not in response.headers and "vary" not in response.headers
        assert client.get("/api").json() == {"items": [1, 2, 3]}
        assert client.get("/stream").text == "<p>chunk 0</p><p>chunk 1</p><p>chunk 2</p>"
        assert client.get("/own").json() == {"html": "", "reason": "segmint has not started"}
        assert client.get("/missing").status_code == 404  # the app's 404
    assert segmint.counters.get("skipped.not_started") == 5


def test_a_stack_built_on_the_first_request_does_not_fail_either(mw: Any, broken_catalog: Path):
    app = shop()
    app.add_middleware(SegmintMiddleware, config=broken_catalog)  # Starlette builds it on first use
    with mw.TestClient(app) as client:
        assert client.get("/").text == PAGE and client.get("/api").json() == {"items": [1, 2, 3]}


def test_health_answers_503_with_the_cause_behind_the_token(mw: Any, broken_catalog: Path):
    with mw.TestClient(SegmintMiddleware(shop(), config=broken_catalog)) as client:
        assert client.get("/_segmint/health").status_code == 401  # the config decodes: its token applies
        response = client.get("/_segmint/health", headers=mw.AUTH)
    assert response.status_code == 503 and response.headers["cache-control"] == "no-store"
    data = response.json()
    assert data["status"] == "not_started" and data["attempts"] == 1
    assert data["error"].startswith(f"{broken_catalog.parent / 'catalog.json'}: $: catalog is not a JSON list")
    assert 0 < data["retry_in_seconds"] <= 5  # and at once when the file changes
    assert mw.TOKEN not in response.text and mw.SECRET not in response.text


def test_without_a_readable_config_health_shows_the_cause_to_anyone(mw: Any, tmp_path: Path):
    config = mw.write_config(tmp_path)
    config.write_text(config.read_text() + "\n[[[ broken\n")
    line = len(config.read_text().splitlines())
    with mw.TestClient(SegmintMiddleware(shop(), config=config)) as client:
        response = client.get("/_segmint/health")  # no token can be known: none is asked for
        assert client.get("/").text == PAGE
    assert response.status_code == 503
    cause = response.json()["error"]
    assert cause.startswith(f"{config.resolve()}:{line}: $: cannot parse TOML")
    assert mw.TOKEN not in response.text and mw.SECRET not in response.text


def test_the_api_answers_without_a_runtime(mw: Any, broken_catalog: Path):
    with mw.TestClient(SegmintMiddleware(shop(), config=broken_catalog)) as client:
        auth = mw.AUTH
        events = client.post("/_segmint/events", json=[{"type": "page_view", "visitor_id": "v"}], headers=auth)
        assert events.status_code == 503 and events.headers["retry-after"]  # nothing stored: retry
        forget = client.delete("/_segmint/profiles?customer=c-1", headers=auth)
        assert forget.status_code == 503 and forget.headers["retry-after"]  # nothing erased: retry
        for path in ("/_segmint/report/login", "/_segmint/report/logout"):  # no token known yet: no session
            signed = client.post(path, data={"token": mw.TOKEN}, headers={"origin": "http://testserver"})
            assert signed.status_code == 503 and "set-cookie" not in signed.headers
        recommendations = client.get("/_segmint/recommendations?slot=cart")
        assert recommendations.status_code == 200 and recommendations.json() == {"slots": {}, "fallback": True}
        click = client.get("/_segmint/click", params={"_sgm": "default.a.cart", "to": "/products/lip-1"},
                           follow_redirects=False)
        assert click.status_code == 303 and click.headers["location"] == "/products/lip-1"
        assert client.get("/_segmint/other").status_code == 404  # not segmint's: the app's


def test_mending_the_catalog_starts_personalization_without_a_restart(mw: Any, broken_catalog: Path):
    segmint = SegmintMiddleware(shop(), config=broken_catalog)
    with mw.TestClient(segmint) as client:
        assert client.get("/", headers={"accept": "text/html"}).text == PAGE
        mw.write_config(broken_catalog.parent)  # writes the catalog again
        assert wait_for(lambda: 'data-segmint-campaign="default"' in client.get("/", headers={"accept": "text/html"}).text)
        health = client.get("/_segmint/health", headers=mw.AUTH)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert client.get("/own").json()["reason"] is None
    assert segmint.runtime is not None and segmint.runtime.writer.submit([]) is False  # closed at shutdown


def test_lifespan_shutdown_stops_the_retries(mw: Any, broken_catalog: Path):
    segmint = SegmintMiddleware(shop(), config=broken_catalog)
    with mw.TestClient(segmint):
        pass
    mw.write_config(broken_catalog.parent)
    starter = segmint._starter
    assert starter.poll() is False and starter.attempts == 1 and starter.runtime is None


def test_the_health_answers_in_operations_md_have_the_real_keys(mw: Any, broken_catalog: Path):
    import json
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = doc[doc.index("## How to monitor it"):]
    running, not_started = (json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", section, re.S)[:2])
    auth = mw.AUTH
    segmint = SegmintMiddleware(shop(), config=broken_catalog)
    with mw.TestClient(segmint) as client:
        assert set(client.get("/_segmint/health", headers=auth).json()) == set(not_started)
        mw.write_config(broken_catalog.parent)
        assert wait_for(lambda: client.get("/_segmint/health", headers=auth).status_code == 200)
        assert set(client.get("/_segmint/health", headers=auth).json()) == set(running)
