"""Product pictures drawn as SVG from the product's kind and colour: no files, no network.

The demo catalog has no photos, so every product gets a flat illustration: a silhouette
chosen from words in its name, tags and category (a dress, a serum bottle, headphones ...)
in a colour named in its tags, or one derived from its sku so that every card differs and
the same product always looks the same.
"""

from __future__ import annotations

import hashlib
import re
from html import escape

from segmint.engine.catalog import Product

__all__ = ["product_svg", "product_colour"]

# Silhouettes in a 200x200 box, drawn in the product colour over a light tint of it.
_SHAPES: dict[str, str] = {
    "dress": '<path d="M82 40h36l-6 26 26 94H62l26-94z"/><path d="M82 40l-14-14M118 40l14-14" stroke-width="6" stroke-linecap="round" fill="none"/>',
    "shirt": '<path d="M72 42l-34 20 12 28 16-8v78h68V82l16 8 12-28-34-20c-4 12-14 18-28 18s-24-6-28-18z"/>',
    "jacket": '<path d="M70 40l-30 22v98h40V84l20 30 20-30v76h40V62l-30-22-30 34z"/>',
    "trousers": '<path d="M66 36h68l8 128h-34l-8-92-8 92H58z"/>',
    "shoe": '<path d="M30 120c0-18 6-34 10-40l26 8c10 14 34 24 62 28 22 3 42 10 42 28v10H30z"/>',
    "bag": '<path d="M48 80h104l-8 84H56z"/><path d="M76 80c0-36 48-36 48 0" stroke-width="8" fill="none"/>',
    "scarf": '<path d="M62 40h76v22a38 16 0 0 1-76 0z"/><path d="M76 74h22l-4 94H72zM104 74h22l4 88h-24z"/>',
    "bottle": '<rect x="74" y="70" width="52" height="96" rx="12"/><rect x="88" y="44" width="24" height="30" rx="4"/>',
    "jar": '<rect x="56" y="92" width="88" height="68" rx="16"/><rect x="60" y="70" width="80" height="26" rx="6"/>',
    "dropper": '<rect x="76" y="86" width="48" height="80" rx="10"/><rect x="90" y="56" width="20" height="32" rx="4"/><circle cx="100" cy="46" r="12"/>',
    "lipstick": '<rect x="78" y="104" width="44" height="62" rx="6"/><rect x="84" y="78" width="32" height="30"/><path d="M88 78V50l24-14v42z"/>',
    "palette": '<rect x="40" y="62" width="120" height="84" rx="12"/><g fill="#fff" fill-opacity=".55"><circle cx="72" cy="90" r="12"/><circle cx="100" cy="90" r="12"/><circle cx="128" cy="90" r="12"/><circle cx="72" cy="120" r="12"/><circle cx="100" cy="120" r="12"/><circle cx="128" cy="120" r="12"/></g>',
    "phone": '<rect x="66" y="30" width="68" height="140" rx="12"/><rect x="74" y="44" width="52" height="106" rx="4" fill="#fff" fill-opacity=".35"/>',
    "laptop": '<rect x="46" y="52" width="108" height="72" rx="6"/><rect x="54" y="60" width="92" height="56" fill="#fff" fill-opacity=".35"/><path d="M30 132h140l-10 16H40z"/>',
    "headphones": '<path d="M50 118v-18a50 50 0 0 1 100 0v18" stroke-width="12" fill="none"/><rect x="40" y="108" width="30" height="50" rx="10"/><rect x="130" y="108" width="30" height="50" rx="10"/>',
    "watch": '<rect x="82" y="28" width="36" height="144" rx="10"/><circle cx="100" cy="100" r="34"/><circle cx="100" cy="100" r="24" fill="#fff" fill-opacity=".4"/>',
    "speaker": '<rect x="64" y="34" width="72" height="132" rx="14"/><circle cx="100" cy="120" r="24" fill="#fff" fill-opacity=".35"/><circle cx="100" cy="64" r="12" fill="#fff" fill-opacity=".35"/>',
    "camera": '<rect x="36" y="70" width="128" height="86" rx="12"/><rect x="70" y="56" width="40" height="18" rx="4"/><circle cx="100" cy="113" r="28" fill="#fff" fill-opacity=".4"/>',
    "tablet": '<rect x="48" y="36" width="104" height="132" rx="12"/><rect x="58" y="48" width="84" height="108" rx="4" fill="#fff" fill-opacity=".35"/>',
    "box": '<rect x="50" y="60" width="100" height="100" rx="8"/><path d="M50 92h100" stroke="#fff" stroke-opacity=".5" stroke-width="6"/>',
}

