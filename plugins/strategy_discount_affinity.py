"""``discount_affinity``: markdowns for discount seekers, new arrivals for full-price buyers.

The visitor is in the high band when their share of orders bought on discount is at least
``threshold``. Without a ``threshold`` the profile document's band decides
(``discount.band == "high"``, the band segment rules test) when present, else a share of at
least 0.3. The share comes from the document's ``discount.share`` when present, else
``discounted_orders / orders``; a visitor with no orders is never high. ``high`` and ``low`` name the strategies
(defaults ``markdowns`` and ``new_arrivals``); common params are passed on to them.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from segmint.engine.catalog import Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams, delegate

from ._common import document_value

DEFAULT_THRESHOLD = 0.3


class DiscountAffinityParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    threshold: Annotated[Annotated[float, msgspec.Meta(ge=0, le=1)] | None, msgspec.Meta(description=(
        "Share of orders bought on discount from which a visitor counts as a discount seeker; "
        "left out: the document's `discount.band` decides when present, else 0.3."))] = None
    high: Annotated[str, msgspec.Meta(description="The strategy for discount seekers.")] = "markdowns"
    low: Annotated[str, msgspec.Meta(description="The strategy for everyone else.")] = "new_arrivals"

    strategy_fields = ("fallback", "high", "low")


def discount_share(ctx: StrategyContext) -> float:
    share = document_value(ctx.document, "discount.share")
    if isinstance(share, (int, float)) and not isinstance(share, bool):
        return float(share)
    orders = ctx.profile.orders
    return ctx.profile.discounted_orders / orders if orders > 0 else 0.0


def is_high(ctx: StrategyContext, threshold: float | None) -> bool:
    if ctx.profile.orders <= 0:
        return False
    if threshold is None:
        band = document_value(ctx.document, "discount.band")
        if isinstance(band, str):
            return band == "high"
        threshold = DEFAULT_THRESHOLD
    return discount_share(ctx) >= threshold


class DiscountAffinity:
    name = "discount_affinity"
    Params = DiscountAffinityParams

    def recommend(self, ctx: StrategyContext, params: DiscountAffinityParams) -> list[Product]:
        return delegate(params.high if is_high(ctx, params.threshold) else params.low, ctx, params)


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[DiscountAffinity]:
    return [DiscountAffinity()]
