"""Plugins that raise, hang or return garbage; a catalog that lost a product; a broken reload.

Pages keep being served: a failing strategy costs its campaign (the next one answers), a hang
costs the widget (the page goes out unchanged within the time budget, counted and logged
once), garbage from the renderer leaves the page unchanged. When the fault goes away the next
request is personalized again, with no restart.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from segmint.engine.failure_log import FailureLog
from segmint.engine.hooks import hookimpl
from segmint.engine.signing import new_visitor_id
from segmint.engine.strategy import StrategyParams

VIP = 'data-segmint-campaign="vip"'
DEFAULT = 'data-segmint-campaign="default"'


class FlakyParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    pass


class Flaky:
    """A third-party strategy whose behaviour the test switches: ok, raise, hang, garbage."""

    name = "flaky"
    Params = FlakyParams

    def __init__(self) -> None:
        self.mode = "ok"
        self.release = threading.Event()

    def recommend(self, ctx: Any, params: Any) -> Any:
        if self.mode == "raise":
            raise ConnectionError("recommendation service unreachable")
        if self.mode == "hang":
            self.release.wait(10)  # real blocking, bounded; released by the test
        if self.mode == "garbage":
            return ["tv-1", 42, None]
        return [ctx.catalog.get("tv-1")]


class FlakyPlugin:
    def __init__(self) -> None:
        self.strategy = Flaky()

    @hookimpl
    def segmint_register_strategies(self) -> list[Flaky]:
        return [self.strategy]


def vip_setup(rel: Any, **options: Any) -> tuple[Any, Flaky, dict[str, str]]:
    plugin = FlakyPlugin()
    runtime = rel.runtime(extra_plugins=(plugin,), vip_strategy="flaky", vip_params="{ exclude_purchased = false }",
                          **options)
    visitor = new_visitor_id()
    runtime.record([dict(rel.order("vip-order", "x"), customer_id=None, visitor_id=visitor)])
    return runtime, plugin.strategy, rel.visitor_cookie(visitor)


def test_a_strategy_that_raises_or_returns_garbage_costs_its_campaign_not_the_page(rel: Any, caplog: Any):
    runtime, strategy, page = vip_setup(rel)
    with rel.client(runtime) as client, caplog.at_level(logging.ERROR):
        assert VIP in client.get("/", headers=page).text
        for mode in ("raise", "garbage"):
            strategy.mode = mode
            responses = [client.get("/", headers=page) for _ in range(3)]
            assert all(r.status_code == 200 and DEFAULT in r.text and VIP not in r.text for r in responses)
        strategy.mode = "ok"
        assert VIP in client.get("/", headers=page).text
        health = client.get("/_segmint/health", headers=rel.AUTH).json()
    # Logged once per kind of failure (not once per request), naming the plugin; all counted.
    errors = [r.getMessage() for r in caplog.records if "campaign vip skipped" in r.getMessage()]
    assert len(errors) == 2 and all("strategy flaky" in e for e in errors)
    assert "ConnectionError: recommendation service unreachable" in errors[0]
    assert "not a Product" in errors[1]
    assert health["plugin_failures"] == {"strategy flaky in recommend (ConnectionError)": 3,
                                         "strategy flaky in recommend (PluginError)": 3}


def test_an_enricher_that_raises_on_every_page_is_logged_once_and_counted(rel: Any, caplog: Any):
    class BrokenEnricher:
        @hookimpl
        def segmint_enrich_document(self, profile: Any, document: Any, now: Any) -> None:
            raise KeyError("loyalty_tier")

    runtime = rel.runtime()
    runtime.pm.register(BrokenEnricher(), name="loyalty")
    with rel.client(runtime) as client, caplog.at_level(logging.ERROR, logger="segmint.plugins"):
        pages = [client.get("/").text for _ in range(5)]
        health = client.get("/_segmint/health", headers=rel.AUTH).json()
    assert all(DEFAULT in page for page in pages)  # decided without the enrichment
    assert [r.getMessage() for r in caplog.records] == ["plugin 'loyalty' in segmint_enrich_document: KeyError: 'loyalty_tier'"]
    assert health["plugin_failures"] == {"loyalty in segmint_enrich_document (KeyError)": 5}


def test_failure_log_rate_limits_per_key_and_counts_everything(caplog: Any):
    now = [0.0]
    failures = FailureLog(interval=60, timer=lambda: now[0])
    logger = logging.getLogger("segmint.test")
    with caplog.at_level(logging.ERROR, logger="segmint.test"):
        assert failures.report(logger, "a", "first") is True
        assert failures.report(logger, "a", "again") is False
        assert failures.report(logger, "b", "other key") is True
        now[0] = 61
        assert failures.report(logger, "a", "later") is True
    assert [r.getMessage() for r in caplog.records] == ["first", "other key", "later (1 more since last logged)"]
    assert failures.counts() == {"a": 3, "b": 1}


def test_a_hanging_strategy_costs_the_widget_within_the_budget_then_recovers(rel: Any, caplog: Any):
    runtime, strategy, page = vip_setup(rel, budget=100)
    strategy.mode = "hang"
    try:
        with rel.client(runtime) as client, caplog.at_level(logging.WARNING, logger="segmint.middleware"):
            responses = [client.get("/", headers=page) for _ in range(3)]
            health = client.get("/_segmint/health", headers=rel.AUTH).json()["counters"]
            strategy.mode = "ok"
            strategy.release.set()
            assert rel.wait_until(lambda: VIP in client.get("/", headers=page).text)
    finally:
        strategy.release.set()
    assert all(r.status_code == 200 and r.text == rel.PAGE for r in responses)  # unchanged
    assert health["failure.budget"] == 3
    assert len([r for r in caplog.records if "failed open (budget)" in r.getMessage()]) == 1


def test_a_renderer_returning_garbage_leaves_the_page_unchanged_then_recovers(rel: Any, caplog: Any):
    class GarbageRenderer:
        @hookimpl
        def segmint_render_widget(self, slot_decision: Any, config: Any) -> Any:
            return 12345

    runtime = rel.runtime()
    garbage = GarbageRenderer()
    runtime.pm.register(garbage)
    with rel.client(runtime) as client, caplog.at_level(logging.WARNING, logger="segmint.middleware"):
        client.get("/")  # get a cookie
        responses = [client.get("/") for _ in range(3)]
        failures = client.app.counters.get("failures")
        # The fix: the plugin goes away and the config is reloaded (which drops rendered widgets).
        runtime.pm.unregister(garbage)
        config = rel.tmp_path / "segmint.toml"
        config.write_text(config.read_text().replace("Popular now", "Popular today"))
        bump(config)
        assert runtime.reload_if_changed()
        recovered = client.get("/").text
    assert all(r.status_code == 200 and r.text == rel.PAGE for r in responses)
    assert failures >= 3
    assert len([r for r in caplog.records if "failed open" in r.getMessage()]) == 1
    assert DEFAULT in recovered


def test_products_missing_from_the_catalog_are_skipped(rel: Any):
    runtime = rel.runtime(vip_strategy="recently_viewed", vip_params="{}")
    visitor = new_visitor_id()
    runtime.record([dict(rel.order("vip-order", "x"), customer_id=None, visitor_id=visitor),
                    {"type": "product_view", "visitor_id": visitor, "sku": "p-4"},
                    {"type": "product_view", "visitor_id": visitor, "sku": "gone-forever"}])
    with rel.client(runtime) as client:
        body = client.get("/", headers=rel.visitor_cookie(visitor)).text
        assert VIP in body and 'data-segmint-sku="p-4"' in body and "gone-forever" not in body
        # The catalog loses p-4 too (hot reload): the VIP campaign has nothing left, the next answers.
        catalog = rel.tmp_path / "catalog.json"
        catalog.write_text(json.dumps([p for p in json.loads(catalog.read_text()) if p["sku"] != "p-4"]))
        bump(catalog)
        assert runtime.reload_if_changed()
        body = client.get("/", headers=rel.visitor_cookie(visitor)).text
    assert DEFAULT in body and "p-4" not in body.split("data-segmint-slot")[1].split("</section>")[0]


def bump(path: Path) -> None:
    stamp = time.time_ns() + 10**9  # coarse file timestamps: make the change visible to polling
    os.utime(path, ns=(stamp, stamp))


def test_a_broken_config_reload_keeps_the_last_good_config_then_takes_the_fix(rel: Any, caplog: Any):
    runtime = rel.runtime()
    config = rel.tmp_path / "segmint.toml"
    good = config.read_text()
    with rel.client(runtime) as client, caplog.at_level(logging.ERROR, logger="segmint.reload"):
        config.write_text(good.replace('title = "Popular now"', 'title = "Popular now"\npriority = "high"'))
        bump(config)
        for _ in range(3):  # polled again and again while broken
            assert runtime.reload_if_changed() is False
            assert "Popular now" in client.get("/").text
        assert "$.campaigns[1].priority" in str(runtime.last_reload_error)
        health = client.get("/_segmint/health", headers=rel.AUTH).json()
        assert "$.campaigns[1].priority" in health["reload_error"]
        config.write_text(good.replace("Popular now", "Fresh picks"))
        bump(config)
        assert runtime.reload_if_changed() is True and runtime.last_reload_error is None
        assert "Fresh picks" in client.get("/").text
        assert client.get("/_segmint/health", headers=rel.AUTH).json()["reload_error"] is None
    assert len([r for r in caplog.records if "config reload failed" in r.getMessage()]) == 1
