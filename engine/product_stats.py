"""Product statistics for strategies: bestsellers by window, co-purchase and co-view.

Built in one batch pass over the event log (``ProductStats.build``), never per request: the
runtime rebuilds them periodically and swaps the immutable result in. Memory stays bounded
per item: each sku keeps at most ``top_n`` related skus (pruned as the counts grow, so the
counts of rarely related pairs are approximate), and the per-visitor histories used to pair
items are kept in bounded LRU maps.

Besides the raw counts (``co_purchased``, ``co_viewed``), each item's nearest neighbours are
precomputed as in item-kNN: pair counts normalized to a shrunk cosine similarity
(``purchase_neighbours``; ``neighbours``: co-view and co-purchase similarity added up), so
that a request sums a few short lists and popular items do not crowd out related ones.

Pairing rules (events are read in log order, i.e. time order):

- co-purchase: items of one order are paired with each other and with the customer's
  previous ``history`` purchased skus ("people who bought X also bought Y");
- co-view: a ``product_view`` is paired with the visitor's previous ``history`` views made
  within ``view_gap_hours`` of it (one browsing session, roughly).

Events may be msgspec structs or plain mappings with ``type``, ``at`` (datetime, ISO-8601
string or epoch seconds), ``items`` (``sku``, ``category``, ``quantity``), ``sku``,
``category``, ``customer_id``, ``visitor_id``. Returns are not subtracted: a bestseller is
what sells, whatever comes back.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from operator import itemgetter
from typing import Any

from cachetools import LRUCache

from .dates import parse_instant

__all__ = ["ProductStats", "DEFAULT_WINDOWS"]

#: Bestseller windows in days computed by default (plus all time).
DEFAULT_WINDOWS: tuple[int, ...] = (7, 30, 90)
#: Items of one order considered for pairing (a huge B2B order must not cost n^2 pairs).
MAX_ORDER_ITEMS = 50
#: Added to the denominator of the neighbours' cosine: a pair must be seen a few times before
#: it outranks pairs of popular items (on MovieLens 20 scored best of 0, 5, 10 and 20).
SHRINK = 20.0
#: Partners counted per item while building, in multiples of the ``top_n`` kept.
COUNTED = 10


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _kind(event: Any) -> Any:
    # msgspec tagged-union structs (the event structs) carry their type as the struct's tag,
    # not as an attribute.
    if isinstance(event, Mapping):
        return event.get("type")
    kind = getattr(event, "type", None)
    if kind is None:
        kind = getattr(getattr(type(event), "__struct_config__", None), "tag", None)
    return kind


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, str):
        return parse_instant(value)
    return None


def _ranked(counts: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _top(values: Mapping[str, Any], n: int) -> tuple[tuple[str, Any], ...]:
    """The ``n`` highest values, ties by key: ``_ranked(values)[:n]`` with C-level sort keys
    (it runs for every item of the catalog on each rebuild)."""
    ranked = sorted(sorted(values), key=values.__getitem__, reverse=True)[:n]
    return tuple((key, values[key]) for key in ranked)


class _Pairs:
    """Symmetric pair counts, at most ``COUNTED * top_n`` partners kept per item while counting.

    A full item's partners are cut to the half most frequent, so the counts of rarely related
    pairs are approximate; the wide margin above the ``top_n`` finally kept lets a partner
    that shows up late still climb into them (counting 4x or 5x ``top_n``, the neighbours
    scored 7-9% lower NDCG@10 on MovieLens than 10x: partners kept being cut before they
    could add up). ``seen`` counts each item's occurrences (the
    views or order lines that were paired): ``neighbours`` divides a pair's count by their
    geometric mean plus ``SHRINK`` (cosine similarity, shrunk), so that a blockbuster seen
    with everything does not top every item's list, nor does a pair seen once between two
    rarities.
    """

    def __init__(self, top_n: int) -> None:
        self.top_n = top_n
        self.counts: dict[str, dict[str, int]] = {}
        self.seen: Counter[str] = Counter()

    def add(self, a: str, b: str) -> None:
        # Runs for every pair of every event: plain dicts, both directions inline.
        if a == b:
            return
        counts, bound = self.counts, COUNTED * self.top_n
        partners = counts.get(a)
        if partners is None:
            counts[a] = {b: 1}
        else:
            partners[b] = partners.get(b, 0) + 1
            if len(partners) > bound:
                self._cut(a)
        partners = counts.get(b)
        if partners is None:
            counts[b] = {a: 1}
        else:
            partners[a] = partners.get(a, 0) + 1
            if len(partners) > bound:
                self._cut(b)

    def _cut(self, sku: str) -> None:
        partners = self.counts[sku]
        self.counts[sku] = dict(heapq.nlargest(len(partners) // 2, partners.items(), key=itemgetter(1)))

    def freeze(self) -> dict[str, tuple[tuple[str, int], ...]]:
        return {sku: _top(partners, self.top_n) for sku, partners in self.counts.items()}

    def similarities(self) -> dict[str, dict[str, float]]:
        """Each item's partners by shrunk cosine similarity."""
        seen = self.seen
        result = {}
        for sku, partners in self.counts.items():
            own = seen[sku] or 1
            result[sku] = {other: count / (math.sqrt(own * (seen[other] or 1)) + SHRINK)
                           for other, count in partners.items()}
        return result


