"""The built-in strategies as real pluggy plugins: registration, user override, defaults."""

import msgspec
import pytest

from segmint.engine.hooks import get_plugin_manager, hookimpl
from segmint.engine.strategy import Strategy, StrategyParams, validate_params
from segmint.plugins import DEFAULT_PLUGINS

STRATEGY_MODULES = tuple(m for m in DEFAULT_PLUGINS if ".strategy_" in m)
NAMES = ["bestsellers", "new_arrivals", "recently_viewed", "viewed_based", "markdowns", "bundles",
         "user_based", "manual", "cart_reminder", "new_vs_returning", "discount_affinity"]


def registered(pm):
    return [s for result in pm.hook.segmint_register_strategies() for s in result]


def test_all_built_in_strategies_register():
    pm = get_plugin_manager(builtins=STRATEGY_MODULES, load_entrypoints=False)
    strategies = registered(pm)
    assert sorted(s.name for s in strategies) == sorted(NAMES)
    assert all(isinstance(s, Strategy) and issubclass(s.Params, StrategyParams) for s in strategies)


def test_built_ins_are_trylast():
    pm = get_plugin_manager(builtins=STRATEGY_MODULES, load_entrypoints=False)
    for impl in pm.hook.segmint_register_strategies.get_hookimpls():
        assert impl.trylast, impl.plugin_name


class MyBestsellers:
    name = "bestsellers"
    Params = StrategyParams

    def recommend(self, ctx, params):
        return []


class UserPlugin:
    @hookimpl
    def segmint_register_strategies(self):
        return [MyBestsellers()]


def test_a_user_plugin_registering_a_built_in_name_comes_first():
    pm = get_plugin_manager([UserPlugin()], builtins=STRATEGY_MODULES, load_entrypoints=False)
    strategies = registered(pm)
    assert isinstance(strategies[0], MyBestsellers)
    first_wins = {}
    for strategy in strategies:
        first_wins.setdefault(strategy.name, strategy)
    assert isinstance(first_wins["bestsellers"], MyBestsellers)
    assert len(first_wins) == len(NAMES)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "manual"])
def test_every_strategy_works_with_default_params(name):
    pm = get_plugin_manager(builtins=STRATEGY_MODULES, load_entrypoints=False)
    strategies = {s.name: s for s in registered(pm)}
    params = validate_params(strategies[name], {}, strategies=strategies)
    assert params.limit >= 1
    # Every Params struct publishes a JSON schema (for the config schema).
    assert msgspec.json.schema(strategies[name].Params)["$ref"]
