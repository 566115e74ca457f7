"""``bestsellers``: the products that sold the most units lately (social proof for new visitors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import msgspec

from segmint.engine.catalog import Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams

from ._common import bestseller_products


class BestsellersParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    window_days: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, msgspec.Meta(description=(
        "Rank by units sold in the last N days (7, 30 and 90 are precomputed; other values use "
        "the next larger window); null (JSON or YAML config): all time."))] = 30
    category: Annotated[str | None, msgspec.Meta(description=(
        "Only this category's bestsellers (`categories` also works, for several)."))] = None


class Bestsellers:
    name = "bestsellers"
    Params = BestsellersParams

    def recommend(self, ctx: StrategyContext, params: BestsellersParams) -> Iterator[Product]:
        return bestseller_products(ctx, params.window_days, params.category)


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[Bestsellers]:
    return [Bestsellers()]
