"""Archetypes of the synthetic customer base: one function per kind of shopper.

Each archetype writes a history that puts the shopper squarely inside one segment of the
demo config (and usually outside the neighbouring ones): lapsed VIPs spent 2,000+ and have
not bought for 45+ days, frequent low-value buyers place 10+ one-item orders, and so on.
``ARCHETYPES`` says how many of each the seeded shop gets; casual shoppers and anonymous
browsers fill the rest so that segment sizes look like a real shop's, not a test fixture's.
"""

from __future__ import annotations

from collections.abc import Callable

from .history import Pools, Shopper, spread

__all__ = ["ARCHETYPES", "Archetype", "add_visits", "buy_until"]

Archetype = Callable[[Shopper, Pools], None]


def add_visits(s: Shopper, pools: Pools, count: int, *, within_days: float = 60) -> None:
    s.browse(count, pools.all, within_days=within_days)


def buy_until(s: Shopper, pools_for_order: Callable[[], list], days: list[float], *,
              target: float, max_orders: int = 30, coupon_percent: float = 0.0) -> list[str]:
    """Place orders on ``days`` (extending them backwards if needed) until ``target`` is spent."""
    ids: list[str] = []
    i = 0
    while (i < len(days) or s.spend < target) and len(ids) < max_orders:
        day = days[i] if i < len(days) else days[0] + 9 * (i - len(days) + 1)
        ids.append(s.order(day, pools_for_order(), coupon_percent=coupon_percent))
        i += 1
    return ids


def lapsed_vip(s: Shopper, pools: Pools) -> None:
    """Spent 2,000+ on premium items; last order 50-150 days ago; orders every month or so."""
    rng = s.rng
    last = rng.uniform(50, 150)
    count = rng.randint(5, 9)
    days = spread(count, last + 30 * count, last, rng)
    buy_until(s, lambda: s.pick(pools.premium, rng.randint(1, 3)),
              days, target=2200)
    add_visits(s, pools, rng.randint(0, 2), within_days=last + 60)


def high_spender_recent(s: Shopper, pools: Pools) -> None:
    """Spent 1,000+; last order within the last 10 days."""
    rng = s.rng
    last = rng.uniform(0.5, 10)
    days = spread(rng.randint(3, 6), last + rng.uniform(60, 200), last, rng)
    buy_until(s, lambda: s.pick(pools.premium, rng.randint(1, 3)), days, target=1150)
    add_visits(s, pools, rng.randint(1, 4), within_days=30)


def repeat_low_returns(s: Shopper, pools: Pools) -> None:
    """Orders every 5-12 days, recently, and never returns anything."""
    rng = s.rng
    last = rng.uniform(0.5, 12)
    count = rng.randint(6, 12)
    days = spread(count, last + rng.uniform(5, 12) * (count - 1), last, rng)
    for day in days:
        s.order(day, s.pick(pools.full_price, rng.randint(1, 3)))
    add_visits(s, pools, rng.randint(1, 5), within_days=30)


def lapsed_frequent(s: Shopper, pools: Pools) -> None:
    """Used to order every 5-12 days; nothing for 65-200 days."""
    rng = s.rng
    last = rng.uniform(65, 200)
    count = rng.randint(5, 10)
    days = spread(count, last + rng.uniform(5, 12) * (count - 1), last, rng)
    for day in days:
        s.order(day, s.pick(pools.full_price, rng.randint(1, 2)))


