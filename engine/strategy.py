"""The strategy interface: how a plugin turns a profile and the catalog into products.

A strategy only ranks candidates (``recommend``); ``run_strategy`` applies what every
strategy shares, so no plugin can forget it: never out of stock, the ``categories`` and
price bounds, the exclusions (just bought, in the cart, already on the page), no
duplicates, the ``limit``, and the ``fallback`` strategy when too few products are left.

Strategies may delegate to others by name (``new_vs_returning`` runs ``bestsellers`` or
``viewed_based``); ``delegate`` passes on the common params the campaign set. A chain that
comes back to a strategy already running is a cycle: ``validate_params`` rejects it when the
config loads, and ``run_strategy`` raises rather than recursing forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Protocol, runtime_checkable

import msgspec

from .catalog import Catalog, Product
from .errors import ConfigError, PluginError, SegmintError, suggest
from .product_stats import ProductStats
from .profile import Profile, purchase_times

__all__ = [
    "Strategy",
    "StrategyParams",
    "StrategyContext",
    "run_strategy",
    "delegate",
    "validate_params",
    "candidate_filter",
]

Price = Annotated[float, msgspec.Meta(ge=0)]


class StrategyParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Params every strategy accepts; a strategy's ``Params`` subclasses this.

    A subclass may change a default (``cart_reminder`` sets ``exclude_in_cart = False``).
    Each field's ``Meta(description=...)`` is its meaning in ``docs/strategies.md``
    (generated); a subclass that redeclares a field without one keeps this meaning.
    """

    limit: Annotated[int, msgspec.Meta(ge=1, le=50, description="How many products to show at most.")] = 8
    categories: Annotated[tuple[str, ...] | None, msgspec.Meta(
        description="Only products in these categories.")] = None
    min_price: Annotated[Price | None, msgspec.Meta(description="Only products priced at least this.")] = None
    max_price: Annotated[Price | None, msgspec.Meta(description="Only products priced at most this.")] = None
    exclude_purchased: Annotated[bool, msgspec.Meta(description=(
        "Leave out what the visitor just bought: products bought within "
        "`purchased_within_days` (false: show them anyway, e.g. consumables bought again and "
        "again)."))] = True
    purchased_within_days: Annotated[Annotated[int, msgspec.Meta(ge=1, le=3650)] | None, msgspec.Meta(
        description=(
            "How recent a purchase is \"just bought\", in days (a product's latest purchase "
            "counts); null (JSON or YAML config): every purchase the profile keeps, its latest "
            "100 products."))] = 30
    exclude_in_cart: Annotated[bool, msgspec.Meta(
        description="Leave out what is in the visitor's cart.")] = True
    fallback: Annotated[str | None, msgspec.Meta(description=(
        "Another strategy that fills the list when this one finds fewer than `limit` "
        "products."))] = None

    #: Fields of this struct that name other strategies (checked for typos and cycles).
    strategy_fields: ClassVar[tuple[str, ...]] = ("fallback",)

    def __post_init__(self) -> None:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"min_price ({self.min_price}) is above max_price ({self.max_price})")

    def referenced_strategies(self) -> dict[str, str]:
        """Strategy names these params refer to, by field name."""
        return {f: getattr(self, f) for f in self.strategy_fields if getattr(self, f, None)}


_COMMON_FIELDS = tuple(f.name for f in msgspec.structs.fields(StrategyParams) if f.name != "fallback")


@runtime_checkable
class Strategy(Protocol):
    """A recommendation strategy, registered through ``segmint_register_strategies``."""

    name: str
    Params: type[StrategyParams]

    def recommend(self, ctx: StrategyContext, params: Any) -> Iterable[Product]:
        """Candidates, best first; may be lazy. ``run_strategy`` filters and cuts them."""
        ...


