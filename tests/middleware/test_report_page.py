"""The report page: escaped server-rendered HTML with an SVG chart, checked in real chromium,
and its token-protected ASGI endpoint."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import httpx
import pytest

from segmint.engine.analytics import (
    AnalyticsConfig,
    CampaignReport,
    attribute,
    report_from_attribution,
    snapshot_segments,
)
from segmint.engine.analytics.segments import SegmentSnapshot
from segmint.engine.events import Click, Identify, Impression, Order, OrderItem
from segmint.engine.stores import MemoryStore
from segmint.middleware.report_page import (
    parse_report_query, render_chart, render_lift_chart, render_report_page, report_endpoint, verdict_badge,
)

UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)
TOKEN = "report-token-123456"
EVIL = '<script>alert("x")</script>'


def _events(seed=3):
    rng = random.Random(seed)
    rates = {"control": 0.04, "B": 0.07, EVIL: 0.05}
    events = []
    for i in range(3000):
        variant = list(rates)[i % 3]
        at = T0 + timedelta(minutes=7 * i)  # about 14 days of traffic
        events.append(Impression(campaign="winback", variant=variant, visitor_id=f"v{i}", at=at,
                                 skus=[] if variant == "control" else ["s1"]))
        if rng.random() < 0.1:
            events.append(Click(campaign="winback", variant=variant, visitor_id=f"v{i}", at=at + timedelta(minutes=1)))
        if rng.random() < rates[variant]:
            events.append(Order(order_id=f"o{i}", visitor_id=f"v{i}", at=at + timedelta(hours=2),
                                items=[OrderItem(sku="s1", price=25.0)]))
    events.append(Impression(campaign="solo", variant="default", visitor_id="v1", at=T0))
    return sorted(events, key=lambda e: e.at)


def _report():
    return report_from_attribution(attribute(_events()), now=T0 + timedelta(days=20))


SEGMENTS = [
    SegmentSnapshot(day=T0.date(), profiles=100, sizes={"vip": 10, EVIL: 3}),
    SegmentSnapshot(day=(T0 + timedelta(days=1)).date(), profiles=120, sizes={"vip": 14, EVIL: 2},
                    overlap={(EVIL, "vip"): 1}),
]


def test_page_has_tables_a_chart_per_campaign_and_escapes_everything():
    html = render_report_page(_report(), SEGMENTS)
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;") >= 4  # the variant (table, legend, tooltips) and the segment
    assert html.count('<svg class="chart"') == 2
    assert 'data-campaign="winback"' in html
    assert len(re.findall(r'<g class="series" data-variant="[^"]*"><polyline', html)) == 3 + 1
    assert "B beats control by" in html or "not enough data yet" in html
    assert "no control variant: lift cannot be measured" in html
    assert 'class="segments"' in html and 'class="overlap"' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no CDN, no links out


def test_page_shows_a_sample_ratio_mismatch_the_correction_and_each_intervals_level():
    splits = {"winback": {"control": 1, "B": 1, EVIL: 2}}  # the log splits 1:1:1
    report = report_from_attribution(attribute(_events()), now=T0 + timedelta(days=20), splits=splits)
    html = render_report_page(report)
    assert "<script" not in html.lower()
    (flag,) = re.findall(r'<p class="srm mismatch">([^<]*)</p>', html)
    assert "SAMPLE RATIO MISMATCH" in flag and "must not be trusted" in flag and "&lt;script&gt;" in flag
    assert "2 variants against control: p-values corrected (holm-bonferroni)" in html
    assert "do not trust (sample ratio mismatch)" in html
    assert "confidence sequences" in html  # the method line
    assert re.search(r"\] \(9[5-9](\.\d+)?%\)</td>", html)  # each lift's interval names its level
    fine = render_report_page(report_from_attribution(attribute(_events()), now=T0 + timedelta(days=20),
                                                      splits={"winback": {"control": 1, "B": 1, EVIL: 1}}))
    assert 'class="srm mismatch"' not in fine and 'class="srm meta"' in fine


def test_a_campaign_with_a_single_day_still_gets_a_chart_and_an_empty_one_a_note():
    solo = _report().campaigns[0]
    chart = render_chart(solo)
    assert 'data-campaign="solo"' in chart and chart.count("<circle") == 1
    empty = CampaignReport(campaign="quiet", control=None, variants=())
    assert render_chart(empty) == '<p class="nochart">Conversion over time for campaign quiet: no exposures yet.</p>'


# -- the real browser ----------------------------------------------------------------------------

def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def _run_chromium(browser, tmp_path, *args):
    profile = tmp_path / "profile"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--window-size=1200,1600", *args]
    return subprocess.run(command, capture_output=True, timeout=120, check=False)


def test_the_page_renders_in_headless_chromium(browser, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_report_page(_report(), SEGMENTS), encoding="utf-8")
    url = page.as_uri()
    dumped = _run_chromium(browser, tmp_path, "--dump-dom", url)
    dom = dumped.stdout.decode("utf-8", "replace")
    assert dumped.returncode == 0, dumped.stderr.decode()[-2000:]
    # The rendered DOM (after parsing) holds the chart: a line per variant, both axes, a legend.
    # Conversion: winback's three variants, solo's one; lift: winback's two against the control.
    assert dom.count("<polyline") == 3 + 1 + 2 and dom.count('<polygon class="band"') == 2
    assert '<g class="axis x">' in dom and '<g class="axis y">' in dom
    assert dom.count('class="legend-item"') == 4 + 2
    assert "conversion rate" in dom and "day of first exposure" in dom
    assert "<script" not in dom.lower()
    shot = tmp_path / "shot.png"
    result = _run_chromium(browser, tmp_path, f"--screenshot={shot}", url)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000  # a real page, not a blank image
    if os.environ.get("SEGMINT_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["SEGMINT_KEEP_SCREENSHOT"])


# -- the endpoint --------------------------------------------------------------------------------

@pytest.fixture
def stub_runtime():
    store = MemoryStore(clock=lambda: T0)
    store.append(_events())
    config = SimpleNamespace(api=SimpleNamespace(token=TOKEN), analytics=AnalyticsConfig(), campaigns=[])
    rt = SimpleNamespace(store=store, config=config,
                         clock=lambda: T0 + timedelta(days=20), state=SimpleNamespace(segments={}),
                         document_builder=lambda now, only=None: lambda profile: {})
    yield rt
    store.close()


def _get(rt, url, headers=None, method="GET"):
    async def app(scope, receive, send):
        await report_endpoint(scope, receive, send, rt)

    async def call():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop") as client:
            return await client.request(method, url, headers=headers or {})

    return asyncio.run(call())


def test_the_endpoint_needs_the_bearer_token(stub_runtime):
    assert _get(stub_runtime, "/_segmint/report").status_code == 401
    assert _get(stub_runtime, "/_segmint/report", {"authorization": "Bearer wrong"}).status_code == 401
    response = _get(stub_runtime, "/_segmint/report", {"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src" not in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert '<svg class="chart"' in response.text and "winback" in response.text


def test_the_token_is_refused_in_the_url(stub_runtime):
    assert _get(stub_runtime, f"/_segmint/report?token={TOKEN}").status_code == 401
    response = _get(stub_runtime, f"/_segmint/report?token={TOKEN}", {"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400 and "Authorization header" in response.text


def test_the_endpoint_filters_by_campaign_and_since_and_rejects_bad_values(stub_runtime):
    auth = {"authorization": f"Bearer {TOKEN}"}
    only = _get(stub_runtime, "/_segmint/report?campaign=solo&window=3", auth)
    assert only.status_code == 200 and "Campaign solo" in only.text and "Campaign winback" not in only.text
    later = _get(stub_runtime, "/_segmint/report?since=2026-03-10", auth)
    assert later.status_code == 200
    for bad in ("since=yesterday", "window=0", "window=abc"):
        assert _get(stub_runtime, f"/_segmint/report?{bad}", auth).status_code == 400
    assert _get(stub_runtime, "/_segmint/report", auth, method="POST").status_code == 405


def test_only_the_unfiltered_page_saves_report_state(stub_runtime, monkeypatch):
    from segmint.engine.analytics import checkpoint
    from segmint.engine.stores.base import report_state_names

    monkeypatch.setattr(checkpoint, "MIN_EVENTS", 1)
    auth = {"authorization": f"Bearer {TOKEN}"}
    saved = lambda: report_state_names(stub_runtime.store._meta)  # noqa: E731 - states, not their parts
    for query in ("campaign=solo", "window=3", "since=2026-03-02"):
        assert _get(stub_runtime, f"/_segmint/report?{query}", auth).status_code == 200
    assert saved() == []  # query strings cannot fill the store with saved states
    first = _get(stub_runtime, "/_segmint/report", auth)
    assert len(saved()) == 1
    again = _get(stub_runtime, "/_segmint/report", auth)  # resumed from the saved state
    assert first.status_code == again.status_code == 200 and first.text == again.text


class _GatedBuilds:
    """``build_report`` counted and held until released: concurrent requests can pile up."""

    def __init__(self, monkeypatch, fail: bool = False):
        import threading

        from segmint.middleware import report_page

        self.calls, self.fail = 0, fail
        self.started, self.release = threading.Event(), threading.Event()
        real = report_page.build_report

        def build_report(*args, **kwargs):
            self.calls += 1
            self.started.set()
            assert self.release.wait(10)
            if self.fail:
                raise ValueError("since must be before until")
            return real(*args, **kwargs)

        monkeypatch.setattr(report_page, "build_report", build_report)


def _pile_up(rt, urls, gate, *, cancel_first=False, extra=None):
    """Request ``urls`` at once; release the build once they all wait for it."""
    from segmint.middleware.report_page import REPORT_BUILDS

    auth = {"authorization": f"Bearer {TOKEN}"}

    async def app(scope, receive, send):
        await report_endpoint(scope, receive, send, rt)

    async def call():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop") as client:
            tasks = [asyncio.create_task(client.get(url, headers=auth)) for url in urls]
            if extra is not None:
                tasks.append(asyncio.create_task(extra(client, auth)))
            while not gate.started.is_set():
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # the others reach the build in progress
            if cancel_first:
                tasks[0].cancel()  # the browser that started it went away
            gate.release.set()
            return await asyncio.gather(*tasks, return_exceptions=True)

    responses = asyncio.run(call())
    assert REPORT_BUILDS.running == 0
    return responses


def test_requests_for_a_report_being_built_share_that_build(stub_runtime, monkeypatch):
    gate = _GatedBuilds(monkeypatch)
    responses = _pile_up(stub_runtime, ["/_segmint/report"] * 3, gate)
    assert gate.calls == 1
    assert [r.status_code for r in responses] == [200] * 3
    assert responses[0].text == responses[1].text == responses[2].text and "winback" in responses[0].text
    # Once it ended, the next request builds afresh; another query is its own build.
    gate.started.clear()
    assert _get(stub_runtime, "/_segmint/report", {"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert gate.calls == 2
    gate.release.clear()
    gate.started.clear()
    responses = _pile_up(stub_runtime, ["/_segmint/report", "/_segmint/report?campaign=solo"], gate)
    assert gate.calls == 4 and [r.status_code for r in responses] == [200, 200]
    assert "Campaign winback" in responses[0].text and "Campaign winback" not in responses[1].text
    # A hot reload swaps the config: a request under the new one does not join the old build.
    gate.release.clear()
    gate.started.clear()
    old_config = stub_runtime.config

    async def reload_then_get(client, auth):
        await asyncio.sleep(0.05)
        stub_runtime.config = SimpleNamespace(**vars(old_config))
        return await client.get("/_segmint/report", headers=auth)

    responses = _pile_up(stub_runtime, ["/_segmint/report"], gate, extra=reload_then_get)
    assert gate.calls == 6 and [r.status_code for r in responses] == [200, 200]


def test_a_waiter_that_leaves_does_not_stop_the_build_for_the_others(stub_runtime, monkeypatch):
    gate = _GatedBuilds(monkeypatch)
    responses = _pile_up(stub_runtime, ["/_segmint/report"] * 3, gate, cancel_first=True)
    assert isinstance(responses[0], asyncio.CancelledError)
    assert gate.calls == 1 and [r.status_code for r in responses[1:]] == [200, 200]


def test_a_failed_build_answers_every_waiter_and_the_next_request_tries_again(stub_runtime, monkeypatch):
    gate = _GatedBuilds(monkeypatch, fail=True)
    responses = _pile_up(stub_runtime, ["/_segmint/report"] * 2, gate)
    assert gate.calls == 1 and [r.status_code for r in responses] == [400, 400]
    gate.fail = False
    assert _get(stub_runtime, "/_segmint/report", {"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert gate.calls == 2


def test_a_build_that_cannot_start_is_not_waited_for_forever():
    from concurrent.futures import ThreadPoolExecutor

    from segmint.middleware.report_page import SharedBuilds

    builds = SharedBuilds()

    async def attempt():
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(1)
        loop.set_default_executor(executor)
        executor.shutdown()  # no thread can take the build
        with pytest.raises(RuntimeError):
            await builds.get("key", lambda: 1)
        assert builds.running == 0

    asyncio.run(attempt())
    assert asyncio.run(builds.get("key", lambda: 2)) == 2  # a new loop, a working executor


def test_segment_snapshots_show_up_on_the_page(stub_runtime):
    stub_runtime.state.segments = {}
    snapshot_segments(stub_runtime, T0 + timedelta(days=20))
    response = _get(stub_runtime, "/_segmint/report", {"authorization": f"Bearer {TOKEN}"})
    assert 'class="segments"' in response.text


def test_the_middleware_serves_the_report_behind_its_token_check(mw, runtime):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from segmint.middleware import SegmintMiddleware

    async def fallback(request):
        return PlainTextResponse("app")

    app = Starlette(routes=[Route("/{path:path}", fallback)])
    app.add_middleware(SegmintMiddleware, runtime=runtime)
    now = runtime.clock()
    events = [{"type": "impression", "campaign": "promo", "variant": v, "visitor_id": f"v{i}-{v}",
               "at": (now - timedelta(days=2)).isoformat()} for i in range(3) for v in ("control", "B")]
    events.append({"type": "order", "visitor_id": "v0-B", "order_id": "o-1", "at": (now - timedelta(days=1)).isoformat(),
                   "items": [{"sku": "serum-1", "price": 30.0}]})
    auth = mw.AUTH
    with mw.TestClient(app) as client:
        assert client.post("/_segmint/events", json=events, headers=auth).status_code == 200
        assert client.get("/_segmint/report").status_code == 401
        assert client.post("/_segmint/report", headers=auth).status_code == 405
        page = client.get("/_segmint/report", headers=auth)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Campaign promo" in page.text and '<svg class="chart"' in page.text


def test_parse_report_query():
    assert parse_report_query(b"since=2026-03-01&campaign=a&window=3") == {
        "since": T0, "campaign": "a", "window_days": 3.0}
    assert parse_report_query(b"") == {}


# -- the campaign list, the lift over time, revenue ------------------------------------------------

def test_the_page_lists_campaigns_with_a_badge_and_draws_each_lift_with_its_band():
    report = _report()
    html = render_report_page(report)
    listing = html[html.index('<table class="campaigns">'):html.index("</table>", html.index('<table class="campaigns">'))]
    assert listing.count("<tr>") == 1 + 2  # the header and one row per campaign, linked to its section
    assert '<a href="#campaign-winback">winback</a>' in listing and 'id="campaign-winback"' in html
    assert '<span class="badge none">no control</span>' in listing  # solo: nothing to compare with
    winback = next(c for c in report.campaigns if c.campaign == "winback")
    chart = render_lift_chart(winback)
    assert chart.count('<polygon class="band"') == 2 and "&lt;script&gt;" in chart and "<script" not in chart
    b = next(v for v in winback.variants if v.variant == "B")
    last = b.cumulative[-1]
    assert f"{last.relative * 100:+.1f}% [{last.relative_ci[0] * 100:+.1f}%, {last.relative_ci[1] * 100:+.1f}%]" in chart
    assert 'class="zero"' in chart  # the line a band must clear to be significant
    revenue = html[html.index('<table class="revenue">'):]
    assert f"<td>{b.revenue:,.2f}</td><td>{b.revenue_per_visitor:,.2f}</td>" in revenue
    assert f"<td>{b.recommended_revenue:,.2f}</td>" in revenue


def test_the_badge_follows_the_verdict_and_a_mismatch_overrides_it():
    from dataclasses import replace

    from segmint.engine.analytics import compare_variants

    report = _report()
    winback = next(c for c in report.campaigns if c.campaign == "winback")
    solo = next(c for c in report.campaigns if c.campaign == "solo")
    assert verdict_badge(solo) == ("no control", "none")

    def with_lift(control, variant):
        lift = compare_variants(control, {"B": variant})["B"]
        b = next(v for v in winback.variants if v.variant == "B")
        return replace(winback, variants=(winback.variants[0], replace(b, lift=lift)))

    assert verdict_badge(with_lift((1000, 50_000), (1300, 50_000))) == ("significant lift", "win")
    assert verdict_badge(with_lift((1300, 50_000), (1000, 50_000))) == ("significant drop", "loss")
    assert verdict_badge(with_lift((10, 500), (12, 500))) == ("collecting data", "collecting")
    splits = {"winback": {"control": 1, "B": 1, EVIL: 2}}
    mismatched = report_from_attribution(attribute(_events()), now=T0 + timedelta(days=20), splits=splits)
    flagged = next(c for c in mismatched.campaigns if c.campaign == "winback")
    assert verdict_badge(flagged) == ("do not trust: sample ratio mismatch", "srm")


# -- signing in from a browser ------------------------------------------------------------------------

@pytest.fixture
def shop(mw, runtime):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from segmint.middleware import SegmintMiddleware

    async def fallback(request):
        return PlainTextResponse("app")

    app = Starlette(routes=[Route("/{path:path}", fallback)])
    app.add_middleware(SegmintMiddleware, runtime=runtime)
    with mw.TestClient(app) as client:
        yield client


SAME_ORIGIN = {"origin": "http://testserver"}


def _sign_in(client, token, headers=SAME_ORIGIN):
    return client.post("/_segmint/report/login", data={"token": token}, headers=headers, follow_redirects=False)


def test_a_person_signs_in_with_the_form_and_gets_a_strict_httponly_expiring_cookie(shop, mw):
    opened = shop.get("/_segmint/report")
    assert opened.status_code == 401 and opened.headers["content-type"].startswith("text/html")
    form = re.search(r'<form method="post" action="([^"]+)">', opened.text)
    assert form and form[1] == "/_segmint/report/login"
    assert 'type="password"' in opened.text and "<script" not in opened.text.lower()
    signed = _sign_in(shop, mw.TOKEN)
    assert signed.status_code == 303 and signed.headers["location"] == "/_segmint/report"
    assert mw.TOKEN not in signed.headers["location"]
    cookie = signed.headers["set-cookie"]
    value = cookie.split(";")[0].split("=", 1)[1]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= set(attributes) and "secure" not in attributes
    assert attributes["samesite"] == "SameSite=Strict" and attributes["path"] == "Path=/_segmint"
    assert attributes["max-age"] == "Max-Age=28800"  # eight hours
    assert mw.TOKEN not in value
    page = shop.get("/_segmint/report")  # the client sends the cookie back, as a browser does
    assert page.status_code == 200 and "segmint campaign report" in page.text
    assert '<form class="signout" method="post" action="/_segmint/report/logout">' in page.text
    out = shop.post("/_segmint/report/logout", headers=SAME_ORIGIN, follow_redirects=False)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    shop.cookies.clear()
    assert shop.get("/_segmint/report").status_code == 401


def test_the_session_cookie_is_secure_on_https(mw, runtime):
    from starlette.applications import Starlette

    from segmint.middleware import SegmintMiddleware

    app = Starlette()
    app.add_middleware(SegmintMiddleware, runtime=runtime)
    with mw.TestClient(app, base_url="https://shop.example") as client:
        signed = _sign_in(client, mw.TOKEN, {"origin": "https://shop.example"})
    assert signed.status_code == 303 and "; Secure" in signed.headers["set-cookie"]


def test_a_session_expires_ends_with_the_token_and_cannot_be_forged(shop, mw, runtime, monkeypatch):
    from segmint.engine.signing import session_token

    assert _sign_in(shop, mw.TOKEN).status_code == 303
    assert shop.get("/_segmint/report").status_code == 200
    real = runtime.clock
    monkeypatch.setattr(runtime, "clock", lambda: real() + timedelta(hours=8, minutes=1))
    assert shop.get("/_segmint/report").status_code == 401  # expired: the form again
    monkeypatch.setattr(runtime, "clock", real)
    assert shop.get("/_segmint/report").status_code == 200
    far = int(real().timestamp()) + 3600
    for forged in (session_token(far, "another-token"), f"{far + 10**6}.{'A' * 43}", "garbage"):
        shop.cookies.clear()
        shop.cookies.set("segmint_report", forged)
        assert shop.get("/_segmint/report").status_code == 401


def test_sign_in_refuses_other_sites_wrong_tokens_and_counts_them(shop, mw):
    for headers in ({}, {"origin": "http://evil.example"}, {"referer": "http://evil.example/x"},
                    {"origin": "null"}):
        refused = _sign_in(shop, mw.TOKEN, headers)
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert _sign_in(shop, mw.TOKEN, {"referer": "http://testserver/_segmint/report"}).status_code == 303
    shop.cookies.clear()
    huge = shop.post("/_segmint/report/login", content=b"token=" + b"x" * 5000, follow_redirects=False,
                     headers={**SAME_ORIGIN, "content-type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413  # the form's body is bounded
    wrong = _sign_in(shop, "not-the-token")
    assert wrong.status_code == 401 and "That is not the API token." in wrong.text
    assert "set-cookie" not in wrong.headers
    for _ in range(20):
        last = _sign_in(shop, "not-the-token")
    assert last.status_code == 429  # the failed-attempt limit the Bearer header has
    assert _sign_in(shop, mw.TOKEN).status_code == 429


def test_scripts_keep_the_bearer_header_and_a_wrong_one_gets_json(shop, mw):
    ok = shop.get("/_segmint/report", headers=mw.AUTH)
    assert ok.status_code == 200 and '<form class="signout"' not in ok.text  # no session: nothing to sign out of
    bad = shop.get("/_segmint/report", headers={"authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "missing or invalid bearer token"
    assert shop.get(f"/_segmint/report?token={mw.TOKEN}").status_code == 401  # never from the URL


# -- the demo's page, signed in through the form in real headless chromium --------------------------

class _DevTools:
    """A minimal Chrome DevTools Protocol client over the page's websocket (commands, events)."""

    def __init__(self, socket) -> None:
        self.socket = socket
        self.ids = 0
        self.events: list[dict] = []

    def call(self, method: str, **params):
        import json

        self.ids += 1
        self.socket.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.ids:
                assert "error" not in message, message
                return message["result"]
            self.events.append(message)

    def wait(self, event: str) -> dict:
        import json

        for i, message in enumerate(self.events):
            if message.get("method") == event:
                return self.events.pop(i)
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("method") == event:
                return message
            self.events.append(message)

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def load(self, action: str) -> None:
        self.events.clear()
        self.evaluate(action)
        self.wait("Page.loadEventFired")