# Words that select a silhouette; checked against the name, category and tags, in order.
_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dress", ("dress", "skirt")),
    ("jacket", ("jacket", "coat", "blazer", "parka")),
    ("trousers", ("trouser", "jeans", "pants", "chino")),
    ("shoe", ("shoe", "sneaker", "boot", "loafer", "trainer", "sandal")),
    ("bag", ("bag", "tote", "backpack", "wallet")),
    ("scarf", ("scarf", "belt")),
    ("shirt", ("shirt", "tee", "t-shirt", "sweater", "hoodie", "knit", "top", "blouse", "cardigan")),
    ("dropper", ("serum", "oil", "essence", "ampoule")),
    ("jar", ("cream", "moistur", "balm", "mask", "butter")),
    ("lipstick", ("lipstick", "lip", "mascara", "liner", "gloss")),
    ("palette", ("palette", "eyeshadow", "blush", "bronzer", "powder", "highlight")),
    ("bottle", ("cleanser", "toner", "foundation", "sunscreen", "spf", "lotion", "perfume", "mist", "wash", "shampoo",
                "conditioner", "spray", "gel")),
    ("headphones", ("headphone", "earbud", "earphone", "headset", "buds")),
    ("laptop", ("laptop", "notebook", "ultrabook")),
    ("tablet", ("tablet", "reader", "e-reader")),
    ("phone", ("phone", "smartphone")),
    ("watch", ("watch", "smartwatch", "tracker", "band", "fitness")),
    ("speaker", ("speaker", "soundbar")),
    ("camera", ("camera", "lens")),
    ("box", ("charger", "cable", "plug", "set", "pack")),
)
_BY_FAMILY = {"fashion": "shirt", "apparel": "shirt", "skincare": "jar", "makeup": "lipstick",
              "cosmetics": "bottle", "beauty": "bottle", "electronics": "phone"}

_NAMED_COLOURS = {
    "black": "#2b2d33", "white": "#9aa3b2", "grey": "#7b8494", "gray": "#7b8494",
    "navy": "#24366b", "blue": "#2f6fd6", "red": "#d1404a", "pink": "#e0679b",
    "green": "#2e9e6b", "olive": "#6d7a3a", "beige": "#c2a27c", "camel": "#b5814b",
    "brown": "#7a5234", "yellow": "#e3b23c", "orange": "#e07a32", "purple": "#7d4fc4",
    "silver": "#8d99a8", "gold": "#c9a227", "rose": "#d77a8c", "nude": "#c99a84",
    "sand": "#c8a97e", "tan": "#b07b4f", "cream": "#c9b48a", "bronze": "#a86b3c",
}
_PALETTE = ("#5b6ee1", "#e0679b", "#2e9e6b", "#e07a32", "#7d4fc4", "#d1404a", "#2f8fb0",
            "#c9a227", "#3d4b63", "#b5814b")


def _words(product: Product) -> list[str]:
    text = " ".join((product.name, product.category, *product.tags)).lower()
    return re.findall(r"[a-z0-9]+", text)


def product_colour(product: Product) -> str:
    """The colour named in the product's tags or name, else a stable one from its sku."""
    words = set(_words(product))
    for name, colour in _NAMED_COLOURS.items():
        if name in words:
            return colour
    digest = hashlib.blake2s(product.sku.encode(), digest_size=2).digest()
    return _PALETTE[digest[0] % len(_PALETTE)]


def _shape_name(product: Product) -> str:
    # A keyword matches the start of a word: "sneaker" finds "sneakers", "top" not "laptop".
    words = _words(product)
    for shape, keys in _KEYWORDS:
        if any(word.startswith(key) for word in words for key in keys):
            return shape
    for family, shape in _BY_FAMILY.items():
        if family in product.category.lower():
            return shape
    return "box"


def product_svg(product: Product) -> str:
    """A 200x200 SVG document picturing the product (safe to serve as image/svg+xml)."""
    colour = product_colour(product)
    shape = _SHAPES[_shape_name(product)]
    label = escape(product.name)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200" role="img" '
        f'aria-label="{label}"><title>{label}</title>'
        f'<rect width="200" height="200" fill="{colour}" fill-opacity=".12"/>'
        f'<circle cx="100" cy="104" r="78" fill="{colour}" fill-opacity=".10"/>'
        f'<g fill="{colour}" stroke="{colour}" stroke-width="0">{shape}</g></svg>'
    )
