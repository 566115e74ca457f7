"""``markdowns``: the deepest discounts first, older models first among equal discounts.

For discount seekers: a product is a markdown when ``compare_at_price`` is above ``price``.
Among equal discounts the older product (earlier ``created_at``) comes first: clearing older
models is what the markdown is for. Undated products come after dated ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Annotated

import msgspec

from segmint.engine.catalog import Catalog, Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams

_FAR_FUTURE = datetime.max.replace(tzinfo=timezone.utc)


class MarkdownsParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    min_discount_pct: Annotated[float, msgspec.Meta(ge=0, le=100, description=(
        "Only products at least this many percent off `compare_at_price`."))] = 0.0


def _deepest_first(catalog: Catalog) -> tuple[Product, ...]:
    marked_down = (p for p in catalog if p.discount_pct > 0)
    return tuple(sorted(marked_down, key=lambda p: (-p.discount_pct, p.created_at or _FAR_FUTURE, p.sku)))


class Markdowns:
    name = "markdowns"
    Params = MarkdownsParams

    def recommend(self, ctx: StrategyContext, params: MarkdownsParams) -> Iterator[Product]:
        ranked = ctx.catalog.memoize("markdowns", _deepest_first)
        return (p for p in ranked if p.discount_pct >= params.min_discount_pct)


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[Markdowns]:
    return [Markdowns()]