@pytest.mark.server
def test_the_demo_report_signs_in_and_shows_its_tests_in_headless_chromium(browser, tmp_path, tmp_path_factory):
    """The demo's seeded report in a real browser: the form signs in (the cookie is HttpOnly,
    SameSite=Strict, invisible to scripts), the cart test shows a significant lift with its
    band, the new-arrivals test is collecting data. SEGMINT_WRITE_SCREENSHOTS=DIR keeps the
    screenshots docs/analytics.md shows (``make report-screenshots``)."""
    import base64
    import json
    import threading
    import time as _time
    from pathlib import Path

    import uvicorn
    from websockets.sync.client import connect  # uvicorn[standard]'s, a dev dependency

    from segmint.engine.clock import FrozenClock
    from segmint.middleware.demo import build_demo_app, seed_demo_database

    examples = Path(__file__).resolve().parents[2] / "examples"
    config = tmp_path / "segmint.toml"
    config.write_text((examples / "segmint.toml").read_text().replace(
        'path = "catalog.json"', f"path = {json.dumps(str(examples / 'catalog.json'))}"))
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    db = tmp_path / "demo.db"
    seed_demo_database(config, db, now=now)
    app = build_demo_app(config, db_path=db, clock=FrozenClock(now), watch=False)
    token = app.runtime.config.api.token
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = _time.monotonic() + 20
    while not server.started and _time.monotonic() < deadline:
        _time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    chromium = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--remote-debugging-port=0", "--window-size=1100,1300", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in chromium.stderr:  # type: ignore[union-attr]
            if "DevTools listening on" in line:
                devtools_port = int(line.split("ws://127.0.0.1:")[1].split("/")[0])
                break
        threading.Thread(target=lambda: [None for _ in chromium.stderr], daemon=True).start()  # type: ignore[union-attr]
        targets = httpx.get(f"http://127.0.0.1:{devtools_port}/json/list").json()
        url = next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"]
        with connect(url, max_size=None, open_timeout=20) as socket:
            page = _DevTools(socket)
            page.call("Page.enable")
            page.call("Page.navigate", url=f"{base}/_segmint/report")
            page.wait("Page.loadEventFired")
            assert page.evaluate("document.querySelector('form').getAttribute('action')") == "/_segmint/report/login"
            assert page.evaluate("location.href") == f"{base}/_segmint/report"
            page.load(f"document.getElementById('token').value = {json.dumps(token)}; document.querySelector('form').submit()")
            assert page.evaluate("location.href") == f"{base}/_segmint/report"  # the token never in a URL
            assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session
            (cookie,) = [c for c in page.call("Network.getAllCookies")["cookies"] if c["name"] == "segmint_report"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/_segmint"
            assert token not in cookie["value"]
            badges = page.evaluate("[...document.querySelectorAll('table.campaigns tr')].slice(1).map("
                                   "r => [r.cells[0].textContent, r.querySelector('.badge').textContent])")
            assert badges == [["cart-bestsellers", "significant lift"], ["new-arrivals", "collecting data"]]
            bands = page.evaluate("[...document.querySelectorAll('svg.lift')].map(s => [s.dataset.campaign, "
                                  "s.querySelectorAll('polygon.band').length, s.getBoundingClientRect().width])")
            assert [(name, n) for name, n, _ in bands] == [("cart-bestsellers", 1), ("new-arrivals", 1)]
            assert all(width > 300 for *_, width in bands)  # laid out, not collapsed
            assert page.evaluate("document.querySelector('#campaign-cart-bestsellers .srm').textContent"
                                 ).startswith("split as configured")
            shots = {"report-campaigns.png": "#campaign-cart-bestsellers h3:nth-of-type(2)",
                     "report-collecting.png": "#campaign-new-arrivals h3:nth-of-type(3)"}
            keep = os.environ.get("SEGMINT_WRITE_SCREENSHOTS")
            for name, until in shots.items():
                top = 0 if name == "report-campaigns.png" else page.evaluate(
                    "document.querySelector('#campaign-new-arrivals').getBoundingClientRect().top + scrollY")
                bottom = page.evaluate(f"document.querySelector({json.dumps(until)}).getBoundingClientRect().top + scrollY")
                shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                 clip={"x": 0, "y": top, "width": 1100, "height": bottom - top, "scale": 1})
                data = base64.b64decode(shot["data"])
                assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
                if keep:
                    (Path(keep) / name).write_bytes(data)
            page.load("document.querySelector('form.signout').submit()")
            assert page.evaluate("document.querySelector('form').getAttribute('action')") == "/_segmint/report/login"
    finally:
        chromium.terminate()
        chromium.wait(20)
        chromium.stderr.close()  # type: ignore[union-attr]
        server.should_exit = True
        thread.join(10)
        app.close()


