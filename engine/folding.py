"""Folding: update a profile with one event in O(1).

Two profiles are never merged: an ``identify`` makes the store refold the customer's key
group (its events and the joined visitor's) in event-time order, the one rule below.

Rules (the derived fields in ``document.py`` rely on them):

- *Event-time order*: a profile is its events folded in ``event_order`` (time, then a
  tie-break on the event itself, never the arrival order), so any arrival order and any
  batching of the same events give the same profile. The stores keep that promise by
  folding each batch in that order and refolding a profile from the log when an event
  older than its newest folded one arrives, or an ``identify`` joins a visitor's events to
  it (``stores/batch.py``). ``fold`` itself folds whatever order it is given.
- *Visits* are sessions: a ``page_view`` more than ``VISIT_GAP`` (30 min) after the
  profile's previous activity starts a new visit.
- *Activity* (``first_seen``, ``last_seen``) is what the visitor did: views, cart, orders,
  returns. ``identify``, ``impression`` and ``click`` are segmint's records around a page
  view, written with the same time or just before it; were they activity, one folded
  first (same time, an earlier writer batch, a widget click before the page it opens)
  would keep that page view from starting its visit.
- Daily buckets (``daily_visits``, ``daily_orders``) are keyed by UTC day number and pruned
  to the last ``BUCKET_DAYS`` days before the newest bucket, so they stay bounded.
- Recent lists are most recent first, deduplicated and bounded (``MAX_*`` in profile.py).
  ``purchased_at`` holds, aligned with ``purchased_skus``, when each sku was last bought.
- ``cart_update`` replaces the cart; an ``order`` clears a cart that is not newer than it.
- An order counts as *discounted* when any line has a discount > 0 or it has a coupon.
- ``impression``/``click`` update ``profile.campaigns[campaign]``.
- A ``return`` with an ``amount`` adds it to ``refunded``.

Work per event is bounded by the list bounds and the event's own size, never by history.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from .events import CartUpdate, Click, Event, Identify, Impression, Order, PageView, ProductView, Return
from .profile import (
    BUCKET_DAYS,
    MAX_CAMPAIGN_EXPOSURES,
    MAX_PURCHASED_SKUS,
    MAX_VIEWED_SKUS,
    MAX_VISITOR_IDS,
    CampaignStats,
    CartItem,
    Profile,
    purchase_times,
)

__all__ = ["fold", "fold_page_view", "folded", "event_order", "EVENT_RANK", "VISIT_GAP"]

VISIT_GAP = 30 * 60.0
DAY = 86400.0
#: Events that are not the visitor's activity (see the module docstring).
_RECORDS = (Identify, Impression, Click)
#: The tie-break between events of the same time, by type: the visitor's page view before
#: what they did on that page (so it starts its visit), a cart before the order that empties
#: it, segmint's own records last.
EVENT_RANK = {
    "page_view": 0, "product_view": 1, "cart_update": 2, "order": 3, "return": 4,
    "identify": 5, "impression": 6, "click": 7,
}
_encode = msgspec.msgpack.Encoder().encode


def event_order(event: Event) -> tuple[float, int, bytes]:
    """The sort key of event-time order: ``(at, type rank, msgpack bytes)``.

    A total order on the events themselves (two events with equal keys are equal), so
    sorting by it does not depend on the order they arrived in. ``at`` must be set.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2025, 1, 1, tzinfo=timezone.utc)
    >>> view, page = ProductView(sku="s", at=t), PageView(path="/", at=t)
    >>> [type(e).__name__ for e in sorted([view, page], key=event_order)]
    ['PageView', 'ProductView']
    """
    return event.at.timestamp(), EVENT_RANK[type(event).__struct_config__.tag], _encode(event)  # type: ignore[union-attr, index]


def _push_front(items: tuple, value, bound: int) -> tuple:
    """``items`` with ``value`` moved or inserted at the front, deduplicated, bounded."""
    if items and items[0] == value:
        return items
    if value in items:
        return (value, *(item for item in items if item != value))
    return (value, *items[:bound - 1])


def _push_bought(skus: tuple[str, ...], times: tuple[float, ...], sku: str,
                 at: float) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``_push_front`` for the purchased skus and, aligned, when each was last bought."""
    if sku in skus:
        i = skus.index(sku)
        at = max(at, times[i])  # an older order folded late does not make a purchase older
        return (sku, *skus[:i], *skus[i + 1:]), (at, *times[:i], *times[i + 1:])
    return (sku, *skus[:MAX_PURCHASED_SKUS - 1]), (at, *times[:MAX_PURCHASED_SKUS - 1])