def high_return_risk(s: Shopper, pools: Pools) -> None:
    """Fashion orders of 2-3 items of which about half go back."""
    rng = s.rng
    last = rng.uniform(3, 90)
    days = spread(rng.randint(3, 6), last + rng.uniform(40, 200), last, rng)
    for day in days:
        bought = s.pick(pools.fashion, rng.randint(2, 3))
        order_id = s.order(day, bought)
        s.return_items(order_id, max(0.1, day - rng.uniform(2, 10)), bought[: max(1, (len(bought) + 1) // 2)])


def premium_returner(s: Shopper, pools: Pools) -> None:
    """Spent 1,000+ on premium items, three at a time, and sends one of the three back."""
    rng = s.rng
    last = rng.uniform(3, 60)
    days = spread(rng.randint(4, 6), last + rng.uniform(60, 200), last, rng)
    i = 0
    while (i < len(days) or s.spend < 1600) and i < 30:
        day = days[i] if i < len(days) else days[0] + 9 * (i - len(days) + 1)
        bought = s.pick(pools.premium, 3)
        order_id = s.order(day, bought)
        s.return_items(order_id, max(0.1, day - rng.uniform(2, 8)), bought[:1])
        i += 1


def frequent_low_value(s: Shopper, pools: Pools) -> None:
    """Visits every few days and places 10-18 small one- or two-item orders of cheap items."""
    rng = s.rng
    last = rng.uniform(0.5, 6)
    count = rng.randint(10, 18)
    days = spread(count, last + rng.uniform(3, 6) * (count - 1), last, rng)
    cheap = pools.only(pools.cheap, lambda p: p.price <= 30)
    for day in days:
        s.order(day, s.pick(cheap, rng.choice((1, 1, 1, 2))))
    add_visits(s, pools, rng.randint(10, 20), within_days=45)


def skincare_no_makeup(s: Shopper, pools: Pools) -> None:
    """Two to four skincare orders adding up to 80-120, never any makeup."""
    rng = s.rng
    last = rng.uniform(2, 40)
    count = rng.randint(2, 4)
    target = rng.uniform(85, 115)
    days = spread(count, last + rng.uniform(20, 40) * (count - 1), last, rng)
    affordable = pools.only(pools.skincare, lambda p: p.price <= target / count + 10)
    for day in days:
        budget_left = target - s.spend
        fits = [p for p in affordable if p.price <= max(budget_left, min(x.price for x in affordable))]
        s.order(day, s.pick(fits, 1))
    add_visits(s, pools, rng.randint(1, 3), within_days=30)


def discount_seeker(s: Shopper, pools: Pools) -> None:
    """Buys marked-down items (mostly electronics) or with a coupon; rarely at full price."""
    rng = s.rng
    last = rng.uniform(1, 60)
    days = spread(rng.randint(3, 8), last + rng.uniform(40, 200), last, rng)
    deals = pools.marked_electronics if rng.random() < 0.6 else pools.marked
    for day in days:
        roll = rng.random()
        if roll < 0.7:
            s.order(day, s.pick(deals, rng.randint(1, 2)))
        elif roll < 0.9:
            s.order(day, s.pick(pools.full_price, 1), coupon_percent=10, coupon="SAVE10")
        else:
            s.order(day, s.pick(pools.full_price, 1))
    add_visits(s, pools, rng.randint(1, 4), within_days=30)


def casual(s: Shopper, pools: Pools) -> None:
    """One to three full-price orders at any time in the last year."""
    rng = s.rng
    last = rng.uniform(1, 300)
    days = spread(rng.randint(1, 3), last + rng.uniform(20, 120), last, rng)
    for day in days:
        s.order(day, s.pick(pools.full_price, rng.randint(1, 2)))
    add_visits(s, pools, rng.randint(0, 3), within_days=120)


def browser(s: Shopper, pools: Pools) -> None:
    """An anonymous visitor: one to six visits, a few product views, no order."""
    rng = s.rng
    s.browse(rng.randint(1, 6), pools.all, within_days=30, views=(1, 4))


#: (name, archetype, how many customers) of the seeded shop; "browser" are anonymous visitors.
ARCHETYPES: tuple[tuple[str, Archetype, int], ...] = (
    ("lapsed_vip", lapsed_vip, 24),
    ("high_spender_recent", high_spender_recent, 30),
    ("repeat_low_returns", repeat_low_returns, 40),
    ("lapsed_frequent", lapsed_frequent, 24),
    ("high_return_risk", high_return_risk, 24),
    ("premium_returner", premium_returner, 16),
    ("frequent_low_value", frequent_low_value, 30),
    ("skincare_no_makeup", skincare_no_makeup, 30),
    ("discount_seeker", discount_seeker, 40),
    ("casual", casual, 160),
    ("browser", browser, 120),
)
