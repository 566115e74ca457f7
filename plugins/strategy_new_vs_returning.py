"""``new_vs_returning``: one slot, two strategies - by whether the visitor has been here before.

Returning means any of: more than one visit (``profile.visits > 1``), at least one order
(a customer imported from order history may have no recorded visit), or the document's
``visitor.is_returning`` (the value segment rules see; a plugin may enrich it).
New visitors get ``new`` (bestsellers: social proof), returning ones ``returning``
(viewed_based: what they showed interest in). Common params set on the campaign (``limit``,
``categories``...) are passed on to the chosen strategy.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from segmint.engine.catalog import Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams, delegate

from ._common import document_value


class NewVsReturningParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    new: Annotated[str, msgspec.Meta(description="The strategy for new visitors.")] = "bestsellers"
    returning: Annotated[str, msgspec.Meta(description="The strategy for returning visitors.")] = "viewed_based"

    strategy_fields = ("fallback", "new", "returning")


def is_returning(ctx: StrategyContext) -> bool:
    flag = document_value(ctx.document, "visitor.is_returning")
    return ctx.profile.visits > 1 or ctx.profile.orders > 0 or flag is True


class NewVsReturning:
    name = "new_vs_returning"
    Params = NewVsReturningParams

    def recommend(self, ctx: StrategyContext, params: NewVsReturningParams) -> list[Product]:
        return delegate(params.returning if is_returning(ctx) else params.new, ctx, params)


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[NewVsReturning]:
    return [NewVsReturning()]