def _bump_day(buckets: dict[int, int], day: int) -> None:
    """Count one in a daily bucket. Keys stay in ascending order (``document.py`` relies on
    it to read recent windows from the end) and older than ``BUCKET_DAYS`` are pruned."""
    if day in buckets:
        buckets[day] += 1
        return
    newest = next(reversed(buckets)) if buckets else day
    if day <= newest - BUCKET_DAYS:
        return  # older than the window we keep
    buckets[day] = 1
    if day < newest:  # out of order: restore the ascending order
        _sort_buckets(buckets)
    elif next(iter(buckets)) <= day - BUCKET_DAYS:
        cutoff = day - BUCKET_DAYS
        for old in [d for d in buckets if d <= cutoff]:
            del buckets[old]


def _sort_buckets(buckets: dict[int, int]) -> None:
    items = sorted(buckets.items())
    buckets.clear()
    buckets.update(items)


def fold(profile: Profile, event: Event) -> None:
    """Fold one event into ``profile`` in place. ``event.at`` must be set (see ``stamp_events``)."""
    at = event.at.timestamp()  # type: ignore[union-attr]
    if isinstance(event, PageView):
        fold_page_view(profile, at, event.visitor_id, event.customer_id)
        return
    _fold_seen(profile, at, event.visitor_id, event.customer_id, not isinstance(event, _RECORDS))
    if isinstance(event, ProductView):
        profile.product_views += 1
        if event.category:
            profile.category_views[event.category] = profile.category_views.get(event.category, 0) + 1
        profile.viewed_skus = _push_front(profile.viewed_skus, event.sku, MAX_VIEWED_SKUS)
    elif isinstance(event, CartUpdate):
        if profile.cart_updated_at is None or at >= profile.cart_updated_at:
            profile.cart = tuple(
                CartItem(sku=i.sku, quantity=i.quantity, price=i.price, category=i.category)
                for i in event.items
            )
            profile.cart_value = (
                event.value if event.value is not None
                else sum(i.quantity * i.price for i in event.items)
            )
            profile.cart_updated_at = at
    elif isinstance(event, Order):
        _fold_order(profile, event, at)
    elif isinstance(event, Return):
        profile.returns += 1
        profile.returned_items += sum(i.quantity for i in event.items)
        if event.amount is not None:
            profile.refunded += event.amount
    elif isinstance(event, (Impression, Click)):
        _fold_exposure(profile, event, at)
    elif isinstance(event, Identify):
        pass  # linking and merging are the store's job; the ids were recorded above


