"""The seeded history of the demo's two A/B tests, so its report page has something to say.

``cart-bestsellers`` has run for four weeks against a control holdout: cart visitors who see
the widget order more often (a true relative lift of ``CART_LIFT``), so the report shows a
significant lift with its band. ``new-arrivals`` started ``NEW_ARRIVALS_DAYS`` days ago with a
small true effect: too few visitors yet, so it is still collecting data.

Each visitor is assigned to an arm the way the middleware assigns live ones
(``assign_variant`` with the campaign's seed, by visitor id), so the split matches the
configured weights and the report's sample ratio check passes. A visitor's events are those
the shop would have logged: the page with the campaign's slot (the cart after a product page;
the home page for a customer who bought at full price before, the campaign's segment) and
its impression (a control visitor's records ``control`` and no skus), sometimes a click on a
recommendation, and an order minutes or days later; orders that would fall after ``now``
have not happened yet.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from segmint.engine.campaigns import CompiledCampaign
from segmint.engine.catalog import Product
from segmint.engine.config.schema import CONTROL_VARIANT
from segmint.engine.events import Click, Event, Impression, PageView
from segmint.engine.campaigns import assign_variant

from .history import Pools, Shopper

__all__ = ["experiment_history", "CART_TEST", "NEW_ARRIVALS_TEST", "CART_LIFT", "NEW_ARRIVALS_DAYS"]

CART_TEST = "cart-bestsellers"
NEW_ARRIVALS_TEST = "new-arrivals"
#: Days the cart test has run, cart visitors a day, the holdout's conversion and the true lift.
CART_DAYS, CART_VISITORS_PER_DAY, CART_CONVERSION, CART_LIFT = 28, 110, 0.30, 0.30
#: Days the new-arrivals test has run, full-price customers on the home page a day, conversion, lift.
NEW_ARRIVALS_DAYS, NEW_ARRIVALS_PER_DAY, NEW_ARRIVALS_CONVERSION, NEW_ARRIVALS_LIFT = 5, 40, 0.08, 0.15
#: Share of shown-widget visitors who click a recommendation.
CLICK_RATE = 0.15


def _arm(campaign: CompiledCampaign, visitor_id: str) -> tuple[str, bool]:
    variant = assign_variant(campaign.seed, visitor_id, campaign.variants)
    return (CONTROL_VARIANT, True) if variant.control else (variant.name, False)


def _exposure(s: Shopper, campaign: CompiledCampaign, slot: str, days_ago: float, path: str,
              shown: Sequence[Product], rate: float, lift: float, basket: list[Product]) -> None:
    """One visitor's page with the campaign's slot, and what followed."""
    assert s.visitor_id is not None
    variant, control = _arm(campaign, s.visitor_id)
    at = s.now - timedelta(days=days_ago)
    ids = {"visitor_id": s.visitor_id, "customer_id": s.customer_id}
    s.events.append(PageView(at=at, path=path, **ids))
    s.events.append(Impression(at=at, campaign=campaign.id, variant=variant, slot=slot,
                               skus=[] if control else [p.sku for p in shown], **ids))
    if not control and s.rng.random() < CLICK_RATE:
        clicked = s.rng.choice(list(shown))
        later = at + timedelta(minutes=1)
        s.events.append(Click(at=later, campaign=campaign.id, variant=variant, slot=slot, skus=[clicked.sku],
                              **ids))
        s.events.append(PageView(at=later, path=f"/products/{clicked.sku}", **ids))
        basket = [*basket, clicked]
    if s.rng.random() < rate * (1.0 if control else 1.0 + lift):
        # Most buy in the same visit; some come back within the attribution window.
        delay = s.rng.uniform(0.005, 0.03) if s.rng.random() < 0.8 else s.rng.uniform(0.5, 3.0)
        if days_ago - delay > 0:
            s.order(days_ago - delay, basket)


def experiment_history(campaigns: Sequence[CompiledCampaign], pools: Pools, now: datetime,
                       seed: int = 42) -> list[Event]:
    """The events of the demo's A/B tests (unsorted); none for a test the config lacks or
    that has no control holdout."""
    rng = random.Random(f"{seed}:experiments")
    by_id = {c.id: c for c in campaigns if any(v.control for v in c.variants)}
    events: list[Event] = []
    cart = by_id.get(CART_TEST)
    if cart is not None:
        # The test's carts hold the shop's big-ticket items (premium fashion, electronics): a
        # guest's one order is then above a loyal low-ticket customer's lifetime spend, so the
        # seeded guests do not push the frequent low spenders out of their RFM segment.
        popular = pools.premium[:8]
        number = 0
        for day in range(CART_DAYS):
            for _ in range(rng.randint(CART_VISITORS_PER_DAY - 15, CART_VISITORS_PER_DAY + 15)):
                number += 1
                s = Shopper(now, rng, visitor_id=f"anon-cart-{number:05d}")
                days_ago = day + rng.random()
                in_cart = s.pick(pools.premium, rng.choice((1, 1, 2)))
                s.visit(days_ago + 0.003, in_cart)
                _exposure(s, cart, "cart", days_ago, "/cart", s.pick(popular, 4), CART_CONVERSION, CART_LIFT,
                          in_cart)
                events.extend(s.events)
    arrivals = by_id.get(NEW_ARRIVALS_TEST)
    if arrivals is not None:
        newest = sorted(pools.full_price, key=lambda p: (p.created_at or now, p.sku))[-6:]
        number = 0
        for day in range(NEW_ARRIVALS_DAYS):
            for _ in range(rng.randint(NEW_ARRIVALS_PER_DAY - 5, NEW_ARRIVALS_PER_DAY + 5)):
                number += 1
                # A customer who bought at full price before (the campaign's segment).
                s = Shopper(now, rng, customer_id=f"full-price-{number:04d}", visitor_id=f"anon-home-{number:04d}")
                s.order(rng.uniform(20, 200), s.pick(pools.full_price, 1))
                _exposure(s, arrivals, "home", day + rng.random(), "/", newest, NEW_ARRIVALS_CONVERSION,
                          NEW_ARRIVALS_LIFT, s.pick(pools.full_price, 1))
                events.extend(s.events)
    return events
