"""``new_arrivals``: the newest products first, by ``created_at`` (undated ones last)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

import msgspec

from segmint.engine.catalog import Catalog, Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams


class NewArrivalsParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    max_age_days: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, msgspec.Meta(description=(
        "Only products created in the last N days; left out: any age."))] = None


def _newest_first(catalog: Catalog) -> tuple[Product, ...]:
    by_sku = sorted(catalog, key=lambda p: p.sku)  # stable tie order for equal dates
    dated = sorted((p for p in by_sku if p.created_at is not None), key=lambda p: p.created_at, reverse=True)
    return (*dated, *(p for p in by_sku if p.created_at is None))


class NewArrivals:
    name = "new_arrivals"
    Params = NewArrivalsParams

    def recommend(self, ctx: StrategyContext, params: NewArrivalsParams) -> Iterator[Product]:
        ranked = ctx.catalog.memoize("new_arrivals", _newest_first)
        if params.max_age_days is None:
            return iter(ranked)
        since = ctx.now - timedelta(days=params.max_age_days)
        # Newest first, so the first product that is too old ends the list.
        return itertools.takewhile(lambda p: p.created_at is not None and p.created_at >= since, ranked)


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[NewArrivals]:
    return [NewArrivals()]
