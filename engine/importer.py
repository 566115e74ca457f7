"""Bulk import of historic orders from CSV or JSONL, streaming in constant memory.

The format is JSONL when the file name ends in ``.jsonl``/``.ndjson`` or the file starts
with ``{``, else CSV. CSV: a header row naming the columns ``order_id, customer_id, at, sku, quantity, price``
(required) and ``category, discount, coupon`` (optional), in any order; one row per order
line, the lines of one order consecutive (an order id seen again later is a *duplicate*,
as is an order already in the store). JSONL: one ``order`` event per line, in the public
JSON form of ``events.py`` (``"type"`` may be omitted). ``at`` is required; both formats
take the forms ``segmint.engine.dates`` reads (``2025-03-01``, ``2025-03-01T10:00:00Z``,
``2025-03-01 10:00+01:00``; no offset is UTC).

A bad row rejects its whole order (a partial order would misstate spend); the report
lists rejected rows by line number with the reason (the first ``MAX_REPORTED``, plus a
count). Orders go to ``store.append`` in batches of about ``batch_size`` lines, so each
batch is one transaction and memory does not grow with the file.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from .dates import InstantError, read_instant
from .errors import EventError
from .events import Order, OrderItem, decode_event
from .stores.base import BulkWritingStore, ProfileStore

__all__ = ["import_orders", "ImportReport", "MAX_REPORTED", "CSV_COLUMNS"]

MAX_REPORTED = 1000
REQUIRED = ("order_id", "customer_id", "at", "sku", "quantity", "price")
CSV_COLUMNS = REQUIRED + ("category", "discount", "coupon")


@dataclass
class ImportReport:
    lines: int = 0                 # data lines read (CSV rows or JSONL lines)
    orders: int = 0                # orders stored
    duplicates: int = 0            # orders skipped: order_id already stored
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), bounded
    rejected_count: int = 0        # all rejected lines, reported or not
    seconds: float = 0.0

    def reject(self, line: int, message: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REPORTED:
            self.rejected.append((line, message))

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


class _Bad(ValueError):
    pass


def _id(value: str, name: str) -> str:
    if not value or len(value) > 128:
        raise _Bad(f"{name}: must be 1-128 characters, got {value!r}")
    return value


def _number(value: str, name: str, *, integer: bool = False, default: float | None = None) -> float:
    if not value and default is not None:
        return default
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise _Bad(f"{name}: must be {kind} >= 0, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise _Bad(f"{name}: must be >= 0, got {value!r}")
    return number


def _time(value: str) -> datetime:
    try:
        return read_instant(value, "at")
    except InstantError as exc:
        raise _Bad(str(exc)) from None


class _Counter:
    """Iterate a binary file as text lines, counting bytes for the progress callback.

    A line that is not UTF-8 is passed on decoded with replacement characters and its number
    noted in ``undecodable``, so the reader rejects that line (naming it) instead of the
    whole import stopping at it.
    """

    def __init__(self, handle) -> None:
        self.handle = handle
        self.bytes = 0
        self.undecodable: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for number, raw in enumerate(self.handle, 1):
            self.bytes += len(raw)
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                self.undecodable.add(number)
                text = raw.decode("utf-8", "replace")
            yield text

    def bad_text(self, last_line: int) -> bool:
        """True when a line up to ``last_line`` (the end of the current row) was not UTF-8;
        those lines are forgotten, so each counts for one row."""
        if not self.undecodable or min(self.undecodable) > last_line:
            return False
        self.undecodable = {n for n in self.undecodable if n > last_line}
        return True


def _csv_orders(lines: _Counter, report: ImportReport) -> Iterator[Order]:
    reader = csv.reader(lines)
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise EventError(f"the CSV header lacks the column(s) {', '.join(missing)}; expected "
                         f"{', '.join(CSV_COLUMNS)}", field=missing[0])
    col = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    i_order, i_customer, i_at, i_sku = col["order_id"], col["customer_id"], col["at"], col["sku"]
    i_qty, i_price = col["quantity"], col["price"]
    i_cat, i_disc, i_coupon = col.get("category"), col.get("discount"), col.get("coupon")
    width = len(header)

    current: Order | None = None
    bad_order: str | None = None
    for row in reader:
        line = reader.line_num
        report.lines += 1
        try:
            if lines.bad_text(line):
                raise _Bad("not UTF-8 text")
            if len(row) != width:
                raise _Bad(f"expected {width} columns, got {len(row)}")
            order_id = _id(row[i_order], "order_id")
            if order_id == bad_order:
                report.reject(line, f"order {order_id} was rejected on an earlier line")
                continue
            price = _number(row[i_price], "price")
            discount = _number(row[i_disc], "discount", default=0.0) if i_disc is not None else 0.0
            if discount > price:
                raise _Bad(f"discount: {discount} per unit is larger than the price {price}")
            item = OrderItem(
                sku=_id(row[i_sku], "sku"),
                category=(row[i_cat] or None) if i_cat is not None else None,
                quantity=int(_number(row[i_qty], "quantity", integer=True)),
                price=price, discount=discount,
            )
            if current is not None and current.order_id == order_id:
                if row[i_customer] != current.customer_id:
                    raise _Bad(f"customer_id: {row[i_customer]!r} differs from the order's first "
                               f"line ({current.customer_id!r})")
                current.items.append(item)
                continue
            at = _time(row[i_at])
            customer = _id(row[i_customer], "customer_id")
        except _Bad as exc:
            report.reject(line, f"{exc} (order skipped)")
            if row and len(row) > i_order and current is not None and current.order_id == row[i_order]:
                current = None  # drop the partial order
            bad_order = row[i_order] if len(row) > i_order else None
            continue
        if current is not None:
            yield current
        bad_order = None
        coupon = (row[i_coupon] or None) if i_coupon is not None else None
        current = Order(order_id=order_id, customer_id=customer, at=at, items=[item], coupon=coupon)
    if current is not None:
        yield current


def _jsonl_orders(lines: _Counter, report: ImportReport) -> Iterator[Order]:
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        report.lines += 1
        if lines.bad_text(number):
            report.reject(number, "not UTF-8 text")
            continue
        try:
            order = decode_event(text, Order)
        except msgspec.DecodeError as exc:  # not JSON (a ValidationError is an EventError)
            report.reject(number, f"not JSON: {exc}")
            continue
        except EventError as exc:
            report.reject(number, f"{exc.field}: {exc.message}" if exc.field else exc.message)
            continue
        if order.at is None:
            report.reject(number, "at: required for imported orders")
            continue
        yield order


def import_orders(
    path: str | os.PathLike[str], store: ProfileStore, *, batch_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import the orders of a CSV or JSONL file into ``store``.

    ``progress(bytes_read, total_bytes)`` is called after each batch (for a progress bar).
    Raises ``EventError`` when the file cannot be read as orders at all (bad CSV header).
    """
    # The cyclic GC would walk every live object each few thousand allocations, and an
    # import allocates millions of (acyclic, refcount-freed) objects: pause it (~25 % faster).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    # Stores that can (SQLite) sync once at the end rather than per batch: the import is
    # idempotent (orders dedupe by order_id), so a crash midway is repaired by re-running it.
    try:
        with store.bulk_writes() if isinstance(store, BulkWritingStore) else contextlib.nullcontext():
            return _import(path, store, batch_size, progress)
    finally:
        if gc_was_enabled:
            gc.enable()


def _import(path, store, batch_size, progress) -> ImportReport:
    started = time.perf_counter()
    report = ImportReport()
    total = os.path.getsize(path)
    name = os.fspath(path).lower()
    with open(path, "rb") as handle:
        lines = _Counter(handle)
        first = handle.peek(64).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if name.endswith((".jsonl", ".ndjson")) or first == b"{":
            orders = _jsonl_orders(lines, report)
        else:
            orders = _csv_orders(lines, report)
        batch: list[Order] = []
        batch_lines = 0
        for order in orders:
            batch.append(order)
            batch_lines += len(order.items)
            if batch_lines >= batch_size:
                _flush(store, batch, report, progress, lines.bytes, total)
                batch, batch_lines = [], 0
        _flush(store, batch, report, progress, lines.bytes, total)
    report.seconds = time.perf_counter() - started
    return report


def _flush(store, batch, report, progress, done, total) -> None:
    if batch:
        result = store.append(batch)
        report.orders += result.stored
        report.duplicates += result.duplicates
    if progress is not None:
        progress(done, total)
