"""``bundles``: a set of products from categories the visitor never bought, under a price cap.

"Makeup for a skincare buyer, total under 100": candidates are in stock, pass the common
filters, and are in a category absent from ``profile.category_items`` (restricted to
``categories`` when given). They are ranked by units sold (``window_days``), then price, and
picked round-robin across categories (one of each before a second of any) while the running
total stays within ``max_total``. Fewer than ``min_items`` picks is no bundle at all.
A ``fallback`` is refused: it would add products beyond the cap.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from segmint.engine.catalog import Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams, candidate_filter


class BundlesParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 3
    max_total: Annotated[float, msgspec.Meta(gt=0, description=(
        "The summed price of the bundle is at most this."))] = 100.0
    min_items: Annotated[int, msgspec.Meta(ge=1, description=(
        "Fewer picks than this under `max_total` is no bundle at all."))] = 2
    window_days: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, msgspec.Meta(description=(
        "Candidates are ranked by units sold in the last N days; null (JSON or YAML config): "
        "all time."))] = 90

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fallback is not None:
            raise ValueError("bundles takes no fallback: its products would break max_total")
        if self.min_items > self.limit:
            raise ValueError(f"min_items ({self.min_items}) is above limit ({self.limit})")


class Bundles:
    name = "bundles"
    Params = BundlesParams

    def recommend(self, ctx: StrategyContext, params: BundlesParams) -> list[Product]:
        bought = {category for category, count in ctx.profile.category_items.items() if count > 0}
        allowed = candidate_filter(ctx, params)
        candidates = sorted(
            (p for p in ctx.catalog if p.category not in bought and allowed(p)),
            key=lambda p: (-ctx.stats.units(p.sku, params.window_days), p.price, p.sku),
        )
        by_category: dict[str, list[Product]] = {}
        for product in candidates:
            by_category.setdefault(product.category, []).append(product)

        picked: list[Product] = []
        total = 0.0
        while by_category and len(picked) < params.limit:
            for category in list(by_category):
                queue = by_category[category]
                # The best product of this category that still fits the remaining budget.
                fit = next((p for p in queue if total + p.price <= params.max_total), None)
                if fit is None:
                    del by_category[category]
                    continue
                queue.remove(fit)
                if not queue:
                    del by_category[category]
                picked.append(fit)
                total += fit.price
                if len(picked) >= params.limit:
                    break
        return picked if len(picked) >= params.min_items else []


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[Bundles]:
    return [Bundles()]
