"""Plugins loaded from the config: what they add, and how their failures are named and contained."""

import logging
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from segmint.engine import get_plugin_manager, hookimpl
from segmint.engine.clock import FrozenClock
from segmint.engine.config import load_compiled, load_config
from segmint.engine.errors import ConfigError, PluginError
from segmint.engine.runtime import Segmint

FIXTURES = Path(__file__).resolve().parents[1] / "fixture_plugins"
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def fixture_plugins_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))


def write(tmp_path, text, plugins=()):
    path = tmp_path / "segmint.toml"
    listed = ", ".join(f'"{p}"' for p in plugins)
    path.write_text(f'plugins = [{listed}]\n[store]\npath = ":memory:"\n[catalog]\npath = "{CATALOG.as_posix()}"\n'
                    + textwrap.dedent(text))
    return path


CAMPAIGNS = """
[segments.churning]
filter = { "extra.churn_score" = { "$risk_band" = [0.5, 1.0] } }

[[campaigns]]
id = "cheap-winback"
segment = "churning"
slots = ["home"]
strategy = "cheapest"
params = { limit = 3, under = 20 }
priority = 1

[[campaigns]]
id = "everyone"
slots = ["home"]
strategy = "new_arrivals"
params = { limit = 2 }
"""


def order(customer, days_ago, sku="FA-OUT-001", price=420.0):
    return {"type": "order", "customer_id": customer, "order_id": f"{customer}-{days_ago}",
            "at": (NOW - timedelta(days=days_ago)).isoformat(),
            "items": [{"sku": sku, "category": "outerwear", "quantity": 1, "price": price}]}


def test_plugin_from_config_adds_strategy_operator_field_and_enrichment(tmp_path):
    path = write(tmp_path, CAMPAIGNS, plugins=["segmint_fixture_sample"])
    state = load_compiled(path)
    assert "cheapest" in state.strategies
    assert state.fields.lookup("extra.churn_score") is not None
    with Segmint.from_config(path, clock=FrozenClock(NOW), watch=False) as rt:
        rt.record([order("lapsed", 80), order("recent", 5)])
        lapsed, recent = rt.profile(customer_id="lapsed"), rt.profile(customer_id="recent")
        assert rt.document(lapsed)["extra"]["churn_score"] == pytest.approx(0.8)
        slot = rt.decide(lapsed, ["home"]).slots["home"]
        assert slot.campaign == "cheap-winback"
        prices = [p.price for p in slot.products]
        assert prices == sorted(prices) and all(p < 20 for p in prices) and len(prices) == 3
        assert rt.decide(recent, ["home"]).slots["home"].campaign == "everyone"


def test_without_the_plugin_its_field_operator_and_strategy_are_config_errors(tmp_path):
    path = write(tmp_path, CAMPAIGNS)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    paths = [p.path for p in info.value.problems]
    assert any(p.startswith("$.segments.churning.filter") for p in paths)
    assert "$.campaigns[0].strategy" in paths


def test_misspelled_hook_fails_loudly_naming_the_plugin(tmp_path):
    path = write(tmp_path, "", plugins=["segmint_fixture_typo"])
    with pytest.raises(PluginError) as info:
        load_config(path)
    assert info.value.plugin == "segmint_fixture_typo"
    assert "segmint_register_strategy" in str(info.value)


def test_operator_clashing_with_a_builtin_names_the_plugin(tmp_path):
    path = write(tmp_path, "", plugins=["segmint_fixture_operator_clash"])
    with pytest.raises(PluginError) as info:
        load_config(path)
    assert info.value.plugin == "segmint_fixture_operator_clash"
    assert "$gte" in str(info.value)


