"""The product catalog: what strategies may recommend and the renderer may show.

A catalog is immutable once built: the runtime loads a new one on reload and swaps it, so
strategies can memoize sorted views of it (``Catalog.memoize``) without locks on the read
path. Product URLs are checked when the catalog is loaded (only ``http(s)://`` and
site-relative ``/...`` URLs), and again by the renderer: defence in depth against a
``javascript:`` link sneaking into a widget.
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec

from .errors import ConfigError

__all__ = ["Product", "Catalog", "load_catalog_file", "is_safe_url"]

T = TypeVar("T")

#: Report at most this many bad products of one file (a broken export can have thousands).
MAX_REPORTED_PROBLEMS = 20

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
# Browsers drop tabs/newlines inside a scheme ("java\tscript:") and treat "\" as "/".
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


def is_safe_url(url: str | None) -> bool:
    """True for ``http(s)://`` URLs and site-relative ones (``/p/1``, ``//cdn.example/x``).

    >>> is_safe_url("https://shop.example/p/1"), is_safe_url("/p/1")
    (True, True)
    >>> is_safe_url("javascript:alert(1)"), is_safe_url("p/1")
    (False, False)
    """
    if not url or _UNSAFE_CHARS.search(url):
        return False
    match = _SCHEME.match(url)
    if match:
        return match.group(1).lower() in ("http", "https") and url[match.end():].startswith("//")
    return url.startswith("/")


class Product(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One product. ``stock=None`` means unknown, which counts as in stock."""

    sku: Annotated[str, msgspec.Meta(min_length=1, description="The product's id in the shop.")]
    name: Annotated[str, msgspec.Meta(description="The name shown in widgets.")]
    url: Annotated[str, msgspec.Meta(description="The product page: an http(s) or site-relative URL.")]
    price: Annotated[float, msgspec.Meta(ge=0, description="The current price.")]
    category: Annotated[str, msgspec.Meta(description="The product's category.")]
    image: Annotated[str | None, msgspec.Meta(description="An image URL: http(s) or site-relative.")] = None
    compare_at_price: Annotated[Annotated[float, msgspec.Meta(ge=0)] | None, msgspec.Meta(description=(
        "The price before a markdown; above `price` makes the product a markdown."))] = None
    created_at: Annotated[datetime | None, msgspec.Meta(description=(
        "When the product was added (for new arrivals); without an offset: UTC."))] = None
    tags: Annotated[tuple[str, ...], msgspec.Meta(description="Free-form labels.")] = ()
    stock: Annotated[int | None, msgspec.Meta(description=(
        "Units in stock; 0 or less is out of stock (never recommended), null is unknown "
        "(counts as in stock)."))] = None

    def __post_init__(self) -> None:
        # msgspec turns these ValueErrors into ValidationErrors with the field path.
        if not is_safe_url(self.url):
            raise ValueError(f"url {self.url!r} is not an http(s) or site-relative URL")
        if self.image is not None and not is_safe_url(self.image):
            raise ValueError(f"image {self.image!r} is not an http(s) or site-relative URL")

    @property
    def discount_pct(self) -> float:
        """Percent off ``compare_at_price`` (0 when there is no markdown), one decimal."""
        if not self.compare_at_price or self.compare_at_price <= self.price:
            return 0.0
        return round((self.compare_at_price - self.price) / self.compare_at_price * 100, 1)

    @property
    def in_stock(self) -> bool:
        return self.stock is None or self.stock > 0


def _as_utc(product: Product) -> Product:
    # Naive timestamps are taken as UTC so that new_arrivals can compare any two products.
    if product.created_at is not None and product.created_at.tzinfo is None:
        return msgspec.structs.replace(product, created_at=product.created_at.replace(tzinfo=timezone.utc))
    return product


