"""Building blocks of the synthetic shop history: product pools and a shopper's timeline.

A ``Shopper`` writes the events one customer (or anonymous visitor) would have produced:
visits with product views, orders (with real markdowns and coupons as discounts), returns,
and a cart. ``Pools`` groups the catalog the way shoppers buy it (fashion, skincare, makeup,
electronics, marked down or full price, cheap or premium). Everything is driven by a
``random.Random`` and an explicit ``now``, so the same seed gives the same history.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from segmint.engine.catalog import Catalog, Product
from segmint.engine.events import (
    CartLine, CartUpdate, Event, Order, OrderItem, PageView, ProductView, Return, ReturnItem,
)

from .departments import department

__all__ = ["Pools", "Shopper", "spread"]


class Pools:
    """In-stock products grouped for the synthetic shoppers (every pool is non-empty).

    The buying pools (``cheap``, ``premium``, ``fashion`` ...) hold full-price products only,
    so that only the shoppers meant to be discount seekers end up with a high discount
    affinity; ``marked`` holds the markdowns and ``all`` everything (for browsing).
    """

    def __init__(self, catalog: Catalog) -> None:
        products = sorted((p for p in catalog if p.in_stock), key=lambda p: p.sku)
        if not products:
            raise ValueError("the demo catalog has no product in stock")
        self.all = products
        self.marked = [p for p in products if p.discount_pct > 0] or products
        self.full_price = [p for p in products if p.discount_pct == 0] or products
        by_price = sorted(self.full_price, key=lambda p: (p.price, p.sku))
        quarter = max(1, len(by_price) // 4)
        self.cheap = by_price[:quarter]
        self.premium = by_price[-quarter:]
        self.fashion = self._where(lambda p: department(p.category) == "fashion")
        self.electronics = self._where(lambda p: department(p.category) == "electronics")
        self.skincare = self._where(lambda p: "skin" in p.category.lower())
        self.makeup = self._where(lambda p: "makeup" in p.category.lower() or "make-up" in p.category.lower())
        self.marked_electronics = [p for p in self.marked if department(p.category) == "electronics"] or self.marked

    def _where(self, keep: Callable[[Product], bool]) -> list[Product]:
        return [p for p in self.full_price if keep(p)] or self.full_price

    @staticmethod
    def only(pool: Sequence[Product], keep: Callable[[Product], bool]) -> list[Product]:
        """The products of ``pool`` that ``keep`` accepts, or ``pool`` itself if none do."""
        return [p for p in pool if keep(p)] or list(pool)


def spread(count: int, first_days_ago: float, last_days_ago: float, rng: random.Random) -> list[float]:
    """``count`` moments (in days ago, oldest first) from ``first`` to ``last``, lightly jittered.

    The first and last moments are exact, so "days since the last purchase" and "average
    days between orders" come out as designed.
    """
    if count <= 1:
        return [last_days_ago]
    gap = (first_days_ago - last_days_ago) / (count - 1)
    inner = [first_days_ago - gap * i + rng.uniform(-0.25, 0.25) * gap for i in range(1, count - 1)]
    return [first_days_ago, *inner, last_days_ago]


class Shopper:
    """The timeline of one customer or visitor; ``events`` is what the shop would have sent."""

    def __init__(self, now: datetime, rng: random.Random, *, customer_id: str | None = None,
                 visitor_id: str | None = None) -> None:
        if not customer_id and not visitor_id:
            raise ValueError("a shopper needs a customer_id or a visitor_id")
        self.now = now
        self.rng = rng
        self.customer_id = customer_id
        self.visitor_id = visitor_id
        self.events: list[Event] = []
        self.orders = 0
        self.spend = 0.0
        self._ids = {"customer_id": customer_id, "visitor_id": visitor_id}

    def _at(self, days_ago: float, minutes: float = 0.0) -> datetime:
        return self.now - timedelta(days=days_ago) + timedelta(minutes=minutes)

    def visit(self, days_ago: float, views: Sequence[Product] = (), *, path: str = "/") -> None:
        """One session: a page view, then a product view every couple of minutes."""
        self.events.append(PageView(at=self._at(days_ago), path=path, **self._ids))
        for i, product in enumerate(views, start=1):
            at = self._at(days_ago, minutes=2 * i)
            self.events.append(PageView(at=at, path=f"/products/{product.sku}", **self._ids))
            self.events.append(ProductView(at=at, sku=product.sku, category=product.category, **self._ids))

    def order(self, days_ago: float, products: Sequence[Product], *, coupon_percent: float = 0.0,
              coupon: str | None = None) -> str:
        """An order of ``products`` (one each); markdowns and a coupon become per-unit discounts.

        The session before it views what is bought, as a real checkout would.
        """
        self.visit(days_ago, products)
        self.orders += 1
        order_id = f"{self.customer_id or self.visitor_id}-{self.orders}"
        items = []
        for product in products:
            list_price = max(product.compare_at_price or 0.0, product.price)
            discount = list_price - product.price + round(product.price * coupon_percent / 100, 2)
            items.append(OrderItem(sku=product.sku, category=product.category, quantity=1,
                                   price=round(list_price, 2), discount=round(discount, 2)))
            self.spend += list_price - discount
        self.events.append(Order(at=self._at(days_ago, minutes=2 * len(products) + 3),
                                 order_id=order_id, items=items,
                                 coupon=coupon if coupon_percent else None, **self._ids))
        return order_id

    def return_items(self, order_id: str, days_ago: float, products: Sequence[Product]) -> None:
        self.events.append(Return(at=self._at(days_ago), order_id=order_id,
                                  items=[ReturnItem(sku=p.sku, quantity=1) for p in products],
                                  **self._ids))

    def cart(self, minutes_ago: float, products: Sequence[Product]) -> None:
        """The cart as last updated ``minutes_ago`` (and not ordered since)."""
        lines = [CartLine(sku=p.sku, quantity=1, price=p.price, category=p.category) for p in products]
        self.events.append(CartUpdate(at=self.now - timedelta(minutes=minutes_ago), items=lines,
                                      value=round(sum(p.price for p in products), 2), **self._ids))

    # -- helpers used by the archetypes --------------------------------------------------------
    def pick(self, pool: Sequence[Product], k: int = 1) -> list[Product]:
        return self.rng.sample(list(pool), min(k, len(pool)))

    def browse(self, count: int, pool: Sequence[Product], *, within_days: float = 90,
               views: tuple[int, int] = (0, 3)) -> None:
        """``count`` extra visits at random moments, each viewing a few products of ``pool``."""
        for _ in range(count):
            self.visit(self.rng.uniform(0.1, within_days), self.pick(pool, self.rng.randint(*views)))
