"""``cart_reminder``: "still thinking about these?" - the cart, once it has sat idle.

The cart is shown when it is not empty, it last changed at least ``idle_minutes`` before
``now``, and no order was placed since it changed; otherwise nothing (so the campaign falls
through, or the ``fallback`` runs). Cart items missing from the catalog are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

import msgspec

from segmint.engine.catalog import Product
from segmint.engine.hooks import hookimpl
from segmint.engine.strategy import StrategyContext, StrategyParams

from ._common import as_datetime, products_for


class CartReminderParams(StrategyParams, kw_only=True, forbid_unknown_fields=True, frozen=True):
    idle_minutes: Annotated[float, msgspec.Meta(ge=0, description=(
        "Show the cart once it has not changed for this many minutes."))] = 15.0
    exclude_in_cart: Annotated[bool, msgspec.Meta(description=(
        "Off by default here: the cart's products are the point."))] = False
    exclude_purchased: Annotated[bool, msgspec.Meta(description=(
        "Off by default here: a product bought before and in the cart again is still worth "
        "the reminder."))] = False


def cart_is_idle(ctx: StrategyContext, idle_minutes: float) -> bool:
    profile = ctx.profile
    changed = as_datetime(profile.cart_updated_at)
    if not profile.cart or changed is None:
        return False
    if profile.last_order_at is not None and profile.last_order_at >= profile.cart_updated_at:
        return False
    return ctx.now - changed >= timedelta(minutes=idle_minutes)


class CartReminder:
    name = "cart_reminder"
    Params = CartReminderParams

    def recommend(self, ctx: StrategyContext, params: CartReminderParams) -> Iterator[Product]:
        if not cart_is_idle(ctx, params.idle_minutes):
            return iter(())
        return products_for(ctx.catalog, (item.sku for item in ctx.profile.cart))


@hookimpl(trylast=True)
def segmint_register_strategies() -> list[CartReminder]:
    return [CartReminder()]
