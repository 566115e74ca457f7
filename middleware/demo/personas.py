"""The demo personas: who you can "log in as" in the demo shop, and their seeded histories.

Each persona stands for one scenario of the seed document (lapsed VIP, skincare buyer who
never bought makeup, discount seeker, new and returning visitors, frequent low spender).
``segment`` and ``campaign`` name the segment and campaign of ``examples/segmint.toml`` the
persona demonstrates, ``page`` and ``slot`` where its widget shows; the tests check them
against the config and the served page, so personas and config cannot drift apart silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .history import Pools, Shopper, spread

__all__ = ["Persona", "PERSONAS", "persona_by_key", "RETURNING_VISITOR_ID"]

#: The anonymous returning browser's visitor id (22 urlsafe characters, like a real one).
RETURNING_VISITOR_ID = "demoReturningBrowser01"


@dataclass(frozen=True)
class Persona:
    key: str
    label: str
    description: str
    #: The segment (of the demo config) this persona is in, and the campaign it demonstrates.
    segment: str
    campaign: str
    #: Where the persona's campaign shows: a page of the shop and the slot on it.
    page: str
    slot: str
    customer_id: str | None = None
    #: A seeded anonymous visitor: logging in sets its signed visitor cookie.
    visitor_id: str | None = None
    history: Callable[[Shopper, Pools], None] | None = None

    @property
    def anonymous(self) -> bool:
        return self.customer_id is None


def _lapsed_vip(s: Shopper, pools: Pools) -> None:
    # Seven premium fashion orders a month apart, the last one 62 days ago: 2,000+ spent.
    premium = pools.only(pools.premium, lambda p: p in pools.fashion)
    for day in spread(7, 62 + 30 * 6, 62, s.rng):
        s.order(day, s.pick(premium, 2))
    while s.spend < 2200:
        s.order(62 + 30 * 7 + 10 * s.orders, s.pick(premium, 2))


def _skincare_fan(s: Shopper, pools: Pools) -> None:
    # Three skincare orders, about 100 in all, the last 9 days ago; never any makeup.
    skincare = sorted(pools.skincare, key=lambda p: (p.price, p.sku))
    budget = 105.0
    for day in spread(3, 9 + 2 * 35, 9, s.rng):
        left = budget - s.spend
        fits = [p for p in skincare if p.price <= left / max(1, 3 - s.orders)] or skincare[:1]
        s.order(day, [fits[-1]])
    s.browse(3, skincare, within_days=20, views=(1, 2))


def _discount_seeker(s: Shopper, pools: Pools) -> None:
    # Six orders of marked-down electronics and one with a coupon: every order discounted.
    deals = pools.marked_electronics
    for day in spread(6, 150, 12, s.rng):
        s.order(day, s.pick(deals, 1))
    s.order(40, s.pick(pools.full_price, 1), coupon_percent=10, coupon="SAVE10")
    s.browse(4, pools.marked, within_days=20, views=(1, 3))


def _returning_browser(s: Shopper, pools: Pools) -> None:
    # Five visits over three weeks viewing fashion and electronics; never bought.
    liked = s.pick(pools.fashion, 4) + s.pick(pools.electronics, 3)
    for i, day in enumerate(spread(5, 21, 1, s.rng)):
        s.visit(day, liked[i: i + 3])


def _frequent_low_spender(s: Shopper, pools: Pools) -> None:
    # Visits every other day, fourteen one-item orders of cheap things: loyal, low ticket.
    cheap = pools.only(pools.cheap, lambda p: p.price <= 25)
    for day in spread(14, 2 + 13 * 4, 2, s.rng):
        s.order(day, s.pick(cheap, 1))
    s.browse(20, pools.all, within_days=40, views=(1, 3))


PERSONAS: tuple[Persona, ...] = (
    Persona(
        key="lapsed-vip", label="Lapsed VIP", segment="lapsed_vip", campaign="winback-vip",
        page="/", slot="home", customer_id="demo-lapsed-vip", history=_lapsed_vip,
        description="Spent over $2,000, last order 62 days ago (scenario 1: win-back with a coupon).",
    ),
    Persona(
        key="skincare-fan", label="Skincare buyer, no makeup", segment="skincare_no_makeup",
        campaign="routine-addons", page="/cart", slot="cart", customer_id="demo-skincare-fan",
        history=_skincare_fan,
        description="About $100 of skincare, never bought makeup (scenario 2: makeup bundles in the cart).",
    ),
    Persona(
        key="discount-seeker", label="Discount seeker", segment="discount_seekers", campaign="tech-deals",
        page="/", slot="home", customer_id="demo-discount-seeker", history=_discount_seeker,
        description="Buys only on markdown or with a coupon (scenario 3: older models, bigger markdowns).",
    ),
    Persona(
        key="new-visitor", label="New visitor", segment="new_visitors", campaign="welcome-bestsellers",
        page="/", slot="home",
        description="First visit, nothing known (scenario 4: start with our bestsellers).",
    ),
    Persona(
        key="returning-browser", label="Returning browser", segment="returning_visitors",
        campaign="picked-for-you", page="/", slot="home", visitor_id=RETURNING_VISITOR_ID,
        history=_returning_browser,
        description="Anonymous, five visits and a few product views (scenario 4: picked for you).",
    ),
    Persona(
        key="frequent-low-spender", label="Frequent low spender", segment="frequent_low_spenders",
        campaign="bundle-up", page="/products/{sku}", slot="pdp", customer_id="demo-frequent-low",
        history=_frequent_low_spender,
        description=("Visits often, fourteen small orders (scenario 5: bundle up and save on product "
                     "pages; leave the cart for 15 minutes for a reminder)."),
    ),
)
_BY_KEY = {p.key: p for p in PERSONAS}


def persona_by_key(key: str) -> Persona | None:
    return _BY_KEY.get(key)