def test_plugin_raising_on_the_request_path_is_named_and_the_decision_still_returns(tmp_path, caplog):
    path = write(tmp_path, """
        [[campaigns]]
        id = "everyone"
        slots = ["home"]
        filter = { "orders.count" = { "$gte" = 0 } }  # reads the document: enrichers run
        strategy = "new_arrivals"
        params = { limit = 2 }
    """, plugins=["segmint_fixture_broken"])
    with caplog.at_level(logging.ERROR), Segmint.from_config(path, clock=FrozenClock(NOW), watch=False) as rt:
        rt.record([order("c1", 3)])
        profile = rt.profile(customer_id="c1")
        decision = rt.decide(profile, ["home"])
        slot = decision.slots["home"]
        assert slot.campaign == "everyone" and len(slot.products) == 2
        html = rt.render(slot)  # the broken renderer is skipped; the built-in one answers
        assert 'data-segmint-campaign="everyone"' in html
    for hook, words in [("segmint_enrich_document", "enrich exploded"),
                        ("segmint_decision_made", "observer exploded"),
                        ("segmint_render_widget", "renderer exploded"),
                        ("segmint_events_recorded", "sink exploded")]:
        assert f"plugin 'segmint_fixture_broken' in {hook}: RuntimeError: {words}" in caplog.text


def test_user_strategy_wins_over_a_builtin_of_the_same_name(tmp_path):
    class MyBestsellers:
        name = "bestsellers"
        from segmint.engine.strategy import StrategyParams as Params

        def recommend(self, ctx, params):
            return [ctx.catalog.get("FA-ACC-005")]

    class UserPlugin:
        @hookimpl
        def segmint_register_strategies(self):
            return [MyBestsellers()]

    path = write(tmp_path, """
        [[campaigns]]
        id = "best"
        slots = ["home"]
        strategy = "bestsellers"
    """)
    with Segmint.from_config(path, clock=FrozenClock(NOW), extra_plugins=[UserPlugin()], watch=False) as rt:
        slot = rt.decide(rt.profile(visitor_id="v"), ["home"]).slots["home"]
        assert [p.sku for p in slot.products] == ["FA-ACC-005"]


def test_a_registered_non_strategy_is_refused_naming_the_plugin(tmp_path):
    class Bad:
        @hookimpl
        def segmint_register_strategies(self):
            return [object()]

    pm = get_plugin_manager(extra_plugins=[Bad()])
    path = write(tmp_path, "")
    with pytest.raises(PluginError, match="not a strategy"):
        load_compiled(path, pm=pm)


def test_observers_see_decisions_and_recorded_events(tmp_path):
    class Sink:
        def __init__(self):
            self.decisions, self.events = [], []

        @hookimpl
        def segmint_decision_made(self, decision, profile):
            self.decisions.append((decision, profile.key))

        @hookimpl
        def segmint_events_recorded(self, events, result):
            self.events.append((len(events), result.stored))

    sink = Sink()
    path = write(tmp_path, """
        [[campaigns]]
        id = "everyone"
        slots = ["home"]
        strategy = "new_arrivals"
    """)
    with Segmint.from_config(path, clock=FrozenClock(NOW), extra_plugins=[sink], watch=False) as rt:
        rt.record([order("c1", 3), order("c2", 4)])
        rt.track([{"type": "page_view", "visitor_id": "v1", "path": "/"}])
        rt.writer.flush(5)
        rt.decide(rt.profile(customer_id="c1"), ["home"])
        rt.explain(rt.profile(customer_id="c1"))  # explain is not a real decision: not observed
    assert sink.events == [(2, 2), (1, 1)]
    assert [(d.slots["home"].campaign, key) for d, key in sink.decisions] == [("everyone", "c:c1")]


def test_segmint_filter_operators_results_compile_into_filters():
    import segmint_fixture_sample

    pm = get_plugin_manager(extra_plugins=[segmint_fixture_sample])
    operators = {}
    for batch in pm.hook.segmint_filter_operators():
        operators.update(batch or {})
    assert set(operators) == {"$risk_band"}
    from segmint.engine import compile_filter

    f = compile_filter({"extra.churn_score": {"$risk_band": [0.5, 1.0]}}, operators=operators)
    assert f.matches({"extra": {"churn_score": 0.7}})
    assert not f.matches({"extra": {"churn_score": 0.2}})
    assert f.matches({"extra": {"churn_score": [0.1, 0.9]}})  # any element of an array
