"""``migrate(source_url, target_url)``: copy a store into another, e.g. SQLite -> Redis.

What is copied, as stored: profiles (a SQLite source is compacted first; a SQLite target
folds the copied log into them again, in event-time order, since the log ids are new; so do a
Redis target's compactors), visitor -> customer links, order ids (the dedupe set),
the event log in its order, and meta blobs (RFM thresholds, ...). Everything streams in
batches of ``batch_size``, so memory stays flat however large the store.

The target must be empty: copying into a live store would mix two histories. Stop the app
servers (or let them queue) while migrating; events appended to the source during the copy
may be missed.

Supported: ``sqlite:///file.db`` (or a path) and ``redis://...`` on either side. The SQLite
side is read and written with plain SQL against the tables described in ``sqlite.py``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import msgspec

from ..errors import StoreError
from ..profile import Profile
from . import open_store
from .base import RESERVED_META
from .redis import RedisStore, decode_event_member
from .sqlite import SQLiteStore

__all__ = ["migrate", "MigrateReport"]

Progress = Callable[[str, int], None]
_decode_profile = msgspec.msgpack.Decoder(Profile).decode
_encode = msgspec.msgpack.Encoder().encode


@dataclass
class MigrateReport:
    """What ``migrate`` copied: counts per kind and how long it took."""

    source: str
    target: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("profiles", "links", "orders", "events", "meta"), 0))
    seconds: float = 0.0

    def __str__(self) -> str:
        what = ", ".join(f"{n} {kind}" for kind, n in self.counts.items())
        return f"copied {what} from {self.source} to {self.target} in {self.seconds:.1f} s"


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(rows, size)):
        yield batch


class _SQLiteSide:
    """Rows of a SQLite store file, read and written with its own connection."""

    def __init__(self, store: SQLiteStore) -> None:
        if store.path == ":memory:":
            raise StoreError("cannot migrate an in-memory SQLite database", store=store.url)
        self.url = store.url
        self.conn = sqlite3.connect(store.path, isolation_level=None)

    def empty(self) -> bool:
        return not any(self.conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("profiles", "events"))

    def _paged(self, table: str, columns: str, order: str, batch_size: int) -> Iterator[tuple]:
        """Rows in ``order`` (a unique key), paged by keyset: ``WHERE (order) > (last)``."""
        width = order.count(",") + 1
        query = f"SELECT {order}, {columns} FROM {table} {{}} ORDER BY {order} LIMIT ?"
        rows = self.conn.execute(query.format(""), (batch_size,)).fetchall()
        while rows:
            for row in rows:
                yield row[width:]
            if len(rows) < batch_size:
                return
            rows = self.conn.execute(query.format(f"WHERE ({order}) > ({', '.join('?' * width)})"),
                                     (*rows[-1][:width], batch_size)).fetchall()

    def rows(self, kind: str, batch_size: int) -> Iterator[Any]:
        if kind == "profiles":
            return (_decode_profile(data) for (data,) in self._paged("profiles", "data", "key", batch_size))
        if kind == "links":
            return self._paged("links", "visitor_id, customer_id", "visitor_id", batch_size)
        if kind == "orders":
            return self._paged("orders", "order_id, at", "order_id", batch_size)
        if kind == "events":
            return self._paged("events", "type, at, key, data", "at, id", batch_size)
        meta = self.conn.execute("SELECT name, value FROM meta").fetchall()
        return iter([(name, value) for name, value in meta if name not in RESERVED_META])

    def write(self, kind: str, batch: list[Any]) -> None:
        sql = {
            # folded_to 0: the copied log (new ids) is folded into these rows again, in event time
            "profiles": "INSERT INTO profiles (key, data) VALUES (?, ?)",
            "links": "INSERT OR REPLACE INTO links VALUES (?, ?)",
            "orders": "INSERT OR REPLACE INTO orders VALUES (?, ?)",
            "events": "INSERT INTO events (type, at, key, data) VALUES (?, ?, ?, ?)",
            "meta": "INSERT OR REPLACE INTO meta VALUES (?, ?)",
        }[kind]
        if kind == "profiles":
            batch = [(p.key, _encode(p)) for p in batch]
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(sql, batch)

    def close(self) -> None:
        self.conn.close()


class _RedisSide:
    """Rows of a ``RedisStore``: SCAN + MGET for links and order ids, pipelines to write."""

    def __init__(self, store: Any) -> None:
        self.store, self.url = store, store.url
        self.client, self.prefix = store.client, store.prefix

    def empty(self) -> bool:
        return self.store.count_profiles() == 0 and next(self.store.iter_events(), None) is None

    def _scan(self, kind: str, batch_size: int) -> Iterator[tuple[str, bytes]]:
        head = f"{self.prefix}{kind}:"
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in head) + "*"
        keys = self.client.scan_iter(match=pattern, count=batch_size)
        for batch in _batches(keys, batch_size):
            for key, value in zip(batch, self.client.mget(batch)):
                if value is not None:
                    yield key[len(head):].decode(), value

    def rows(self, kind: str, batch_size: int) -> Iterator[Any]:
        store = self.store
        if kind == "profiles":
            return store.iter_profiles(batch_size=batch_size)
        if kind == "links":
            return ((visitor, customer.decode()) for visitor, customer in self._scan("l", batch_size))
        if kind == "orders":
            return ((order_id, float(at)) for order_id, at in self._scan("o", batch_size))
        if kind == "events":
            return ((tag, *_at_key_data(decode_event_member(member)))
                    for tag, member in store.iter_event_members(batch_size=batch_size))
        return ((name, value) for name, value in self._scan("meta", batch_size) if name not in RESERVED_META)

    def write(self, kind: str, batch: list[Any]) -> None:
        if kind == "links":
            return self.store.add_links(batch)
        if kind == "events":  # (type, at, profile key, msgpack data), in log order
            return self.store.append_logged(batch)
        p, pipe = self.prefix, self.client.pipeline(transaction=False)
        if kind == "profiles":
            # n 0: the copied log (new stream ids) is folded into these rows again, in event time
            for profile in batch:
                pipe.hset(f"{p}p:{profile.key}", mapping={"n": 0, "profile": _encode(profile)})
            pipe.zadd(f"{p}profiles", {profile.key: 0 for profile in batch})
        elif kind == "orders":
            pipe.mset({f"{p}o:{order_id}": repr(at) for order_id, at in batch})
        else:
            pipe.mset({f"{p}meta:{name}": value for name, value in batch})
        pipe.execute()

    def close(self) -> None:
        self.store.close()


def _at_key_data(decoded: tuple[float, int, str, bytes]) -> tuple[float, str, bytes]:
    at, _seq, key, data = decoded
    return at, key, data


@contextmanager
def _translated(source: Any, target: Any, what: str) -> Iterator[None]:
    """Store failures (SQLite or Redis, either side) become one ``StoreError``."""
    with ExitStack() as stack:
        for side in (source, target):
            if isinstance(side, _RedisSide):
                stack.enter_context(side.store.errors(what))
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{what} failed: {exc}", store=f"{source.url} -> {target.url}") from exc


def _side(url: str) -> _SQLiteSide | _RedisSide:
    store = open_store(url)
    if isinstance(store, SQLiteStore):
        store.catch_up()  # the rows copied are the whole log folded (no event left unfolded)
        side = _SQLiteSide(store)  # SQLiteStore created the schema; plain SQL from here
        store.close()
        return side
    if isinstance(store, RedisStore):
        return _RedisSide(store)
    store.close()
    raise StoreError("migrate copies between sqlite:/// files and redis:// stores", store=url)


def migrate(source_url: str, target_url: str, *, batch_size: int = 1000,
            progress: Progress | None = None) -> MigrateReport:
    """Copy every profile, link, order id, event and meta blob from one store to another.

    ``progress(kind, copied_so_far)`` is called after each batch. Raises ``StoreError``
    when the target is not empty or a store fails.

    >>> migrate("sqlite:///segmint.db", "redis://127.0.0.1:6379/0")  # doctest: +SKIP
    """
    started = time.perf_counter()
    source = _side(source_url)
    try:
        target = _side(target_url)
    except BaseException:
        source.close()
        raise
    try:
        if not target.empty():
            raise StoreError("the target already holds profiles or events: migrate into an empty "
                             "store (another Redis database or prefix, or a new file)", store=target.url)
        report = MigrateReport(source=source.url, target=target.url)
        for kind in report.counts:
            with _translated(source, target, f"copying {kind}"):
                for batch in _batches(source.rows(kind, batch_size), batch_size):
                    target.write(kind, batch)
                    report.counts[kind] += len(batch)
                    if progress is not None:
                        progress(kind, report.counts[kind])
        report.seconds = time.perf_counter() - started
        return report
    finally:
        source.close()
        target.close()