# -- revenue lifts, the guardrail, health, the engine (issue #20) ---------------------------------

def _buyers(events, rng, n, variant, share, price, history=0.0):
    """``n`` visitors of campaign "c" in ``variant``; ``share`` of them buy one order of about
    ``price``. With ``history``, half of them bought before their exposure and buy again more
    often and for more (a pre-period CUPED can use)."""
    for i in range(n):
        visitor, spent = f"{variant}-{i}", 0.0
        if history and rng.random() < 0.5:
            spent = round(history * rng.uniform(0.2, 2.0), 2)
            events.append(Order(order_id=f"h-{visitor}", visitor_id=visitor, at=T0,
                                items=[OrderItem(sku="h", price=spent)]))
        events.append(Impression(campaign="c", variant=variant, visitor_id=visitor, at=T0 + timedelta(days=1)))
        if rng.random() < (share * 1.5 if spent else share * 0.5 if history else share):
            events.append(Order(order_id=f"o-{visitor}", visitor_id=visitor, at=T0 + timedelta(days=2),
                                items=[OrderItem(sku="s", price=round(price * rng.uniform(0.8, 1.2) + spent, 2))]))
    return events


def _build(events, **options):
    return report_from_attribution(attribute(sorted(events, key=lambda e: e.at)), now=T0 + timedelta(days=9),
                                   **options)


