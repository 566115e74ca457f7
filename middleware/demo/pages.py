"""Page bodies of the demo shop, built from the runtime's current catalog.

The catalog is read from the runtime on every page, so editing ``examples/catalog.json``
while the demo runs (hot reload) changes the shop and the widgets together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from segmint.engine.catalog import Catalog, Product
from segmint.engine.identity import Identity

from . import views
from .departments import category_label, department
from .personas import PERSONAS, Persona

__all__ = ["Pages"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DEPARTMENT_ORDER = {"fashion": 0, "cosmetics": 1, "electronics": 2}


class Pages:
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    @property
    def catalog(self) -> Catalog:
        return self.runtime.catalog

    def categories(self) -> list[str]:
        """Categories in department order (fashion, cosmetics, electronics, other), then by name."""
        return sorted(self.catalog.categories, key=lambda c: (_DEPARTMENT_ORDER.get(department(c), 9), c))

    def departments(self) -> list[str]:
        return list(dict.fromkeys(department(c) for c in self.categories()))

    def layout(self, title: str, body: str, *, persona: Persona | None, identity: Identity,
               cart_count: int, active_category: str | None, panel: str) -> str:
        # The persona cookie is only a label: trust it only when it agrees with the identity.
        if persona is not None and persona.customer_id != identity.customer_id:
            persona = None
        if persona is None:
            who = f"customer {identity.customer_id}" if identity.customer_id else "anonymous visitor"
        else:
            who = persona.label
        buttons = [views.PersonaButton(p.key, p.label, active=persona is not None and p.key == persona.key)
                   for p in PERSONAS]
        active = department(active_category) if active_category else None
        return views.layout(title, body, departments=self.departments(), personas=buttons, who=who,
                            about=persona.description if persona else "", cart_count=cart_count,
                            active_department=active, panel=panel)

    def home(self) -> str:
        products = [p for p in self.catalog if p.in_stock]
        by_department: dict[str, list[Product]] = {}
        for product in products:
            by_department.setdefault(department(product.category), []).append(product)
        ordered = [d for d in self.departments() if d in by_department]
        # Two of each department for the hero picture.
        hero = [p for d in ordered for p in sorted(by_department[d], key=lambda p: p.sku)[:2]]
        fresh = sorted(products, key=lambda p: (p.created_at or _EPOCH, p.sku), reverse=True)[:8]
        deals = sorted((p for p in products if p.discount_pct), key=lambda p: (-p.discount_pct, p.sku))[:4]
        return views.home_body(hero, {d: len(by_department[d]) for d in ordered}, fresh, deals)

    def listing(self, name: str) -> str | None:
        """A department page (with its categories as chips) or a category page; None if unknown."""
        if name in self.catalog.categories:
            dept = department(name)
            products = self._sorted(self.catalog.by_category(name))
            return views.category_body(category_label(name), products, chips=self._chips(dept), active=name,
                                       trail=[(dept.title(), f"/category/{dept}"), (category_label(name), None)])
        if name in self.departments():
            categories = [c for c in self.categories() if department(c) == name]
            products = self._sorted(p for c in categories for p in self.catalog.by_category(c))
            return views.category_body(name.title(), products, chips=self._chips(name),
                                       trail=[(name.title(), None)])
        return None

    def _chips(self, dept: str) -> list[tuple[str, int]]:
        return [(c, len(self.catalog.by_category(c))) for c in self.categories() if department(c) == dept]

    @staticmethod
    def _sorted(products: Iterable[Product]) -> list[Product]:
        return sorted(products, key=lambda p: (not p.in_stock, p.category, p.name))

    def product(self, product: Product) -> str:
        related = [p for p in self._sorted(self.catalog.by_category(product.category)) if p.sku != product.sku][:4]
        return views.product_body(product, related)

    def cart(self, lines: Sequence[views.CartLineView]) -> str:
        return views.cart_body(lines)

    def thanks(self, order_id: str, total: float, who: str) -> str:
        return views.thanks_body(order_id, total, who)

    def not_found(self, what: str) -> str:
        return views.not_found_body(what)