class StrategyContext(msgspec.Struct, frozen=True):
    """Everything a strategy may read for one slot of one page view.

    A frozen struct rather than a dataclass: one is built per slot and per strategy in a
    chain, on every page view, and a frozen dataclass costs seven times as much to build.
    Derive a changed copy with ``msgspec.structs.replace(ctx, exclude=...)``.
    """

    profile: Profile
    catalog: Catalog
    now: datetime
    document: Mapping[str, Any] = msgspec.field(default_factory=dict)
    stats: ProductStats = msgspec.field(default_factory=ProductStats.empty)
    strategies: Mapping[str, Strategy] = msgspec.field(default_factory=dict)
    #: Skus already on the page (the product of a PDP, other widgets): never repeated.
    exclude: frozenset[str] = frozenset()
    #: Strategies running in this call chain, outermost first (cycle guard).
    chain: tuple[str, ...] = ()


def _strategy(name: str, strategies: Mapping[str, Strategy], path: str = "$") -> Strategy:
    try:
        return strategies[name]
    except KeyError:
        known = ", ".join(sorted(strategies)) or "none"
        raise ConfigError(f"unknown strategy {name!r} (known: {known})", path=path,
                          suggestion=suggest(name, strategies)) from None


def validate_params(
    strategy: Strategy,
    raw: Mapping[str, Any] | StrategyParams | None,
    *,
    strategies: Mapping[str, Strategy] | None = None,
) -> StrategyParams:
    """Check ``raw`` params against ``strategy.Params``; return the decoded struct.

    Raises ``ConfigError`` whose ``path`` is relative to the params table (``$.limt``): the
    config loader rebases it onto the campaign (``$.campaigns[2].params.limt``). Every unknown
    param is reported at once, each with a "did you mean". With ``strategies``, names in
    ``fallback`` (and delegate params such as ``new``/``returning``) must exist and must not
    lead back to a strategy already in the chain.
    """
    if isinstance(raw, strategy.Params):
        params = raw
    else:
        params = _decode_params(strategy, raw)
    if strategies is not None:
        _check_references(strategy.name, params, strategies, (strategy.name,))
    return params


def _decode_params(strategy: Strategy, raw: Any) -> StrategyParams:
    if raw is None:
        raw = {}
    elif isinstance(raw, StrategyParams):
        raw = msgspec.structs.asdict(raw)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"params of strategy {strategy.name!r} must be a table, got {type(raw).__name__}")
    accepted = [f.encode_name for f in msgspec.structs.fields(strategy.Params)]
    unknown = [key for key in raw if key not in accepted]
    if unknown:
        problems = [
            ConfigError(f"unknown param {key!r} for strategy {strategy.name!r} "
                        f"(accepted: {', '.join(accepted)})",
                        path=f"$.{key}", suggestion=suggest(str(key), accepted))
            for key in unknown
        ]
        if len(problems) == 1:
            raise problems[0]
        raise ConfigError(f"{len(problems)} unknown params for strategy {strategy.name!r}",
                          path=problems[0].path, problems=problems)
    try:
        return msgspec.convert(dict(raw), strategy.Params)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        raise ConfigError(f"bad params for strategy {strategy.name!r}: {message}",
                          path=where.rstrip("`") or "$") from None


def _check_references(name: str, params: StrategyParams, strategies: Mapping[str, Strategy],
                      chain: tuple[str, ...]) -> None:
    for field, target in params.referenced_strategies().items():
        path = f"$.{field}"
        if target in chain:
            cycle = " -> ".join((*chain, target))
            raise ConfigError(f"strategy cycle: {cycle}", path=path)
        nested = _strategy(target, strategies, path)
        # A delegate or fallback runs with its own defaults for strategy fields.
        try:
            defaults = nested.Params()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"strategy {target!r} needs params of its own ({exc}), so it cannot be "
                              f"used as {field!r}", path=path) from None
        _check_references(target, defaults, strategies, (*chain, target))


def _explicit_common(params: StrategyParams) -> dict[str, Any]:
    """Common params the campaign changed from this strategy's defaults (passed to delegates)."""
    defaults = {f.name: f.default for f in msgspec.structs.fields(params)}
    return {f: getattr(params, f) for f in _COMMON_FIELDS if getattr(params, f) != defaults[f]}


