"""The product catalog: what strategies may recommend and the renderer may show.

A catalog is immutable once built: the runtime loads a new one on reload and swaps it, so
strategies can memoize sorted views of it (``Catalog.memoize``) without locks on the read
path. Product URLs are checked when the catalog is loaded (only ``http(s)://`` and
site-relative ``/...`` URLs), and again by the renderer: defence in depth against a
``javascript:`` link sneaking into a widget.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec

from .dates import EXAMPLES, InstantError, as_utc, read_instant_fields
from .errors import ConfigError, suggest

__all__ = ["Product", "Catalog", "load_catalog_file", "is_safe_url"]

T = TypeVar("T")

#: Keep at most this many bad products of one file (a broken export can have thousands);
#: all of them are counted.
MAX_REPORTED_PROBLEMS = 1000

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
        "When the product was added (for new arrivals); a date alone is midnight UTC, a time "
        "without an offset UTC (every form config.md#dates lists)."))] = None
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
    if product.created_at is not None and product.created_at.tzinfo is not timezone.utc:
        return msgspec.structs.replace(product, created_at=as_utc(product.created_at))
    return product


class Catalog:
    """Products by sku and by category; immutable.

    A catalog loaded from a file also knows what it left out: ``problems`` (a ``ConfigError``
    per bad product, the first ``MAX_REPORTED_PROBLEMS``) and ``rejected`` (how many in all).

    >>> cat = Catalog([Product(sku="a", name="A", url="/a", price=5, category="makeup")])
    >>> cat.get("a").name, len(cat), [p.sku for p in cat.by_category("makeup")]
    ('A', 1, ['a'])
    """

    __slots__ = ("_by_sku", "_by_category", "_memo", "_lock", "problems", "rejected", "get", "unavailable",
                 "__weakref__")

    #: The product of ``sku``, or None (the dict's own ``get``: strategies call it per candidate,
    #: and a C call adds no Python frame to the request path).
    get: Callable[[str], Product | None]
    #: Skus of the products out of stock (``Product.in_stock`` false), settled once: candidate
    #: filters test membership instead of asking each product.
    unavailable: frozenset[str]

    def __init__(self, products: Iterable[Product] = (), *, problems: Sequence[ConfigError] = (),
                 rejected: int | None = None) -> None:
        by_sku: dict[str, Product] = {}
        by_category: dict[str, list[Product]] = {}
        for product in products:
            if product.sku in by_sku:
                raise ValueError(f"duplicate sku {product.sku!r}")
            product = _as_utc(product)
            by_sku[product.sku] = product
            by_category.setdefault(product.category, []).append(product)
        self._by_sku = by_sku
        self.get = by_sku.get
        self.unavailable = frozenset(sku for sku, product in by_sku.items() if not product.in_stock)
        self._by_category = {cat: tuple(items) for cat, items in by_category.items()}
        self._memo: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.problems: tuple[ConfigError, ...] = tuple(problems)
        self.rejected = len(self.problems) if rejected is None else rejected

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
_REQUIRED = tuple(f.encode_name for f in msgspec.structs.fields(Product) if f.required)


def _is_list(t: Any) -> bool:
    if isinstance(t, msgspec.inspect.Metadata):  # Annotated[..., Meta(description=...)]
        t = t.type
    return isinstance(t, (msgspec.inspect.TupleType, msgspec.inspect.VarTupleType, msgspec.inspect.ListType))


# Fields that hold a list: a CSV cell holds them ``;``-separated.
_LIST_FIELDS = frozenset(f.name for f in msgspec.inspect.type_info(Product).fields if _is_list(f.type))
#: An accepted value of each field, shown with a problem in it.
FIELD_EXAMPLES = {
    "sku": '"SER-1"', "name": '"Hydrating serum"', "url": '"/p/ser-1" or "https://shop.example/p/ser-1"',
    "price": "52.0", "category": '"skincare"', "image": '"https://cdn.example/ser-1.jpg"',
    "compare_at_price": "60.0", "created_at": EXAMPLES, "tags": '["new", "vegan"] (in CSV: new;vegan)',
    "stock": "12",
}
_AT = re.compile(r" - at `(\$[^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]*)`")
_decode_product = msgspec.json.Decoder(Product).decode


def _problem(exc: msgspec.ValidationError, where: _Where) -> ConfigError:
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
        suggestion = suggest(unknown.group(1), _PRODUCT_FIELDS)
    elif missing := _MISSING.search(message):
        inner += f".{missing.group(1)}"
    if not unknown and inner.startswith(".") and inner[1:].split("[")[0] in FIELD_EXAMPLES:
        message += f" (e.g. {FIELD_EXAMPLES[inner[1:].split('[')[0]]})"
    return where.error(message, inner, suggestion)


class _Where:
    """Where one product is: its file, index, line and sku, for the problem it may have."""

    __slots__ = ("file", "index", "line", "sku")

    def __init__(self, file: str, index: int, line: int | None, item: Any) -> None:
        self.file, self.index, self.line = file, index, line
        sku = item.get("sku") if isinstance(item, dict) else getattr(item, "sku", None)
        self.sku = sku if isinstance(sku, str) and sku else None

    def error(self, message: str, inner: str = "", suggestion: str | None = None) -> ConfigError:
        which = f"bad product {self.sku!r}" if self.sku else "bad product"
        return ConfigError(f"{which}: {message}", file=self.file, path=f"$[{self.index}]{inner}",
                           line=self.line, suggestion=suggestion)


def _product(item: Any, *, from_text: bool) -> Product:
    """One product. msgspec reads RFC 3339 ``created_at`` itself; a product it refuses is
    converted again with ``created_at`` read by ``segmint.engine.dates`` (a date alone, ...).
    ``from_text``: the values are CSV text, converted to the field types (``"52.0"``)."""
    try:
        return msgspec.convert(item, Product, strict=not from_text)
    except msgspec.ValidationError:
        read = read_instant_fields(item, ("created_at",))
        if read is item:
            raise
    return msgspec.convert(read, Product, strict=not from_text)


# -- reading files: each yields (index, line, item) -----------------------------------------------

_Items = Iterator[tuple[int, int | None, Any]]


class _RowError(ValueError):
    """A CSV row that cannot be a product whatever its cells (the wrong number of them)."""

    def __init__(self, message: str, sku: str | None) -> None:
        super().__init__(message)
        self.sku = sku


def _json_items(raw: bytes, file: str) -> _Items:
    try:
        items = msgspec.json.decode(raw, type=list[msgspec.Raw])
    except msgspec.DecodeError as exc:
        raise ConfigError(f"catalog is not a JSON list of products: {exc}", file=file) from exc
    # A line for each product: its text is found after the previous one's (only commas and
    # whitespace lie between), and newlines are counted up to it.
    pos, line_pos, line = 0, 0, 1
    for index, item in enumerate(items):
        text = bytes(item)
        pos = raw.find(text, pos)
        line += raw.count(b"\n", line_pos, pos)
        line_pos = pos
        pos += len(text)
        try:
            yield index, line, _decode_product(item)
        except msgspec.ValidationError:
            yield index, line, msgspec.json.decode(item)  # the slow path names the problem


def _csv_items(raw: bytes, file: str) -> _Items:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"catalog is not UTF-8 text: {exc}", file=file) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    for name in header:
        if name not in _PRODUCT_FIELDS:
            raise ConfigError(f"unknown column {name!r} in the CSV header; the columns are product fields: "
                              f"{', '.join(_PRODUCT_FIELDS)}", file=file, line=1, path=f"$.{name}",
                              suggestion=suggest(name, _PRODUCT_FIELDS))
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise ConfigError(f"the CSV header lacks the column(s) {', '.join(missing)}; e.g. "
                          f"{','.join(_REQUIRED)}", file=file, line=1)
    start = reader.line_num + 1
    for index, row in enumerate(reader):
        line, start = start, reader.line_num + 1
        if len(row) != len(header):
            sku = row[header.index("sku")] if len(row) > header.index("sku") else None
            yield index, line, _RowError(f"expected {len(header)} columns, got {len(row)}", sku)
            continue
        item: dict[str, Any] = {}
        for name, cell in zip(header, row):
            cell = cell.strip()
            if name in _LIST_FIELDS:
                item[name] = [part.strip() for part in cell.split(";") if part.strip()]
            elif cell:  # an empty cell is a missing value: the default, or an error if required
                item[name] = cell
        yield index, line, item


_READERS: dict[str, Callable[[bytes, str], _Items]] = {".json": _json_items, ".csv": _csv_items}


def load_catalog_file(path: str | Path) -> Catalog:
    """Load the products of a JSON list or a CSV file (chosen by the extension).

    A bad product does not stop the others: the catalog holds the good ones, and each bad
    one is a ``ConfigError`` in ``catalog.problems`` (file, line, ``$[index].field``, sku,
    reason; the first ``MAX_REPORTED_PROBLEMS``) and counted in ``catalog.rejected``. The
    runtime serves the good ones; ``segmint check`` reports every problem.

    Raises ``ConfigError`` (with ``file``) for what spoils the whole file: an unsupported
    extension, a missing file, a file that is not a JSON list or has a bad CSV header.
    """
    file = str(path)
    read = _READERS.get(Path(path).suffix.lower())
    if read is None:
        raise ConfigError(f"unsupported catalog format {Path(path).suffix or '(no extension)'!r}: "
                          f"give a .json file (a list of products) or a .csv file (a header of "
                          f"product fields)", file=file)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read catalog file: {exc.strerror or exc}", file=file) from exc

    from_text = read is _csv_items
    products: list[Product] = []
    problems: list[ConfigError] = []
    rejected = 0
    first_index: dict[str, int] = {}
    for index, line, item in read(raw, file):
        where = _Where(file, index, line, item)
        problem = None
        if isinstance(item, Product):
            product = item
        elif isinstance(item, _RowError):
            problem = where.error(str(item))
        else:
            try:
                product = _product(item, from_text=from_text)
            except msgspec.ValidationError as exc:
                problem = _problem(exc, where)
            except InstantError as exc:
                problem = where.error(exc.reason, f".{exc.field}")
        if problem is None:
            if product.sku in first_index:
                problem = where.error(f"duplicate sku (first at $[{first_index[product.sku]}])", ".sku")
            else:
                first_index[product.sku] = index
                products.append(product)
                continue
        rejected += 1
        if len(problems) < MAX_REPORTED_PROBLEMS:
            problems.append(problem)
    return Catalog(products, problems=problems, rejected=rejected)
