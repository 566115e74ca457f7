"""engine/hooks: the one way to call a hook plugin by plugin (wrappers honoured, failures
named), the built-ins found through segmint's own entry points, and where each hook runs."""

from __future__ import annotations

import ast
import inspect
import logging
from pathlib import Path

import pytest

import segmint.engine.hookspecs
from segmint.engine import hooks
from segmint.engine.errors import PluginError
from segmint.engine.failure_log import FailureLog
from segmint.engine.hooks import (
    DECISION_HOOKS, HOOK_RUNS, IDENTIFY_HOOKS, LOOP_SAFE_MARK, blocking_plugins, call_each, first_result,
    get_plugin_manager, hook_results, hookimpl, plugin_callers,
)
from segmint.engine.identity import Identity
from segmint.engine.runtime import Segmint
from segmint.plugins import DEFAULT_PLUGINS

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.json"
RENDERER = "segmint.plugins.render_html"


class Tracer:
    """A user's new-style hook wrapper around three hooks; records what it wrapped."""

    def __init__(self):
        self.seen: list[tuple[str, str, object]] = []

    @hookimpl(wrapper=True)
    def segmint_decision_made(self, decision, profile):
        self.seen.append(("decision_made", decision, "before"))
        try:
            return (yield)
        except Exception as exc:
            self.seen.append(("decision_made", decision, type(exc).__name__))
            raise

    @hookimpl(wrapper=True)
    def segmint_render_widget(self, slot_decision, config):
        html = yield
        self.seen.append(("render_widget", slot_decision, html))
        return html

    @hookimpl(wrapper=True)
    def segmint_register_strategies(self):
        self.seen.append(("register_strategies", None, "before"))
        return (yield)


class Observer:
    def __init__(self, fail=False):
        self.fail, self.calls = fail, 0

    @hookimpl
    def segmint_decision_made(self, decision, profile):
        self.calls += 1
        if self.fail:
            raise RuntimeError("observer exploded")


class Renderer:
    def __init__(self, answer=None, fail=False):
        self.answer, self.fail = answer, fail

    @hookimpl
    def segmint_render_widget(self, slot_decision, config):
        if self.fail:
            raise ValueError("renderer exploded")
        return self.answer


def manager(*plugins, builtins=()):
    pm = get_plugin_manager(load_entrypoints=False, builtins=builtins)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm


def test_a_wrapper_wraps_each_contained_call_and_a_raising_plugin_is_still_named(caplog):
    tracer = Tracer()
    good, bad = Observer(), Observer(fail=True)
    pm = manager(("good", good), ("bad", bad), ("tracer", tracer))
    with caplog.at_level(logging.ERROR, logger="segmint.plugins"):
        failures = call_each(pm, "segmint_decision_made", decision="d1", profile="p")
    assert good.calls == bad.calls == 1
    assert [(f.plugin, f.hook) for f in failures] == [("bad", "segmint_decision_made")]
    assert "plugin 'bad' in segmint_decision_made: RuntimeError: observer exploded" in caplog.text
    # one wrapped call per plugin, "bad" (registered last) first: the wrapper saw its error
    assert tracer.seen == [("decision_made", "d1", "before"), ("decision_made", "d1", "RuntimeError"),
                           ("decision_made", "d1", "before")]


def test_first_result_wraps_each_call_skips_a_raising_plugin_and_lets_the_user_win(caplog):
    tracer = Tracer()
    pm = manager(("fallback", Renderer("<b>built-in</b>")), ("user", Renderer("<i>mine</i>")),
                 ("broken", Renderer(fail=True)), ("tracer", tracer))
    failure_log = FailureLog()
    with caplog.at_level(logging.ERROR, logger="segmint.plugins"):
        html = first_result(pm, "segmint_render_widget", contain=True, failure_log=failure_log,
                            slot_decision="slot", config=None)
    assert html == "<i>mine</i>"  # the last registered answers first; "broken" was skipped
    assert tracer.seen == [("render_widget", "slot", "<i>mine</i>")]  # the raise skipped the wrapper's after-part
    assert "plugin 'broken' in segmint_render_widget: ValueError: renderer exploded" in caplog.text
    with pytest.raises(PluginError) as info:
        first_result(pm, "segmint_render_widget", slot_decision="slot", config=None)
    assert (info.value.plugin, info.value.hook) == ("broken", "segmint_render_widget")


def test_registration_hooks_run_inside_wrappers_and_name_a_raising_plugin():
    class Strategies:
        @hookimpl
        def segmint_register_strategies(self):
            raise KeyError("boom")

    tracer = Tracer()
    pm = get_plugin_manager([tracer], load_entrypoints=False,
                            builtins=[m for m in DEFAULT_PLUGINS if ".strategy_" in m])
    results = list(hook_results(pm, "segmint_register_strategies"))
    assert len(results) == 11 and tracer.seen.count(("register_strategies", None, "before")) == 11
    pm.register(Strategies(), name="strategies")
    with pytest.raises(PluginError) as info:
        list(hook_results(pm, "segmint_register_strategies"))
    assert (info.value.plugin, info.value.hook) == ("strategies", "segmint_register_strategies")


