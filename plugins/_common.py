"""Small helpers shared by the built-in strategies (not a public API)."""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone

from segmint.engine.catalog import Catalog, Product
from segmint.engine.strategy import StrategyContext

__all__ = [
    "products_for", "bestseller_products", "top_categories", "related_skus", "as_datetime", "document_value",
]

#: Weight of a seed the visitor bought as well as viewed: a purchase says more than a look.
STRONG = 2.0


def products_for(catalog: Catalog, skus: Iterable[str]) -> Iterator[Product]:
    """The catalog products for ``skus``, in order; unknown skus are skipped."""
    return filter(None, map(catalog.get, skus))  # lazy, iterated in C (``Catalog.get`` is a dict's)


def bestseller_products(ctx: StrategyContext, window_days: int | None = 30,
                        category: str | None = None) -> Iterator[Product]:
    return products_for(ctx.catalog, ctx.stats.ranked(window_days, category))


def top_categories(counts: Mapping[str, int | float], n: int = 3) -> list[str]:
    """The ``n`` categories with the highest counts (ties by name, for stable output)."""
    ranked = sorted((item for item in counts.items() if item[1] > 0), key=lambda kv: (-kv[1], kv[0]))
    return [category for category, _ in ranked[:n]]


def related_skus(seeds: Sequence[str], *sources: Callable[[str], Iterable[tuple[str, float]]],
                 strong: Container[str] = ()) -> list[str]:
    """Skus related to ``seeds`` (most relevant seed first), best first, seeds excluded.

    Each seed's related scores are weighted by ``1 / sqrt(rank + 1)``: what the visitor looked
    at or bought last counts most, yet the earlier seeds still add up (a steeper ``1 / (rank +
    1)`` scored 8% lower NDCG@10 on MovieLens, ``benchmarks/bench_recommend.py``); seeds in
    ``strong`` weigh ``STRONG`` times as much.
    """
    scores: dict[str, float] = {}
    get = scores.get
    for rank, seed in enumerate(seeds):
        weight = (STRONG if seed in strong else 1.0) / math.sqrt(rank + 1)
        for source in sources:
            for sku, score in source(seed):
                scores[sku] = get(sku, 0.0) + score * weight
    own = set(seeds)
    # Ties by sku for a stable order; both sorts with C-level keys (this runs per request).
    return [sku for sku in sorted(sorted(scores), key=scores.__getitem__, reverse=True) if sku not in own]


def as_datetime(epoch: float | None) -> datetime | None:
    """Profile timestamps are epoch seconds; strategies compare them with ``ctx.now``."""
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def document_value(document: Mapping[str, object], dotted: str) -> object | None:
    """A field of the profile document by dotted name (``visitor.is_returning``), or None."""
    value: object = document
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
