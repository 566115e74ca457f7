"""``recently_viewed``: the products the visitor looked at, most recent first."""

from __future__ import annotations

from collections.abc import Iterator

from segmint.engine.catalog import Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams

from ._common import products_for


class RecentlyViewedParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    pass


class RecentlyViewed:
    name = "recently_viewed"
    Params = RecentlyViewedParams

    def recommend(self, ctx: StrategyContext, params: RecentlyViewedParams) -> Iterator[Product]:
        # viewed_skus is kept most recent first by the profile folding.
        return products_for(ctx.catalog, ctx.profile.viewed_skus)


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[RecentlyViewed]:
    return [RecentlyViewed()]