def _just_bought(profile: Profile, now: datetime, days: int | None) -> Iterable[str]:
    """The skus ``profile`` bought within ``days`` before ``now`` (None: all it keeps)."""
    if days is None:
        return profile.purchased_skus
    since = now.timestamp() - days * 86400.0
    return [sku for sku, at in zip(profile.purchased_skus, purchase_times(profile)) if at >= since]


def candidate_filter(ctx: StrategyContext, params: StrategyParams) -> Callable[[Product], bool]:
    """The common rules as one predicate (strategies that pick under a budget use it early).

    Runs for every candidate of every widget: the usual case (no category or price bounds)
    gets a predicate that checks only stock and exclusions.
    """
    excluded: frozenset[str] | set[str] = ctx.exclude
    if params.exclude_purchased and ctx.profile.purchased_skus:
        excluded = excluded.union(_just_bought(ctx.profile, ctx.now, params.purchased_within_days))
    if params.exclude_in_cart and ctx.profile.cart:
        excluded = excluded.union(item.sku for item in ctx.profile.cart)
    categories = frozenset(params.categories) if params.categories is not None else None
    min_price, max_price = params.min_price, params.max_price
    unavailable = ctx.catalog.unavailable

    if categories is None and min_price is None and max_price is None:
        return lambda product: product.sku not in unavailable and product.sku not in excluded

    def allowed(product: Product) -> bool:
        return (
            product.sku not in unavailable
            and product.sku not in excluded
            and (categories is None or product.category in categories)
            and (min_price is None or product.price >= min_price)
            and (max_price is None or product.price <= max_price)
        )

    return allowed


def _coerce(strategy: Strategy, params: Any) -> StrategyParams:
    if isinstance(params, strategy.Params):
        return params
    if isinstance(params, StrategyParams):  # another strategy's params: keep what they share
        params = _explicit_common(params) | ({"fallback": params.fallback} if params.fallback else {})
    return _decode_params(strategy, params)


def run_strategy(name: str, ctx: StrategyContext, params: Mapping[str, Any] | StrategyParams | None = None,
                 ) -> list[Product]:
    """Run strategy ``name`` and apply the common filtering, limit and fallback chain.

    Raises ``ConfigError`` for an unknown name or a cycle, ``PluginError`` (naming the
    strategy) when the strategy itself raises or returns something that is not a Product.
    """
    strategy = _strategy(name, ctx.strategies)
    params = _coerce(strategy, params)
    if name in ctx.chain:
        raise ConfigError(f"strategy cycle: {' -> '.join((*ctx.chain, name))}")
    inner = msgspec.structs.replace(ctx, chain=(*ctx.chain, name))
    allowed = candidate_filter(ctx, params)
    chosen: list[Product] = []
    seen: set[str] = set()
    try:
        for product in strategy.recommend(inner, params) or ():
            if not isinstance(product, Product):
                raise PluginError(f"returned {type(product).__name__}, not a Product",
                                  plugin=f"strategy {name}", hook="recommend")
            if product.sku not in seen and allowed(product):
                seen.add(product.sku)
                chosen.append(product)
                if len(chosen) >= params.limit:
                    break
    except SegmintError:
        raise
    except Exception as exc:
        raise PluginError(f"{type(exc).__name__}: {exc}", plugin=f"strategy {name}",
                          hook="recommend") from exc
    if len(chosen) < params.limit and params.fallback:
        fallback_ctx = msgspec.structs.replace(inner, exclude=ctx.exclude | seen)
        wanted = _explicit_common(params) | {"limit": params.limit - len(chosen)}
        chosen.extend(run_strategy(params.fallback, fallback_ctx, wanted))
    return chosen


def delegate(name: str, ctx: StrategyContext, params: StrategyParams) -> list[Product]:
    """Run another strategy with the common params the campaign set on ``params``.

    The delegate keeps its own defaults for everything else (and for ``fallback``: the
    delegating strategy's own fallback is applied by ``run_strategy`` around it).
    """
    return run_strategy(name, ctx, _explicit_common(params))