class Catalog:
    """Products by sku and by category; immutable.

    >>> cat = Catalog([Product(sku="a", name="A", url="/a", price=5, category="makeup")])
    >>> cat.get("a").name, len(cat), [p.sku for p in cat.by_category("makeup")]
    ('A', 1, ['a'])
    """

    __slots__ = ("_by_sku", "_by_category", "_memo", "_lock", "__weakref__")

    def __init__(self, products: Iterable[Product] = ()) -> None:
        by_sku: dict[str, Product] = {}
        by_category: dict[str, list[Product]] = {}
        for product in products:
            if product.sku in by_sku:
                raise ValueError(f"duplicate sku {product.sku!r}")
            product = _as_utc(product)
            by_sku[product.sku] = product
            by_category.setdefault(product.category, []).append(product)
        self._by_sku = by_sku
        self._by_category = {cat: tuple(items) for cat, items in by_category.items()}
        self._memo: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, sku: str) -> Product | None:
        return self._by_sku.get(sku)

    def by_category(self, category: str) -> tuple[Product, ...]:
        return self._by_category.get(category, ())

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self._by_category)

    @staticmethod
    def in_stock(product: Product) -> bool:
        """Unknown stock (``None``) counts as in stock."""
        return product.in_stock

    def memoize(self, key: str, compute: Callable[[Catalog], T]) -> T:
        """``compute(self)`` once per catalog and key (e.g. a sorted view for a strategy).

        Safe because the catalog never changes; a reload builds a new catalog.
        """
        try:
            return self._memo[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._memo:
                self._memo[key] = compute(self)
            return self._memo[key]

    def __contains__(self, sku: object) -> bool:
        return sku in self._by_sku

    def __iter__(self) -> Iterator[Product]:
        return iter(self._by_sku.values())

    def __len__(self) -> int:
        return len(self._by_sku)

    def __repr__(self) -> str:
        return f"Catalog({len(self)} products, {len(self._by_category)} categories)"


_PRODUCT_FIELDS = tuple(f.encode_name for f in msgspec.structs.fields(Product))
_AT = re.compile(r" - at `(\$[^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")


def _problem(exc: msgspec.ValidationError, index: int, file: str) -> ConfigError:
    message = str(exc)
    match = _AT.search(message)
    inner = match.group(1)[1:] if match else ""
    message = _AT.sub("", message)
    suggestion = None
    if not match and message.startswith(("url ", "image ")):  # raised by Product.__post_init__
        inner = "." + message.split(" ", 1)[0]
    unknown = _UNKNOWN.search(message)
    if unknown:
        inner += f".{unknown.group(1)}"
        close = difflib.get_close_matches(unknown.group(1), _PRODUCT_FIELDS, n=1)
        suggestion = close[0] if close else None
    return ConfigError(f"bad product: {message}", file=file, path=f"$[{index}]{inner}", suggestion=suggestion)


def load_catalog_file(path: str | Path) -> Catalog:
    """Load a JSON list of products; every bad product is reported with its ``$[i].field``.

    Raises ``ConfigError`` (with ``file`` and ``path``) for a missing file, invalid JSON, a
    product that does not fit ``Product``, or a duplicate sku.
    """
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read catalog file: {exc.strerror or exc}", file=file) from exc
    try:
        items = msgspec.json.decode(raw, type=list[Any])
    except msgspec.DecodeError as exc:
        raise ConfigError(f"catalog is not a JSON list of products: {exc}", file=file) from exc

    products: list[Product] = []
    problems: list[ConfigError] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            product = msgspec.convert(item, Product)
        except msgspec.ValidationError as exc:
            problems.append(_problem(exc, index, file))
        else:
            if product.sku in first_index:
                problems.append(ConfigError(
                    f"duplicate sku {product.sku!r} (first at $[{first_index[product.sku]}])",
                    file=file, path=f"$[{index}].sku"))
            else:
                first_index[product.sku] = index
                products.append(product)
        if len(problems) >= MAX_REPORTED_PROBLEMS:
            break
    if len(problems) == 1:
        raise problems[0]
    if problems:
        capped = len(problems) >= MAX_REPORTED_PROBLEMS
        summary = f"{file}: {len(problems)} bad products" + (" (stopped counting there)" if capped else "")
        raise ConfigError(summary, file=file, path=problems[0].path, problems=problems)
    return Catalog(products)
