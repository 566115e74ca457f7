from datetime import datetime, timezone

import msgspec
import pytest

from segmint.engine.catalog import Catalog, Product
from segmint.engine.errors import ConfigError, PluginError
from segmint.engine.profile import CartItem, Profile
from segmint.engine.strategy import (
    Strategy,
    StrategyContext,
    StrategyParams,
    delegate,
    run_strategy,
    validate_params,
)

NOW = datetime(2024, 6, 30, tzinfo=timezone.utc)


def product(sku, price=10.0, category="makeup", stock=None):
    return Product(sku=sku, name=sku, url=f"/p/{sku}", price=price, category=category, stock=stock)


CATALOG = Catalog([
    product("a", 10), product("b", 20, stock=0), product("c", 30, "skincare"), product("d", 40),
    product("e", 50, "skincare"), product("f", 60), product("g", 70, "fashion"),
])


class Listed:
    """A test strategy returning fixed skus (with a duplicate and an out-of-stock one)."""

    class Params(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
        skus: tuple[str, ...] = ("a", "b", "a", "c", "d")

    def __init__(self, name="listed"):
        self.name = name

    def recommend(self, ctx, params):
        return [ctx.catalog.get(s) for s in params.skus]


class Everything:
    name = "everything"
    Params = StrategyParams

    def recommend(self, ctx, params):
        return iter(ctx.catalog)


class Delegating:
    """Delegates to ``to`` (for cycle tests)."""

    class Params(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
        to: str = "everything"
        strategy_fields = ("fallback", "to")

    def __init__(self, name="delegating"):
        self.name = name

    def recommend(self, ctx, params):
        return delegate(params.to, ctx, params)


def strategies(*extra):
    found = {s.name: s for s in (Listed(), Everything(), Delegating(), *extra)}
    return found


def ctx(profile=None, exclude=(), registry=None):
    return StrategyContext(profile=profile or Profile(key="v:1"), catalog=CATALOG, now=NOW,
                           strategies=registry or strategies(), exclude=frozenset(exclude))


def skus(products):
    return [p.sku for p in products]


def test_the_test_strategies_satisfy_the_protocol():
    assert all(isinstance(s, Strategy) for s in strategies().values())


def test_out_of_stock_and_duplicates_are_dropped():
    assert skus(run_strategy("listed", ctx())) == ["a", "c", "d"]


def test_limit_categories_and_prices():
    assert skus(run_strategy("everything", ctx(), {"limit": 2})) == ["a", "c"]
    assert skus(run_strategy("everything", ctx(), {"categories": ["skincare", "fashion"]})) == ["c", "e", "g"]
    assert skus(run_strategy("everything", ctx(), {"min_price": 30, "max_price": 50})) == ["c", "d", "e"]


def test_exclusions():
    profile = Profile(key="c:1", cart=[CartItem(sku="c")])
    assert skus(run_strategy("everything", ctx(profile, exclude={"d"}))) == ["a", "e", "f", "g"]
    assert skus(run_strategy("everything", ctx(profile), {"exclude_in_cart": False, "limit": 3})) == ["a", "c", "d"]


def test_what_was_just_bought_is_left_out_unless_allowed():
    day = 86400.0
    # "a" bought 2 days ago, "d" 30 days ago (still "just"), "e" 31 days ago.
    profile = Profile(key="c:1", purchased_skus=("a", "d", "e"),
                      purchased_at=tuple(NOW.timestamp() - n * day for n in (2, 30, 31)))
    assert skus(run_strategy("everything", ctx(profile))) == ["c", "e", "f", "g"]
    assert skus(run_strategy("everything", ctx(profile), {"purchased_within_days": 60})) == ["c", "f", "g"]
    assert skus(run_strategy("everything", ctx(profile), {"purchased_within_days": 1})) == ["a", "c", "d", "e", "f", "g"]
    assert skus(run_strategy("everything", ctx(profile), {"exclude_purchased": False})) == ["a", "c", "d", "e", "f", "g"]
    # A profile stored before purchase times: its skus count as bought at its latest order.
    old = Profile(key="c:1", purchased_skus=("a", "d"), last_order_at=NOW.timestamp() - 3 * day)
    assert skus(run_strategy("everything", ctx(old), {"limit": 2})) == ["c", "e"]
    assert skus(run_strategy("everything", ctx(msgspec.structs.replace(old, last_order_at=NOW.timestamp() - 90 * day)),
                             {"limit": 2})) == ["a", "c"]


def test_fallback_fills_up_to_the_limit_without_repeats():
    got = run_strategy("listed", ctx(), {"skus": ["d", "a"], "limit": 4, "fallback": "everything"})
    assert skus(got) == ["d", "a", "c", "e"]


def test_fallback_inherits_the_common_params_that_were_set():
    got = run_strategy("listed", ctx(), {"skus": ["c"], "categories": ["skincare"], "fallback": "everything"})
    assert skus(got) == ["c", "e"]


def test_no_fallback_when_enough():
    assert skus(run_strategy("listed", ctx(), {"limit": 2, "fallback": "everything"})) == ["a", "c"]


def test_params_may_be_a_struct():
    params = validate_params(Listed(), {"skus": ["g", "a"]})
    assert skus(run_strategy("listed", ctx(), params)) == ["g", "a"]


def test_unknown_strategy_suggests():
    with pytest.raises(ConfigError) as info:
        run_strategy("everythin", ctx())
    assert info.value.suggestion == "everything"


def test_fallback_to_itself_is_a_cycle():
    with pytest.raises(ConfigError, match="strategy cycle: listed -> listed") as info:
        validate_params(Listed(), {"fallback": "listed"}, strategies=strategies())
    assert info.value.path == "$.fallback"
    with pytest.raises(ConfigError, match="cycle"):
        run_strategy("listed", ctx(), {"skus": [], "fallback": "listed"})


def test_delegation_cycles_are_caught_statically_and_at_run_time():
    registry = strategies(Delegating("ping"))
    # "delegating" -> "ping" -> (ping's default) "everything": fine.
    validate_params(registry["delegating"], {"to": "ping"}, strategies=registry)
    with pytest.raises(ConfigError, match="strategy cycle: delegating -> delegating"):
        validate_params(registry["delegating"], {"to": "delegating"}, strategies=registry)
    with pytest.raises(ConfigError, match="cycle"):
        run_strategy("delegating", ctx(registry=registry), {"to": "delegating"})


def test_unknown_reference_suggests():
    with pytest.raises(ConfigError) as info:
        validate_params(Listed(), {"fallback": "everyting"}, strategies=strategies())
    assert info.value.path == "$.fallback"
    assert info.value.suggestion == "everything"


def test_delegate_passes_on_common_params():
    got = run_strategy("delegating", ctx(), {"limit": 2, "categories": ["skincare"]})
    assert skus(got) == ["c", "e"]


def test_unknown_param_with_suggestion():
    with pytest.raises(ConfigError) as info:
        validate_params(Listed(), {"limt": 3})
    err = info.value
    assert err.path == "$.limt"
    assert err.suggestion == "limit"
    assert "listed" in err.message and "exclude_in_cart" in err.message  # lists what is accepted


def test_every_unknown_param_is_reported():
    with pytest.raises(ConfigError) as info:
        validate_params(Listed(), {"limt": 3, "skuz": [], "limit": 2})
    assert [(p.path, p.suggestion) for p in info.value.problems] == [("$.limt", "limit"), ("$.skuz", "skus")]


@pytest.mark.parametrize(("raw", "path", "text"), [
    ({"limit": "8"}, "$.limit", "Expected `int`, got `str`"),
    ({"limit": 0}, "$.limit", ">= 1"),
    ({"limit": 51}, "$.limit", "<= 50"),
    ({"exclude_purchased": "yes"}, "$.exclude_purchased", "Expected `bool`"),
    ({"categories": "makeup"}, "$.categories", "Expected `array"),
    ({"min_price": 50, "max_price": 10}, "$", "min_price (50.0) is above max_price (10.0)"),
])
def test_wrong_types(raw, path, text):
    with pytest.raises(ConfigError) as info:
        validate_params(Listed(), raw)
    assert info.value.path == path
    assert text in info.value.message


def test_params_must_be_a_table():
    with pytest.raises(ConfigError, match="must be a table"):
        validate_params(Listed(), ["limit", 3])


def test_defaults_and_subclass_overrides():
    assert validate_params(Everything(), None) == StrategyParams()
    params = validate_params(Listed(), {"limit": 3})
    assert params.limit == 3 and params.exclude_in_cart and params.skus == ("a", "b", "a", "c", "d")
    with pytest.raises(AttributeError):
        params.limit = 4  # frozen


def test_a_strategy_that_raises_is_named():
    class Broken:
        name = "broken"
        Params = StrategyParams

        def recommend(self, ctx, params):
            raise KeyError("nope")

    with pytest.raises(PluginError, match="strategy broken") as info:
        run_strategy("broken", ctx(registry={"broken": Broken()}))
    assert info.value.hook == "recommend"


def test_a_strategy_returning_garbage_is_named():
    class Garbage:
        name = "garbage"
        Params = StrategyParams

        def recommend(self, ctx, params):
            return ["a"]

    with pytest.raises(PluginError, match="returned str, not a Product"):
        run_strategy("garbage", ctx(registry={"garbage": Garbage()}))


def test_params_structs_are_msgspec_structs_with_a_schema():
    schema = msgspec.json.schema(Listed.Params)
    assert "limit" in str(schema)
