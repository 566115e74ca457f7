"""``viewed_based`` ("picked for you"): products related to what the visitor viewed.

Ranking: the item-kNN neighbours (co-view and co-purchase similarity) of the visitor's
recent views, summed (the latest views weigh most, and views they also bought twice as
much), then the bestsellers of the categories they browsed. The viewed products
themselves are left out (``recently_viewed`` shows those) unless ``include_viewed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import msgspec

from segmint.engine.catalog import Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams

from ._common import bestseller_products, products_for, related_skus, top_categories


class ViewedBasedParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    seeds: Annotated[int, msgspec.Meta(ge=1, le=30, description=(
        "How many of the latest views seed the recommendations."))] = 10
    window_days: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, msgspec.Meta(description=(
        "Bestseller window (days) for the same-category part; null (JSON or YAML config): all time."))] = 30
    include_viewed: Annotated[bool, msgspec.Meta(description=(
        "Also show the products the visitor viewed (`recently_viewed` shows those)."))] = False


class ViewedBased:
    name = "viewed_based"
    Params = ViewedBasedParams

    def recommend(self, ctx: StrategyContext, params: ViewedBasedParams) -> Iterator[Product]:
        seeds = ctx.profile.viewed_skus[: params.seeds]
        viewed = set() if params.include_viewed else set(ctx.profile.viewed_skus)
        related = related_skus(seeds, ctx.stats.neighbours, strong=set(ctx.profile.purchased_skus))
        yield from (p for p in products_for(ctx.catalog, related) if p.sku not in viewed)

        # Categories of the viewed products in view order, then the most browsed ones.
        categories: list[str] = []
        for product in products_for(ctx.catalog, seeds):
            if product.category not in categories:
                categories.append(product.category)
        for category in top_categories(ctx.profile.category_views, n=3):
            if category not in categories:
                categories.append(category)
        for category in categories:
            popular = bestseller_products(ctx, params.window_days, category)
            yield from (p for p in popular if p.sku not in viewed)


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[ViewedBased]:
    return [ViewedBased()]