def _added(first: dict[str, dict[str, float]], second: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per item, the similarities of ``first`` and ``second`` added up."""
    result = {}
    for sku in first.keys() | second.keys():
        scored = dict(first.get(sku, {}))
        for other, similarity in second.get(sku, {}).items():
            scored[other] = scored.get(other, 0.0) + similarity
        result[sku] = scored
    return result


class ProductStats:
    """Immutable product statistics; build with ``ProductStats.build(events, now)``.

    >>> stats = ProductStats.build([{"type": "order", "at": "2024-05-01T10:00:00Z",
    ...     "customer_id": "c1", "items": [{"sku": "a", "category": "x", "quantity": 2},
    ...                                    {"sku": "b", "category": "x", "quantity": 1}]}],
    ...     now=datetime(2024, 5, 2, tzinfo=timezone.utc))
    >>> stats.bestsellers(7), stats.co_purchased("a")
    (['a', 'b'], [('b', 1)])
    """

    def __init__(
        self,
        *,
        built_at: datetime | None = None,
        units: Mapping[int | None, Mapping[str, int]] | None = None,
        categories: Mapping[str, str] | None = None,
        co_purchase: Mapping[str, tuple[tuple[str, int], ...]] | None = None,
        co_view: Mapping[str, tuple[tuple[str, int], ...]] | None = None,
        purchase_neighbours: Mapping[str, tuple[tuple[str, float], ...]] | None = None,
        neighbours: Mapping[str, tuple[tuple[str, float], ...]] | None = None,
    ) -> None:
        self.built_at = built_at
        self._units = {window: dict(counts) for window, counts in (units or {None: {}}).items()}
        self._units.setdefault(None, {})
        self._categories = dict(categories or {})
        self._co_purchase = dict(co_purchase or {})
        self._co_view = dict(co_view or {})
        self._purchase_neighbours = dict(purchase_neighbours or {})
        self._neighbours = dict(neighbours or {})
        self._rank: dict[tuple[int | None, str | None], tuple[str, ...]] = {}
        for window, counts in self._units.items():
            ranked = tuple(sku for sku, _ in _ranked(counts))
            self._rank[(window, None)] = ranked
            by_cat: dict[str, list[str]] = {}
            for sku in ranked:
                if sku in self._categories:
                    by_cat.setdefault(self._categories[sku], []).append(sku)
            for category, skus in by_cat.items():
                self._rank[(window, category)] = tuple(skus)

    @classmethod
    def empty(cls) -> ProductStats:
        return cls()

    @classmethod
    def build(
        cls,
        events: Iterable[Any],
        now: datetime,
        *,
        windows: Iterable[int] = DEFAULT_WINDOWS,
        top_n: int = 20,
        history: int = 10,
        view_gap_hours: float = 24.0,
        max_tracked_visitors: int = 100_000,
    ) -> ProductStats:
        """One pass over ``events`` (in time order); ``now`` anchors the windows."""
        now = _when(now) or datetime.now(timezone.utc)
        cutoffs = {w: now - timedelta(days=w) for w in sorted(set(windows))}
        units: dict[int | None, Counter[str]] = {w: Counter() for w in (*cutoffs, None)}
        categories: dict[str, str] = {}
        co_purchase, co_view = _Pairs(top_n), _Pairs(top_n)
        bought: LRUCache[str, list[str]] = LRUCache(max_tracked_visitors)
        viewed: LRUCache[str, list[tuple[str, datetime | None]]] = LRUCache(max_tracked_visitors)
        gap = timedelta(hours=view_gap_hours)

        for event in events:
            kind = _kind(event)
            who = _get(event, "customer_id") or _get(event, "visitor_id")
            at = _when(_get(event, "at"))
            if kind == "order":
                order_skus: list[str] = []
                for item in _get(event, "items") or ():
                    sku = _get(item, "sku")
                    if not sku:
                        continue
                    quantity = _get(item, "quantity", 1) or 1
                    if _get(item, "category"):
                        categories[sku] = _get(item, "category")
                    units[None][sku] += quantity
                    for window, cutoff in cutoffs.items():
                        if at is not None and at >= cutoff:
                            units[window][sku] += quantity
                    if sku not in order_skus and len(order_skus) < MAX_ORDER_ITEMS:
                        order_skus.append(sku)
                co_purchase.seen.update(order_skus)
                earlier = bought.get(who, []) if who else []
                for i, sku in enumerate(order_skus):
                    for other in order_skus[i + 1:]:
                        co_purchase.add(sku, other)
                    for other in earlier:
                        if other not in order_skus:
                            co_purchase.add(sku, other)
                if who:
                    merged = order_skus + [s for s in earlier if s not in order_skus]
                    bought[who] = merged[:history]
            elif kind == "product_view":
                sku = _get(event, "sku")
                if not sku:
                    continue
                if _get(event, "category"):
                    categories.setdefault(sku, _get(event, "category"))
                if not who:
                    continue
                co_view.seen[sku] += 1
                recent = viewed.get(who, [])
                for other, seen_at in recent:
                    if at is None or seen_at is None or at - seen_at <= gap:
                        co_view.add(sku, other)
                recent = [(sku, at)] + [(s, t) for s, t in recent if s != sku]
                viewed[who] = recent[:history]
        # Neighbours precomputed per item, so that a request adds up one short list per seed.
        bought_with = co_purchase.similarities()
        similar = _added(co_view.similarities(), bought_with)
        return cls(built_at=now, units=units, categories=categories,
                   co_purchase=co_purchase.freeze(), co_view=co_view.freeze(),
                   purchase_neighbours={sku: _top(scored, top_n) for sku, scored in bought_with.items()},
                   neighbours={sku: _top(scored, top_n) for sku, scored in similar.items()})

    @property
    def windows(self) -> tuple[int, ...]:
        return tuple(sorted(w for w in self._units if w is not None))

    def _window(self, window_days: int | None) -> int | None:
        # A window that was not computed uses the next larger one (or all time): close enough
        # for "popular lately", and a config never breaks because stats were built differently.
        if window_days is None or window_days in self._units:
            return window_days
        larger = [w for w in self.windows if w >= window_days]
        return larger[0] if larger else None

    def bestsellers(self, window_days: int | None = 30, category: str | None = None) -> list[str]:
        """Skus by units sold in the last ``window_days`` (None: all time), best first."""
        return list(self.ranked(window_days, category))

    def ranked(self, window_days: int | None = 30, category: str | None = None) -> tuple[str, ...]:
        """``bestsellers`` without the copy (the stats' own tuple): for the request path."""
        return self._rank.get((self._window(window_days), category), ())

    def units(self, sku: str, window_days: int | None = None) -> int:
        return self._units[self._window(window_days)].get(sku, 0)

    def category_of(self, sku: str) -> str | None:
        return self._categories.get(sku)

    def co_purchased(self, sku: str) -> list[tuple[str, int]]:
        """Skus bought together with ``sku`` (same order or same customer), most often first."""
        return list(self._co_purchase.get(sku, ()))

    def co_viewed(self, sku: str) -> list[tuple[str, int]]:
        """Skus viewed in the same browsing session as ``sku``, most often first."""
        return list(self._co_view.get(sku, ()))

    def purchase_neighbours(self, sku: str) -> tuple[tuple[str, float], ...]:
        """Skus most similar to ``sku`` by co-purchase (cosine of the two items' buyers, 0-1),
        precomputed per item; the stats' own tuple, for the request path."""
        return self._purchase_neighbours.get(sku, ())

    def neighbours(self, sku: str) -> tuple[tuple[str, float], ...]:
        """Skus most similar to ``sku`` by co-view and co-purchase (the two cosines added up:
        0-2), precomputed per item; the stats' own tuple, for the request path."""
        return self._neighbours.get(sku, ())

    def __repr__(self) -> str:
        return f"ProductStats({len(self._units[None])} skus sold, built_at={self.built_at})"
