"""Reading the event log for a report: ``(at, kind, event)`` rows for ``Attributor.feed_rows``,
as cheaply as the store allows.

A report reads millions of events and needs few of their fields. ``store.iter_events``
decodes whole events (every field, ``at`` as a datetime), which is most of what a report
costs besides attribution itself. A store can offer more: ``AttributionLog``, the optional
capability to read the attribution rows directly. ``attribution_log(store)`` picks the
cheapest reader there is:

- the store itself, when it implements ``AttributionLog``;
- for a ``SQLiteStore`` file, ``SQLiteAttributionLog``: it reads the ``events`` table on a
  connection of its own, takes ``at`` from its column and decodes only the fields attribution
  reads (``_Exposure``, ``_Order``, ``_Identify``: msgspec skips the others unparsed);
- otherwise ``iter_events`` (a Redis or memory store, or a store wrapped by a caller that
  watches its reads).

Every reader gives the same rows in the same order (``at``, then log position), so the
report is the same whichever reads (a test checks it).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Generator, Iterator
from itertools import chain
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import msgspec

from ..config.schema import Reader
from ..errors import ConfigError
from ..stores.base import ProfileStore
from ..stores.sqlite import SQLiteStore
from .attribution import ATTRIBUTION_EVENT_TYPES, CLICK, IDENTIFY, IMPRESSION, ORDER, feed_kind

__all__ = ["AttributionLog", "Row", "Rows", "SQLiteAttributionLog", "attribution_log"]

log = logging.getLogger("segmint.analytics")

#: ``(at, kind, event)``: seconds since the epoch, an ``attribution`` kind, the event's fields.
Row = tuple[float, int, Any]


class Rows(Protocol):
    """The rows a read gives (a generator is one): iterate them; ``close()`` when the read is
    left before its end (a reader may hold a thread and a connection until then)."""

    def __iter__(self) -> Iterator[Row]: ...

    def __next__(self) -> Row: ...

    def close(self) -> None: ...


@runtime_checkable
class AttributionLog(Protocol):
    """A store (or a view of one) that reads attribution rows without decoding whole events."""

    def attribution_rows(self, *, since: float | None, until: float, batch_size: int,
                         window: float | None = None) -> Rows:
        """The rows of the attribution events (``ATTRIBUTION_EVENT_TYPES``) with
        ``since <= at < until`` (``since`` None: from the start) in log order: by ``at``, then
        by when they were logged; ``batch_size``: how many the store reads at once. A reader
        may fold impressions no more than ``window`` seconds apart into ``EXPOSURES`` rows
        (the attribution window; ``attribution.Exposures`` says which), and may start
        computing them when called, before they are iterated."""


# The fields attribution reads; msgspec skips the others (``at`` comes from the row).
# gc=False: millions are made and dropped, none holds a cycle, so the collector need not track them.
class _Exposure(msgspec.Struct, kw_only=True, gc=False):
    visitor_id: str | None = None
    customer_id: str | None = None
    campaign: str
    variant: str | None = None
    skus: list[str] = []


class _Line(msgspec.Struct, kw_only=True, gc=False):
    sku: str
    quantity: int = 1
    price: float = 0.0
    discount: float = 0.0


class _Order(msgspec.Struct, kw_only=True, gc=False):
    visitor_id: str | None = None
    customer_id: str | None = None
    items: list[_Line]
    total: float | None = None


class _Identify(msgspec.Struct, kw_only=True, gc=False):
    visitor_id: str | None = None
    customer_id: str | None = None


class _Impression(_Exposure, tag="impression", tag_field="type"):
    pass


class _Click(_Exposure, tag="click", tag_field="type"):
    pass


class _OrderEvent(_Order, tag="order", tag_field="type"):
    pass


class _IdentifyEvent(_Identify, tag="identify", tag_field="type"):
    pass


_decode = msgspec.msgpack.Decoder(_Impression | _Click | _OrderEvent | _IdentifyEvent).decode
_KIND_OF = {"impression": IMPRESSION, "click": CLICK, "order": ORDER, "identify": IDENTIFY}
assert set(_KIND_OF) == set(ATTRIBUTION_EVENT_TYPES)
#: The row kind, computed by SQLite (no type string reaches Python), and the types read.
_KIND_SQL = "CASE type " + " ".join(f"WHEN '{t}' THEN {k}" for t, k in _KIND_OF.items()) + " END"
_TYPES_SQL = f"type IN ({', '.join(repr(t) for t in _KIND_OF)})"
_PAGE = (f"SELECT id, at, {_KIND_SQL}, data FROM events WHERE (at, id) > (?, ?) AND at < ? AND {_TYPES_SQL}"
         " ORDER BY at, id LIMIT ?")


class SQLiteAttributionLog:
    """``AttributionLog`` over a ``SQLiteStore`` file, read on a connection of its own
    (read-only; WAL readers never wait for writers). The query is the store's
    ``iter_events`` one: a row-value cursor over the ``events_by_time (at, id)`` index."""

    def __init__(self, path: str) -> None:
        self.path = path

    def attribution_rows(self, *, since: float | None, until: float, batch_size: int,
                         window: float | None = None) -> Generator[Row, None, None]:
        yield from chain.from_iterable(self._pages(since, until, batch_size))

    def _pages(self, since: float | None, until: float, batch_size: int) -> Iterator[Iterator[Row]]:
        # Each page is decoded lazily, row by row, as attribution takes it (map and zip): a
        # decoded event is dropped right after use, so it never outlives a young collection.
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(self.path))}?mode=ro", uri=True)
        try:
            at, last_id = (float("-inf") if since is None else since), -1
            while True:
                rows = conn.execute(_PAGE, (at, last_id, until, batch_size)).fetchall()
                if not rows:
                    return
                _, ats, kinds, blobs = zip(*rows)
                yield zip(ats, kinds, map(_decode, blobs))
                if len(rows) < batch_size:
                    return
                last_id, at = rows[-1][0], rows[-1][1]
        finally:
            conn.close()


class _StoreEvents:
    """``AttributionLog`` over ``store.iter_events``: whole events, any store."""

    def __init__(self, store: ProfileStore) -> None:
        self.store = store

    def attribution_rows(self, *, since: float | None, until: float, batch_size: int,
                         window: float | None = None) -> Generator[Row, None, None]:
        for event in self.store.iter_events(since=since, types=ATTRIBUTION_EVENT_TYPES, batch_size=batch_size):
            at = event.at.timestamp()  # type: ignore[union-attr]
            if at >= until:
                return
            yield at, feed_kind(event), event


def attribution_log(store: ProfileStore, reader: Reader = "python") -> AttributionLog:
    """The reader of ``store``'s attribution rows. A store (or a view of one) that implements
    ``AttributionLog`` reads its own. Otherwise, ``reader`` "python": the cheapest reader there is
    (see the module docstring); "duckdb": the columnar projection (``columnar.py``), which needs
    the ``analytics`` extra (a ``ConfigError`` naming it) and a SQLite store file (any other
    store is read in Python, with a warning); "auto": the projection when both are there."""
    if isinstance(store, AttributionLog):
        return store
    sqlite_file = type(store) is SQLiteStore and store.path != ":memory:"
    if reader != "python":
        from .columnar import ColumnarLog, duckdb_available

        if reader == "duckdb" and not duckdb_available():
            raise ConfigError('reader "duckdb" needs DuckDB: pip install "segmint[analytics]"',
                              path="$.analytics.reader", suggestion='reader = "python" or "auto"')
        if sqlite_file and duckdb_available():
            return ColumnarLog(store.path)  # type: ignore[union-attr]
        if reader == "duckdb":
            log.warning('reader "duckdb" reads a projection of a SQLite store file; %s is read in Python',
                        getattr(store, "url", None) or type(store).__name__)
    if sqlite_file:
        return SQLiteAttributionLog(store.path)  # type: ignore[union-attr]
    return _StoreEvents(store)
