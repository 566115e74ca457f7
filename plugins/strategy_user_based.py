"""``user_based``: what customers with a similar purchase history bought (for win-back).

Item-to-item: the co-purchase neighbours (cosine similarity) of the visitor's own
purchases, summed (latest purchases weigh most), never what they already bought. A visitor with no co-purchase signal gets the
bestsellers of the categories they buy most.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import msgspec

from segmint.engine.catalog import Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams

from ._common import bestseller_products, products_for, related_skus, top_categories


class UserBasedParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    purchased_within_days: Annotated[Annotated[int, msgspec.Meta(ge=1, le=3650)] | None, msgspec.Meta(
        description=(
            "Unset (null) by default here: every purchase the profile keeps is left out, however "
            "old; a win-back shows what they have not bought yet."))] = None
    seeds: Annotated[int, msgspec.Meta(ge=1, le=100, description=(
        "How many of the latest purchases seed the recommendations."))] = 10
    window_days: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, msgspec.Meta(description=(
        "Bestseller window (days) for the visitor's-top-categories part; null (JSON or YAML "
        "config): all time."))] = 90


class UserBased:
    name = "user_based"
    Params = UserBasedParams

    def recommend(self, ctx: StrategyContext, params: UserBasedParams) -> Iterator[Product]:
        purchased = ctx.profile.purchased_skus
        yield from products_for(ctx.catalog, related_skus(purchased[: params.seeds], ctx.stats.purchase_neighbours))
        for category in top_categories(ctx.profile.category_items, n=3):
            yield from bestseller_products(ctx, params.window_days, category)


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[UserBased]:
    return [UserBased()]
