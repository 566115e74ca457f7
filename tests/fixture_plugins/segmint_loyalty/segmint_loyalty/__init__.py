"""segmint-loyalty: a complete third-party segmint plugin.

- adds the rule field ``extra.loyalty_tier`` (bronze / silver / gold, from total spend),
- registers the strategy ``loyalty_picks`` (gold members: new arrivals; others: bestsellers),
- counts decisions per campaign (an analytics sink).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import msgspec

from segmint.engine import hookimpl
from segmint.engine.fields import FieldDef, FieldType
from segmint.engine.strategy import StrategyParams, delegate

TIERS = (("gold", 1000.0), ("silver", 250.0), ("bronze", 0.0))

#: Decisions seen, by campaign id (None: no campaign). A real sink would ship these out.
decisions: Counter[str | None] = Counter()


def loyalty_tier(spend: float) -> str:
    return next(name for name, floor in TIERS if spend >= floor)


@hookimpl
def segmint_field_catalog():
    return [FieldDef("extra.loyalty_tier", FieldType.STRING, "Loyalty tier from total spend.",
                     choices=tuple(name for name, _ in TIERS))]


@hookimpl
def segmint_enrich_document(profile, document, now):
    document.setdefault("extra", {})["loyalty_tier"] = loyalty_tier(profile.spend)


class LoyaltyPicksParams(StrategyParams, kw_only=True, frozen=True, forbid_unknown_fields=True):
    gold: str = "new_arrivals"
    others: str = "bestsellers"
    #: Make the strategy names above checked for typos and cycles when the config loads.
    strategy_fields = ("fallback", "gold", "others")
    window_days: Annotated[int, msgspec.Meta(ge=1)] = 30


class LoyaltyPicks:
    name = "loyalty_picks"
    Params = LoyaltyPicksParams

    def recommend(self, ctx, params):
        tier = ctx.document.get("extra", {}).get("loyalty_tier") or loyalty_tier(ctx.profile.spend)
        return delegate(params.gold if tier == "gold" else params.others, ctx, params)


@hookimpl
def segmint_register_strategies():
    return [LoyaltyPicks()]


@hookimpl
def segmint_decision_made(decision, profile):
    for slot in decision.slots.values():
        decisions[slot.campaign] += 1
