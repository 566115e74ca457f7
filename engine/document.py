"""The profile document: stored counters plus fields derived against ``now``.

Rules are evaluated against this nested dict (``field_table.py`` documents every key).
A value that is undefined is an *absent key*, never None: a customer without orders has
no ``orders.last_at`` and no ``days_since_last_purchase``, so Mongo semantics apply
(``{"orders.last_at": {"$exists": false}}`` matches them, ``$lte`` does not).

Time windows (``visits_7d``, ``orders.count_30d``, ...) count whole UTC days, today
included: ``_7d`` is today and the 6 days before. Durations in days are fractional.

This runs on every page view, so it is written for speed: no helper calls per field, one
pass over each bucket map, datetimes built only for timestamps that exist.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from .failure_log import FailureLog
from .hooks import SegmintPluginManager, call_each
from .predict import PredictModel, predict_fields
from .profile import Profile
from .rfm import RfmThresholds, rfm_scores

__all__ = ["profile_document", "discount_band", "DISCOUNT_BANDS"]

UTC = timezone.utc
DAY = 86400.0
@lru_cache(maxsize=1 << 16)
def _fromts(ts: float) -> datetime:
    """A profile's timestamps repeat on every page view: convert each once (bounded)."""
    return datetime.fromtimestamp(ts, UTC)

#: ``discount.band`` thresholds on ``discount.share``: high >= 0.5, mid >= 0.2, else low.
DISCOUNT_BANDS = (0.5, 0.2)
_HIGH, _MID = DISCOUNT_BANDS


def discount_band(share: float) -> str:
    return "high" if share >= DISCOUNT_BANDS[0] else "mid" if share >= DISCOUNT_BANDS[1] else "low"


def _windows(buckets: dict[int, int], today: int) -> tuple[int, int, int]:
    """Counts of the last 7, 30 and 90 days, today included (future days count too).

    Relies on folding keeping bucket keys in ascending order: only the last 30 days of
    buckets are visited, the 90-day window is usually one C-level ``sum``.
    """
    if not buckets:
        return 0, 0, 0
    w7 = w30 = 0
    start7, start30 = today - 6, today - 29
    for day, count in reversed(buckets.items()):
        if day < start30:
            break
        w30 += count
        if day >= start7:
            w7 += count
    w90 = sum(buckets.values())
    start90 = today - 89
    for day in buckets:  # oldest first: subtract the few days before the window
        if day >= start90:
            break
        w90 -= buckets[day]
    return w7, w30, w90


#: Top-level document keys computed together (one section of ``profile_document``).
_VISITOR_KEYS = frozenset({"visitor", "days_since_last_visit"})
#: Top-level keys that read the order group's shared derived values (basket, last order, ...).
_DERIVED_ORDER_KEYS = frozenset({"orders", "returns", "customer_segment"})