def test_callers_are_kept_per_hook_until_a_plugin_is_registered():
    pm = manager()
    assert plugin_callers(pm, "segmint_decision_made") == ()
    assert call_each(pm, "segmint_decision_made", decision="d", profile="p") == []
    assert plugin_callers(pm, "segmint_decision_made") is plugin_callers(pm, "segmint_decision_made")
    late = Observer()
    pm.register(late, name="late")
    call_each(pm, "segmint_decision_made", decision="d", profile="p")
    assert late.calls == 1
    pm.unregister(name="late")
    call_each(pm, "segmint_decision_made", decision="d", profile="p")
    assert late.calls == 1


def test_the_built_ins_come_from_segmints_own_entry_points():
    assert hooks.builtin_plugins() == DEFAULT_PLUGINS
    pm = get_plugin_manager(load_entrypoints=False)
    assert pm.builtins == frozenset(DEFAULT_PLUGINS)
    assert [name for name, _ in pm.list_name_plugin()] == list(DEFAULT_PLUGINS)
    picked = get_plugin_manager(load_entrypoints=False, builtins=[RENDERER])
    assert [name for name, _ in picked.list_name_plugin()] == [RENDERER] and picked.builtins == {RENDERER}


def test_the_engine_names_no_plugin_module():
    engine = Path(hooks.__file__).resolve().parents[1]
    for path in engine.rglob("*.py"):
        strings = {node.value for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        assert not strings & set(DEFAULT_PLUGINS), path


def test_old_import_paths_keep_working():
    assert segmint.engine.hookspecs.hookimpl is hookimpl
    assert segmint.engine.hookimpl is hookimpl


def test_every_hook_says_where_it_runs():
    specs = {name for name, _ in inspect.getmembers(hooks.specs, inspect.isfunction) if name.startswith("segmint_")}
    assert set(HOOK_RUNS) == specs
    assert set(DECISION_HOOKS) == {"segmint_register_strategies", "segmint_filter_operators",
                                   "segmint_enrich_document", "segmint_render_widget", "segmint_decision_made"}
    assert IDENTIFY_HOOKS == ("segmint_identify_visitor",)


class Identifier:
    def __init__(self, loop_safe):
        setattr(self, LOOP_SAFE_MARK, loop_safe)

    @hookimpl
    def segmint_identify_visitor(self, scope, config):
        return Identity(customer_id="c1")


def test_blocking_plugins_covers_identify():
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Identifier(loop_safe=False), name="gateway")
    assert blocking_plugins(pm, IDENTIFY_HOOKS) == ["gateway"]
    assert blocking_plugins(pm) == []  # identify is not a decision hook
    assert blocking_plugins(get_plugin_manager([Identifier(loop_safe=True)], load_entrypoints=False),
                            IDENTIFY_HOOKS) == []
    assert blocking_plugins(get_plugin_manager(load_entrypoints=False), IDENTIFY_HOOKS) == []


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "segmint.toml"
    path.write_text(f'[store]\npath = ":memory:"\n[catalog]\npath = "{CATALOG.as_posix()}"\n')
    return path


@pytest.mark.parametrize(("plugins", "expected"), [
    ((), True),                                 # the built-in identify plugin
    ((Identifier(loop_safe=True),), True),      # marked segmint_loop_safe
    ((Identifier(loop_safe=False),), False),    # may block: identify in the worker pool
])
def test_identifies_on_loop(config_path, plugins, expected):
    with Segmint.from_config(config_path, extra_plugins=plugins, watch=False) as rt:
        assert rt.identifies_on_loop is expected
        assert rt.decides_on_loop is True  # identify does not send decisions to the pool


def test_an_identify_plugin_registered_after_startup_is_noticed(config_path):
    with Segmint.from_config(config_path, watch=False) as rt:
        assert rt.identifies_on_loop is True
        late = Identifier(loop_safe=False)
        rt.pm.register(late, name="late")
        assert rt.identifies_on_loop is False
        rt.pm.unregister(late)
        assert rt.identifies_on_loop is True


def test_a_hot_reload_works_out_loop_safety_for_the_new_plugins(config_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "fixture_plugins"))
    base = config_path.read_text()
    with Segmint.from_config(config_path, watch=False) as rt:
        assert rt.decides_on_loop is True
        # A third-party strategy plugin (not marked loop-safe) named by the edited config.
        config_path.write_text('plugins = ["segmint_fixture_sample"]\n' + base)
        assert rt.reload_if_changed()
        assert rt.decides_on_loop is False and rt.identifies_on_loop is True
        config_path.write_text(base + "# the plugin taken out again\n")
        assert rt.reload_if_changed()
        assert rt.decides_on_loop is True
        # An edit that keeps the plugins keeps their manager: still told once per change.
        kept = rt.state.pm
        config_path.write_text(base)
        assert rt.reload_if_changed() and rt.state.pm is kept
        assert kept.on_change.count(rt._check_loop_safety) == 1
