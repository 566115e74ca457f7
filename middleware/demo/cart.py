"""The demo shop's backend: the cart and checkout, kept in segmint as events.

A real shop has its own cart and order tables and tells segmint what happened through the
intake (``POST /_segmint/events``) or ``runtime.record``. The demo has no database of its
own: the cart *is* the profile's cart (``cart_update`` events), and checkout records a real
``order`` event, which folds into the profile, clears the cart and moves the shopper between
segments on the next page view. All of it blocks (SQLite), so it runs in a worker thread.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from segmint.engine.catalog import Catalog
from segmint.engine.events import CartLine, CartUpdate, Order, OrderItem
from segmint.engine.identity import Identity

from .views import CartLineView

__all__ = ["Buyer", "CartBackend", "MAX_QUANTITY", "MAX_LINES"]

MAX_QUANTITY = 20
MAX_LINES = 30


@dataclass(frozen=True)
class Buyer:
    """Who is shopping: the ids the events are recorded under."""

    customer_id: str | None
    visitor_id: str | None

    @classmethod
    def from_identity(cls, identity: Identity) -> Buyer:
        return cls(customer_id=identity.customer_id, visitor_id=identity.visitor_id)

    @property
    def known(self) -> bool:
        return bool(self.customer_id or self.visitor_id)

    def ids(self) -> dict[str, str]:
        return {k: v for k, v in (("customer_id", self.customer_id), ("visitor_id", self.visitor_id)) if v}


class CartBackend:
    """Cart and checkout over a segmint runtime (``profile``, ``record``, ``catalog``, ``clock``)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    @property
    def catalog(self) -> Catalog:
        return self.runtime.catalog

    def now(self) -> datetime:
        clock = getattr(self.runtime, "clock", None)
        return clock() if clock is not None else datetime.now(timezone.utc)

    def lines(self, shopper: Buyer) -> list[CartLineView]:
        """The cart as products of the current catalog (lines of removed products are dropped)."""
        if not shopper.known:
            return []
        profile = self.runtime.profile(customer_id=shopper.customer_id, visitor_id=shopper.visitor_id)
        lines = []
        for item in profile.cart:
            product = self.catalog.get(item.sku)
            if product is not None and item.quantity > 0:
                lines.append(CartLineView(product, min(item.quantity, MAX_QUANTITY)))
        return lines

    def _save(self, shopper: Buyer, lines: Sequence[CartLineView]) -> None:
        items = [CartLine(sku=line.product.sku, quantity=line.quantity, price=line.product.price,
                          category=line.product.category) for line in lines[:MAX_LINES]]
        value = round(sum(line.total for line in lines[:MAX_LINES]), 2)
        self.runtime.record([CartUpdate(at=self.now(), items=items, value=value, **shopper.ids())])

    def add(self, shopper: Buyer, sku: str, quantity: int = 1) -> bool:
        """Add ``quantity`` of ``sku``; False when the product is unknown or sold out."""
        product = self.catalog.get(sku)
        if product is None or not product.in_stock or not shopper.known:
            return False
        quantity = max(1, min(quantity, MAX_QUANTITY))
        lines = self.lines(shopper)
        for i, line in enumerate(lines):
            if line.product.sku == sku:
                lines[i] = CartLineView(product, min(MAX_QUANTITY, line.quantity + quantity))
                break
        else:
            lines.append(CartLineView(product, quantity))
        self._save(shopper, lines)
        return True

    def remove(self, shopper: Buyer, sku: str) -> None:
        lines = self.lines(shopper)
        kept = [line for line in lines if line.product.sku != sku]
        if len(kept) != len(lines):
            self._save(shopper, kept)

    def checkout(self, shopper: Buyer) -> tuple[str, float] | None:
        """Record the cart as an order (the order clears the cart); None for an empty cart.

        Markdowns are sent as they are in a real shop: the list price and the money off.
        """
        lines = self.lines(shopper)
        if not lines:
            return None
        order_id = f"demo-{secrets.token_hex(5)}"
        items = []
        for line in lines:
            product = line.product
            list_price = max(product.compare_at_price or 0.0, product.price)
            items.append(OrderItem(sku=product.sku, category=product.category, quantity=line.quantity,
                                   price=round(list_price, 2), discount=round(list_price - product.price, 2)))
        total = round(sum(line.total for line in lines), 2)
        self.runtime.record([Order(at=self.now(), order_id=order_id, items=items, total=total,
                                   **shopper.ids())])
        return order_id, total