def profile_document(
    profile: Profile, now: datetime | float, *, rfm: RfmThresholds | None = None,
    predict: PredictModel | None = None, only: Collection[str] | None = None,
) -> dict[str, Any]:
    """Build the document of ``profile`` at time ``now`` (aware datetime or epoch seconds).

    ``rfm`` (thresholds from ``rfm.compute_rfm_thresholds``) adds the ``rfm`` group for
    customers with orders, ``predict`` (a fitted ``predict.PredictModel``) the ``predict``
    group. ``only``: the top-level keys wanted (``Filter.fields``); the
    sections that produce none of them are skipped (others may still appear), so a scan of a
    million profiles for one segment builds just what that segment reads.
    """
    ts = now if isinstance(now, (int, float)) else now.timestamp()
    today = int(ts // DAY)
    p = profile
    doc: dict[str, Any] = {}
    everything = only is None
    wanted = frozenset(only) if only is not None else frozenset()

    if everything or not _VISITOR_KEYS.isdisjoint(wanted):
        visits = p.visits
        # A customer who has ordered is not new, even when the orders were imported and the
        # site has seen no page view of theirs yet.
        returning = visits > 1 or p.orders > 0
        v7, v30, v90 = _windows(p.daily_visits, today)
        visitor: dict[str, Any] = {
            "visits": visits,
            "page_views": p.page_views,
            "product_views": p.product_views,
            "is_returning": returning,
            "is_new": not returning,
            "is_customer": p.customer_id is not None,
            "visits_7d": v7,
            "visits_30d": v30,
            "visits_90d": v90,
        }
        doc["visitor"] = visitor
        if p.first_seen is not None:
            visitor["first_seen"] = _fromts(p.first_seen)
        if p.last_seen is not None:
            visitor["last_seen"] = _fromts(p.last_seen)
            doc["days_since_last_visit"] = (ts - p.last_seen) / DAY

    n = p.orders
    # Values shared by several keys of the order group, computed only when one of those keys
    # is wanted; each key is then built on its own (a segment on spend and recency needs
    # neither the order windows nor the returns, nor a datetime for the last order).
    basket = last_at = gap = return_ratio = None
    if everything or not _DERIVED_ORDER_KEYS.isdisjoint(wanted):
        basket = p.items / n if n else None
        last_at = _fromts(p.last_order_at) if p.last_order_at is not None else None
        gap = ((p.last_order_at - p.first_order_at) / DAY / (n - 1)  # type: ignore[operator]
               if n > 1 and p.first_order_at is not None and p.last_order_at is not None else None)
        return_ratio = min(100.0, 100.0 * p.returned_items / p.items) if p.items else None
    if everything or "orders" in wanted:
        o7, o30, o90 = _windows(p.daily_orders, today)
        orders: dict[str, Any] = {
            "count": n, "items": p.items, "count_7d": o7, "count_30d": o30, "count_90d": o90,
        }
        if basket is not None:
            orders["avg_basket_size"] = basket
            orders["avg_value"] = p.spend / n
        if p.first_order_at is not None:
            orders["first_at"] = _fromts(p.first_order_at)
        if last_at is not None:
            orders["last_at"] = last_at
        if gap is not None:
            orders["avg_days_between"] = gap
        doc["orders"] = orders
    if everything or "spend" in wanted:
        spend: dict[str, Any] = {"total": p.spend, "refunded": p.refunded, "net": p.spend - p.refunded}
        if n:
            spend["avg_order_value"] = p.spend / n
        doc["spend"] = spend
    if everything or "discount" in wanted or "affinity" in wanted:
        discount: dict[str, Any] = {"orders": p.discounted_orders, "total": p.discount_total,
                                    "coupon_orders": p.coupon_orders}
        doc["discount"] = discount
        if n:
            share = p.discounted_orders / n
            discount["share"] = share
            discount["band"] = "high" if share >= _HIGH else "mid" if share >= _MID else "low"
            doc["affinity"] = {"discount": share}
        else:
            doc["affinity"] = {}
    if p.last_order_at is not None and (everything or "days_since_last_purchase" in wanted):
        doc["days_since_last_purchase"] = (ts - p.last_order_at) / DAY
    if everything or "returns" in wanted:
        returns: dict[str, Any] = {"count": p.returns, "items": p.returned_items}
        if return_ratio is not None:
            returns["ratio"] = return_ratio
        doc["returns"] = returns
    segment: dict[str, Any] | None = None
    if everything or "customer_segment" in wanted:  # the aliases of a popular segment builder
        segment = {"outbounds_value_total": p.spend, "outbounds_count": n}
        if basket is not None:
            segment["basket_size_avg"] = basket
        if last_at is not None:
            segment["last_purchase_date"] = last_at
        if gap is not None:
            segment["outbounds_avg_time_delta"] = gap
        if return_ratio is not None:
            segment["returns_articles_ratio"] = return_ratio

    if everything or "category" in wanted:
        category_items = p.category_items
        if category_items:
            total = sum(category_items.values())
            category: dict[str, Any] = {
                "items": dict(category_items),
                "spend": dict(p.category_spend),
                "views": dict(p.category_views),
                "bought": [c for c, count in category_items.items() if count > 0],
                "top": max(category_items, key=category_items.__getitem__),
                "affinity": {c: count / total for c, count in category_items.items()} if total else {},
            }
        else:
            category = {"items": {}, "spend": dict(p.category_spend), "views": dict(p.category_views),
                        "bought": [], "affinity": {}}
        doc["category"] = category

    if everything or "cart" in wanted:
        lines = p.cart
        if lines:
            cart: dict[str, Any] = {"items": sum([i.quantity for i in lines]), "value": p.cart_value,
                                    "skus": [i.sku for i in lines]}
            if p.cart_updated_at is not None:
                cart["idle_minutes"] = (ts - p.cart_updated_at) / 60.0
        else:
            cart = {"items": 0, "value": p.cart_value, "skus": []}
        doc["cart"] = cart
    if everything or "viewed" in wanted:
        doc["viewed"] = {"skus": list(p.viewed_skus)}
    if everything or "purchased" in wanted:
        doc["purchased"] = {"skus": list(p.purchased_skus)}

    if everything or "campaign" in wanted:
        campaigns: dict[str, Any] = {}
        for name, stats in p.campaigns.items():
            entry: dict[str, Any] = {"impressions": stats.impressions, "clicks": stats.clicks}
            if stats.last_at is not None:
                entry["last_at"] = _fromts(stats.last_at)
            campaigns[name] = entry
        doc["campaign"] = campaigns

    if rfm is not None and n and p.last_order_at is not None and (everything or "rfm" in wanted):
        doc["rfm"] = rfm_scores(p, rfm, ts)
    if predict is not None and n and (everything or "predict" in wanted):
        predicted = predict_fields(p, predict, ts)
        if predicted:
            doc["predict"] = predicted
    if segment is not None:
        doc["customer_segment"] = segment
    if everything or "extra" in wanted:
        doc["extra"] = {}  # plugins write here (``segmint_enrich_document``); nothing is stored
    return doc


def enriched_document(
    profile: Profile, now: datetime, *, rfm: RfmThresholds | None, predict: PredictModel | None,
    pm: SegmintPluginManager, failure_log: FailureLog, only: Collection[str] | None = None,
) -> dict[str, Any]:
    """``profile_document`` with the ``segmint_enrich_document`` plugins' additions: the
    document rules and strategies see. A failing enricher is logged and skipped."""
    document = profile_document(profile, now, rfm=rfm, predict=predict, only=only)
    if pm.hook.segmint_enrich_document.get_hookimpls():  # none: skip the call machinery
        call_each(pm, "segmint_enrich_document", failure_log=failure_log, profile=profile, document=document,
                  now=now)
    return document
