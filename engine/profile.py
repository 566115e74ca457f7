"""The profile: everything segmint knows of one visitor or customer.

A profile is *folded* from events (see ``folding.py``): counters, sums, first/last
timestamps, per-category counts, daily buckets and bounded recent lists. It stores only
what can be updated in O(1) per event; anything relative to "now" (days since the last
purchase, the RFM scores, the cart idle time, ...) is derived at evaluation time by
``document.py`` so a stored profile never goes stale.

Timestamps are UTC epoch seconds (floats): cheap to fold, compare and encode. Day buckets
are keyed by the UTC day number (``int(ts // 86400)``).

The struct is encoded with msgpack by the stores; new fields must have defaults so older
stored profiles still decode. Recent lists are tuples (most recent first): folding builds
a new tuple rather than changing one a reader may hold.

Adding a field: declare it here (with a default), fold it in ``folding.py`` and, when rules may
read it, put it in the document (``document.py``) and describe it in ``field_table.py``
(``docs/fields.md`` is generated from it). Nothing else lists the fields: a merge is a refold
of both keys' events (``stores/batch.py``), and ``tests/engine/test_profile_fields.py``, which
derives the fields from this struct, fails until a new one is folded and described.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec

__all__ = [
    "Profile", "CartItem", "CampaignStats", "profile_key", "purchase_times", "share_repeated_values",
]

#: Bounds of the recent lists kept on a profile (most recent first).
MAX_VIEWED_SKUS = 30
MAX_PURCHASED_SKUS = 100
MAX_VISITOR_IDS = 20
MAX_CAMPAIGN_EXPOSURES = 20
#: Daily buckets older than this many days are pruned when a profile is folded.
BUCKET_DAYS = 90


def profile_key(*, customer_id: str | None = None, visitor_id: str | None = None) -> str:
    """The store key of a profile: customers win over anonymous visitors.

    >>> profile_key(customer_id="42", visitor_id="abc")
    'c:42'
    >>> profile_key(visitor_id="abc")
    'v:abc'
    """
    if customer_id:
        return f"c:{customer_id}"
    if visitor_id:
        return f"v:{visitor_id}"
    raise ValueError("a profile needs a customer_id or a visitor_id")


#: Day numbers already seen as keys of daily buckets (a few hundred over a shop's life).
_DAY_NUMBERS: dict[int, int] = {}


def share_repeated_values(profile: Profile) -> Profile:
    """Make ``profile`` reuse the sku strings and day numbers other profiles already hold.

    A decoded profile owns a fresh copy of every sku it lists and of every day number keying
    its daily buckets, though a shop's catalog and calendar are small and the same values
    repeat across nearly every profile. A cache of 100,000 profiles is a quarter smaller
    once they share them (``sys.intern`` for skus: interned strings are freed when unused).
    Tuples and dicts are replaced, not mutated, so a reader holding the old ones is safe.
    """
    if profile.viewed_skus:
        profile.viewed_skus = tuple(map(sys.intern, profile.viewed_skus))
    if profile.purchased_skus:
        profile.purchased_skus = tuple(map(sys.intern, profile.purchased_skus))
    days = _DAY_NUMBERS.setdefault
    if profile.daily_visits:
        profile.daily_visits = {days(day, day): n for day, n in profile.daily_visits.items()}
    if profile.daily_orders:
        profile.daily_orders = {days(day, day): n for day, n in profile.daily_orders.items()}
    return profile


def purchase_times(profile: Profile) -> tuple[float, ...]:
    """When each of ``profile.purchased_skus`` was last bought, aligned with it.

    A profile stored before purchase times were kept lists skus without times: those count
    as bought at the latest order (the latest they can have been bought), so they are
    treated as recent purchases until that order is old.
    """
    times = profile.purchased_at
    missing = len(profile.purchased_skus) - len(times)
    if missing > 0:
        times = (*times, *(profile.last_order_at or 0.0,) * missing)
    return times


# Why tuples and ``gc=False``: cached profiles live long and there are many of them (100,000
# is a normal cache), and every full pass of the cyclic garbage collector, which stops the
# serving thread, walks every tracked object it holds, and every element of every list. The
# structs hold only strings, numbers and containers of those, never a reference back, so
# they opt out of the collector (``gc=False``); their recent lists are tuples, which the
# collector stops tracking after its first look. A full pass with 100,000 profiles cached
# (``Profiles``): ~270 ms with lists and tracked structs, ~35 ms this way, ~13 ms of which is
# the interpreter's and libraries' own objects (benchmarks/bench_profiles.py has the figure).
class CartItem(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    sku: str
    quantity: int = 1
    price: float = 0.0
    category: str | None = None


class CampaignStats(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Exposure history of one campaign for one profile (frequency caps, campaign history)."""

    impressions: int = 0
    clicks: int = 0
    first_at: float | None = None
    last_at: float | None = None
    last_click_at: float | None = None
    last_variant: str | None = None
    #: Recent impression timestamps, most recent first, bounded by MAX_CAMPAIGN_EXPOSURES.
    recent: tuple[float, ...] = ()


class Profile(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    key: str
    customer_id: str | None = None
    visitor_ids: tuple[str, ...] = ()

    # visits and browsing
    first_seen: float | None = None
    last_seen: float | None = None
    visits: int = 0
    page_views: int = 0
    product_views: int = 0
    daily_visits: dict[int, int] = msgspec.field(default_factory=dict)
    category_views: dict[str, int] = msgspec.field(default_factory=dict)
    viewed_skus: tuple[str, ...] = ()

    # orders
    orders: int = 0
    items: int = 0
    spend: float = 0.0
    discounted_orders: int = 0
    discount_total: float = 0.0
    coupon_orders: int = 0
    first_order_at: float | None = None
    last_order_at: float | None = None
    daily_orders: dict[int, int] = msgspec.field(default_factory=dict)
    category_items: dict[str, int] = msgspec.field(default_factory=dict)
    category_spend: dict[str, float] = msgspec.field(default_factory=dict)
    purchased_skus: tuple[str, ...] = ()
    #: When each of ``purchased_skus`` was last bought (epoch seconds, same order). Profiles
    #: stored before it existed have fewer entries: see ``purchase_times``.
    purchased_at: tuple[float, ...] = ()

    # returns
    returns: int = 0
    returned_items: int = 0
    #: Money refunded: the ``amount`` of return events that carry one.
    refunded: float = 0.0

    # cart
    cart: tuple[CartItem, ...] = ()
    cart_value: float = 0.0
    cart_updated_at: float | None = None

    # campaign history, by campaign id
    campaigns: dict[str, CampaignStats] = msgspec.field(default_factory=dict)

    #: The time of the newest event folded in (any type): an event not newer than it makes
    #: the store refold the profile from its log (``stores/batch.py``). None on profiles
    #: stored before it was kept, which refold on their next event.
    newest_at: float | None = None

    def __segmint_document__(self, now: Any) -> dict[str, Any]:
        """The nested field document rules are evaluated against (see ``document.py``).

        ``compile_filter(...).matches(profile, now=...)`` calls this, so a profile can be
        passed wherever a document can.
        """
        from .document import profile_document

        return profile_document(self, now)