def _between(html, start, end="</table>"):
    at = html.index(start)
    return html[at:html.index(end, at)]


def test_a_variant_that_converts_more_but_earns_less_per_visitor_reads_red_not_as_a_win():
    rng = random.Random(5)
    events = _buyers([], rng, 4000, "control", 0.05, 100.0)
    report = _build(_buyers(events, rng, 4000, EVIL, 0.07, 40.0))  # sells more often, much cheaper
    (campaign,) = report.campaigns
    cheap = campaign.variants[1]
    assert cheap.lift.significant and cheap.lift.relative > 0 and cheap.revenue_guardrail
    html = render_report_page(report)
    assert "<script" not in html.lower()
    assert verdict_badge(campaign) == ("conversion up, revenue per visitor down (guardrail)", "guardrail")
    listing = _between(html, '<table class="campaigns">')
    assert '<span class="badge guardrail">conversion up, revenue per visitor down (guardrail)</span>' in listing
    assert "significant lift" not in html
    (line,) = re.findall(r'<p class="guardrail">([^<]*)</p>', html)
    assert line == (f"Guardrail: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; lowers revenue per visitor by "
                    f"{-cheap.revenue_lift.relative * 100:.1f}%, significantly, although its conversion rises: "
                    "not a win.")
    revenue = _between(html, '<table class="revenue">')
    assert "<th>per visitor lift (interval)</th>" in revenue and "<th>avg order lift (interval)</th>" in revenue
    rpv, aov = cheap.revenue_lift, cheap.aov_lift
    for lift in (rpv, aov):
        low, high = lift.relative_ci
        assert (f'<span class="drop">{lift.relative * 100:+.1f}% [{low * 100:+.1f}%, {high * 100:+.1f}%] '
                f"({lift.confidence * 100:.3g}%)</span>") in revenue
    assert revenue.count("<tr class=guardrail>") == 1 and revenue.count("<tr class=control>") == 1
    variants = _between(html, '<table class="variants">')
    assert '<tr class="guardrail">' in variants and '<span class="guardrail-text">' in variants


