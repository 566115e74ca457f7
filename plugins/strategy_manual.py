"""``manual``: a merchandiser's fixed list of skus, shown in the order given.

Skus missing from the catalog or out of stock are skipped (the common filters apply), so a
stale list degrades to fewer products (and the ``fallback``) rather than an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import msgspec

from segmint.engine.catalog import Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams


class ManualParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    skus: Annotated[tuple[Annotated[str, msgspec.Meta(min_length=1)], ...], msgspec.Meta(
        min_length=1, description="The products to show, in this order.")]


class Manual:
    name = "manual"
    Params = ManualParams

    def recommend(self, ctx: StrategyContext, params: ManualParams) -> Iterable[Product]:
        # The catalog's product of each sku, in order; None (not in the catalog) left out.
        return filter(None, map(ctx.catalog.get, params.skus))


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[Manual]:
    return [Manual()]
