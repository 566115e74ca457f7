"""Shop departments (fashion, cosmetics, electronics) from catalog category names.

The catalog has flat categories (``dresses``, ``skincare``, ``headphones`` ...); the shop's
navigation and badges group them into departments by keyword, so a catalog with other
category names still gets sensible groups (anything unknown is ``other``).
"""

from __future__ import annotations

__all__ = ["DEPARTMENTS", "department", "category_label"]

#: Department -> words that mark a category as belonging to it (checked in this order).
DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "cosmetics": ("cosmetic", "beauty", "skincare", "skin", "makeup", "fragrance", "haircare"),
    "electronics": ("electronic", "audio", "phone", "computer", "laptop", "wearable", "camera",
                    "gaming", "smart", "headphone", "tablet", "tv"),
    "fashion": ("fashion", "apparel", "clothing", "dress", "shoe", "accessor", "outerwear", "top",
                "knit", "bag", "denim", "jacket", "shirt"),
}


def department(category: str) -> str:
    """The shop department of a catalog category.

    >>> department("skincare"), department("fashion/dresses"), department("garden")
    ('cosmetics', 'fashion', 'other')
    """
    lowered = category.lower()
    head = lowered.split("/", 1)[0]
    if head in DEPARTMENTS:
        return head
    for name, words in DEPARTMENTS.items():
        if any(word in lowered for word in words):
            return name
    return "other"


def category_label(category: str) -> str:
    """A display name: ``fashion/t-shirts`` -> ``T Shirts``."""
    return category.rsplit("/", 1)[-1].replace("_", " ").replace("-", " ").title()