def test_a_variant_that_earns_more_per_visitor_shows_its_revenue_lift_without_a_guardrail():
    rng = random.Random(6)
    events = _buyers([], rng, 3000, "control", 0.05, 50.0)
    report = _build(_buyers(events, rng, 3000, "B", 0.05, 80.0))
    b = report.campaigns[0].variants[1]
    assert b.revenue_lift.significant and b.revenue_lift.relative > 0 and not b.revenue_guardrail
    html = render_report_page(report)
    assert 'class="guardrail"' not in html and "badge guardrail" not in html
    low, high = b.revenue_lift.relative_ci
    assert f'<span class="sig">{b.revenue_lift.relative * 100:+.1f}% [{low * 100:+.1f}%, {high * 100:+.1f}%]' in html


def test_people_in_several_arms_are_a_health_line_next_to_the_sample_ratio_check():
    html = render_report_page(report_from_attribution(attribute(_events()), now=T0 + timedelta(days=20),
                                                      splits={"winback": {"control": 1, "B": 1, EVIL: 1}}))
    section = html[html.index('id="campaign-winback"'):]
    assert re.search(r'<p class="srm meta">[^<]*</p><p class="multiarm meta">No one saw more than one variant.</p>',
                     section)
    events = [Impression(campaign="c", variant=v, visitor_id=f"{v}{i}", at=T0 + timedelta(hours=i))
              for i in range(40) for v in ("control", "B")]
    events += [Identify(visitor_id=f"B{i}", customer_id=f"c{i}", at=T0 + timedelta(days=3)) for i in (1, 2)]
    events += [Identify(visitor_id=f"control{i}", customer_id=f"c{i}", at=T0 + timedelta(days=3)) for i in (1, 2)]
    report = _build(events)
    assert report.campaigns[0].multi_arm_visitors == 2
    (warning,) = re.findall(r'<p class="multiarm warning">([^<]*)</p>', render_report_page(report))
    assert warning.startswith("2 people (2.5% of the visitors) saw more than one variant")