def fold_page_view(profile: Profile, at: float, visitor_id: str | None, customer_id: str | None) -> None:
    """``fold`` of a page view at ``at`` (its timestamp), given the only fields it reads.

    ``fold`` calls it for every page view; a store folding a tail of page views calls it
    with the log's time column and the ids alone (``stores/batch.py``), without decoding
    whole events: a profile read with a tail is mostly page views."""
    previous = _fold_seen(profile, at, visitor_id, customer_id, True)
    profile.page_views += 1
    if previous is None or at - previous > VISIT_GAP:
        profile.visits += 1
        _bump_day(profile.daily_visits, int(at // DAY))


def _fold_seen(profile: Profile, at: float, visitor_id: str | None, customer_id: str | None,
               activity: bool) -> float | None:
    """What every event folds: the newest time, activity times (``activity``), the visitor
    and customer ids. Returns ``last_seen`` as it was before (the visit gap starts there)."""
    previous = profile.last_seen
    if profile.newest_at is None or at > profile.newest_at:
        profile.newest_at = at
    if activity:
        if profile.first_seen is None or at < profile.first_seen:
            profile.first_seen = at
        if previous is None or at > previous:
            profile.last_seen = at
    if visitor_id:
        profile.visitor_ids = _push_front(profile.visitor_ids, visitor_id, MAX_VISITOR_IDS)
    if customer_id and profile.key.startswith("c:"):
        profile.customer_id = customer_id
    return previous


def folded(profile: Profile, events: Iterable[Event]) -> Profile:
    """The profile as it will be once ``events`` are stored; ``profile`` is left unchanged.

    The request path uses it to decide on the profile *including* the request's own page
    view, which the writer stores only later: the first page of a new visit already counts
    that visit. It is the same ``fold`` the store runs, applied to a copy (cached profiles
    are shared and must not change), so the event counts once when the store's copy arrives.
    Events must be stamped (``at`` set), as for ``fold``, and newer than every event folded
    into ``profile`` (a request's own page view is): for an older one the store refolds the
    profile from its log, which this copy cannot.
    """
    events = tuple(events)
    if not events:
        return profile
    # ``fold`` replaces tuples and scalars but updates dicts and campaign stats in place:
    # the ones these events update are copied, the rest is shared with ``profile`` (it runs
    # on every page, whose page view and impressions touch one or two of them).
    copy = msgspec.structs.replace(profile)
    campaigns: set[str] = set()
    for event in events:
        if isinstance(event, PageView):
            if copy.daily_visits is profile.daily_visits:
                copy.daily_visits = dict(profile.daily_visits)
        elif isinstance(event, (Impression, Click)):
            campaigns.add(event.campaign)
        elif isinstance(event, ProductView):
            if copy.category_views is profile.category_views:
                copy.category_views = dict(profile.category_views)
        elif isinstance(event, Order) and copy.daily_orders is profile.daily_orders:
            copy.daily_orders = dict(profile.daily_orders)
            copy.category_items = dict(profile.category_items)
            copy.category_spend = dict(profile.category_spend)
    if campaigns:
        copy.campaigns = dict(profile.campaigns)
        for name in campaigns & copy.campaigns.keys():
            copy.campaigns[name] = msgspec.structs.replace(copy.campaigns[name])
    if len(events) > 1 and not _in_order(events):  # in event-time order, as the store folds
        events = tuple(sorted(events, key=event_order))
    for event in events:
        fold(copy, event)
    return copy


def _in_order(events: tuple[Event, ...]) -> bool:
    """True when ``events`` are in ``event_order`` by time and type alone (a request's page
    view and its impressions are): then no tie-break needs their encoded bytes."""
    previous = None
    for event in events:
        key = (event.at.timestamp(), EVENT_RANK[event.__struct_config__.tag])  # type: ignore[union-attr]
        if previous is not None and key <= previous:
            return False
        previous = key
    return True


def _fold_order(profile: Profile, event: Order, at: float) -> None:
    items = 0
    net = 0.0
    discount = 0.0
    category_items = profile.category_items
    category_spend = profile.category_spend
    purchased, bought_at = profile.purchased_skus, purchase_times(profile)
    for line in event.items:
        quantity = line.quantity
        items += quantity
        value = quantity * (line.price - line.discount)
        net += value
        discount += quantity * line.discount
        if line.category:
            category_items[line.category] = category_items.get(line.category, 0) + quantity
            category_spend[line.category] = category_spend.get(line.category, 0.0) + value
        purchased, bought_at = _push_bought(purchased, bought_at, line.sku, at)
    profile.purchased_skus, profile.purchased_at = purchased, bought_at
    profile.orders += 1
    profile.items += items
    profile.spend += event.total if event.total is not None else net
    profile.discount_total += discount
    if discount > 0 or event.coupon:
        profile.discounted_orders += 1
    if event.coupon:
        profile.coupon_orders += 1
    if profile.first_order_at is None or at < profile.first_order_at:
        profile.first_order_at = at
    if profile.last_order_at is None or at > profile.last_order_at:
        profile.last_order_at = at
    _bump_day(profile.daily_orders, int(at // DAY))
    if profile.cart_updated_at is None or profile.cart_updated_at <= at:
        profile.cart = ()
        profile.cart_value = 0.0
        profile.cart_updated_at = at


def _fold_exposure(profile: Profile, event: Impression | Click, at: float) -> None:
    stats = profile.campaigns.get(event.campaign)
    if stats is None:
        stats = profile.campaigns[event.campaign] = CampaignStats()
    if isinstance(event, Click):
        stats.clicks += 1
        if stats.last_click_at is None or at > stats.last_click_at:
            stats.last_click_at = at
        return
    stats.impressions += 1
    if stats.first_at is None or at < stats.first_at:
        stats.first_at = at
    if stats.last_at is None or at >= stats.last_at:
        stats.last_at = at
        if event.variant is not None:
            stats.last_variant = event.variant
    recent = stats.recent
    if not recent or at >= recent[0]:
        stats.recent = (at, *recent[:MAX_CAMPAIGN_EXPOSURES - 1])
    else:  # out of order: keep them sorted, most recent first
        stats.recent = tuple(sorted((*recent, at), reverse=True)[:MAX_CAMPAIGN_EXPOSURES])