def test_the_bayesian_engine_shows_chance_to_beat_control_and_expected_loss_instead_of_p_values():
    rng = random.Random(7)
    events = _buyers([], rng, 3000, "control", 0.05, 50.0)
    events = _buyers(events, rng, 3000, EVIL, 0.09, 50.0)
    frequentist = render_report_page(_build(events))
    assert "<th>p-value</th>" in _between(frequentist, '<table class="variants">')
    assert "chance to beat control" not in frequentist
    assert "Engine: frequentist, sequential" in frequentist
    report = _build(events, analysis=AnalyticsConfig(engine="bayesian"))
    html = render_report_page(report)
    assert "<script" not in html.lower()
    table = _between(html, '<table class="variants">')
    assert "<th>chance to beat control</th><th>expected loss</th>" in table and "p-value" not in table
    lift = report.campaigns[0].variants[1].lift
    assert f"<td>{lift.chance_to_win * 100:.1f}%</td><td>{lift.expected_loss * 100:.2f}%</td>" in table
    assert '<p class="meta engine">Engine: Bayesian: chance to beat control and expected loss' in html
    assert verdict_badge(report.campaigns[0]) == ("beats control", "win") and lift.chance_to_win > 0.975


def test_the_engine_line_says_whether_cuped_applied():
    rng = random.Random(8)
    events = _buyers([], rng, 1000, "control", 0.3, 50.0, history=60.0)
    events = _buyers(events, rng, 1000, "B", 0.3, 55.0, history=60.0)
    assert "CUPED: applied to 2 of 2 conversion and revenue-per-visitor lifts." in render_report_page(_build(events))
    assert "CUPED: off." in render_report_page(_build(events, analysis=AnalyticsConfig(cuped=False)))
    assert ("CUPED: on, but not applied (no orders before exposure in the period read)."
            in render_report_page(_report()))
