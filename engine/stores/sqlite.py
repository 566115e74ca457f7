"""``SQLiteStore``: the embedded default store, one file, WAL, safe for several processes.

Tables: ``meta(name, value)`` (schema version, RFM thresholds, ...), ``profiles(key, data)``
(msgpack), ``links(visitor_id, customer_id)``, ``orders(order_id, at)`` (dedupe) and the
append-only log ``events(id, at, type, key, data)``.

Concurrency: each ``append`` is one ``BEGIN IMMEDIATE`` transaction that reads the affected
profiles, folds and writes them back. IMMEDIATE takes the write lock *before* reading, so
two processes folding events into the same customer serialize instead of overwriting each
other's update. Waiting writers retry for ``busy_timeout`` seconds. Reads use WAL snapshots
and never wait for writers. Each thread gets its own connection (``sqlite3`` connections
must not be shared across threads); an in-memory database (``":memory:"``) has a single
connection guarded by a lock instead.

A file removed or replaced while the store is open: an open connection would go on writing
into the removed file, so each write transaction first checks that the path is still the
file the connection opened. If not, the write fails (``StoreError``: nothing is
acknowledged), the connection is dropped, and the next one opens whatever is at the path
again without creating an empty file there: writing resumes once the file is restored.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from urllib.parse import quote

import msgspec

from ..errors import StoreError
from ..events import Event
from ..profile import Profile
from .base import REPORT_STATE_META_PREFIX, RESERVED_META, AppendResult, PersonalData, resolve_person
from .batch import fold_batch

__all__ = ["SQLiteStore", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
#: Bytes of the database file each connection reads through a memory map (see SQLiteStore).
DEFAULT_MMAP_SIZE = 256 * 2**20
_CHUNK = 500  # ids per IN (...) query

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (key TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS links (
    visitor_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL,
    data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at, id);
"""
_LOAD_CUSTOMER = "SELECT data FROM profiles WHERE key = ?"
_LOAD_VISITOR = (
    "SELECT data FROM profiles WHERE key = coalesce("
    "(SELECT 'c:' || customer_id FROM links WHERE visitor_id = ?1), 'v:' || ?1)"
)

_encode = msgspec.msgpack.Encoder().encode
_decode_profile = msgspec.msgpack.Decoder(Profile).decode
_decode_event = msgspec.msgpack.Decoder(Event).decode


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (so ``close()`` can find them all)."""

    #: (st_dev, st_ino) of the database file when this connection opened it.
    file_id: tuple[int, int] | None = None


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    values = list(values)
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


class _Transaction:
    """The ``BatchSource`` of one append: bulk reads inside the open transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _select(self, sql: str, ids: Iterable[str]) -> list[tuple]:
        rows: list[tuple] = []
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows += self.conn.execute(sql.format(marks), chunk).fetchall()
        return rows

    def existing_orders(self, order_ids: set[str]) -> set[str]:
        return {r[0] for r in self._select("SELECT order_id FROM orders WHERE order_id IN ({})", order_ids)}

    def links(self, visitor_ids: set[str]) -> dict[str, str]:
        return dict(self._select(
            "SELECT visitor_id, customer_id FROM links WHERE visitor_id IN ({})", visitor_ids))

    def load_many(self, keys: set[str]) -> dict[str, Profile]:
        rows = self._select("SELECT key, data FROM profiles WHERE key IN ({})", keys)
        return {key: _decode_profile(data) for key, data in rows}


class SQLiteStore:
    """A ``ProfileStore`` in one SQLite file (or ``":memory:"``).

    ``busy_timeout`` (seconds) is how long a writer waits for another process's
    transaction; ``synchronous`` is SQLite's durability level (``FULL``: an acknowledged
    append survives a power cut; ``NORMAL``: it survives a process crash).

    ``mmap_size`` (bytes, default 256 MiB; 0 turns it off) lets ``load`` read the file
    through a memory map instead of a ``pread`` system call per page: a profile read that
    misses the cache walks two B-trees of 3-4 pages each, and the syscalls were a third of
    its time. ``load`` has a connection of its own per thread for this, so bulk reads (a
    scan of every profile, an import) do not map the whole file. The mapped pages are the
    kernel's page cache, shared by every process reading the file; they show in a process's
    RSS as file-backed memory (``RssFile``), not as heap.
    """

    def __init__(
        self, path: str, *, busy_timeout: float = 10.0, synchronous: str = "FULL",
        mmap_size: int = DEFAULT_MMAP_SIZE, clock: Callable[[], datetime] | None = None,
    ) -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        if isinstance(mmap_size, bool) or not isinstance(mmap_size, int) or mmap_size < 0:
            raise ValueError(f"mmap_size must be a number of bytes >= 0, not {mmap_size!r}")
        self.path = path
        self.url = path if path == ":memory:" else f"sqlite:///{path}"
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous.upper()
        self._mmap_size = mmap_size
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._memory = path == ":memory:"
        self._local = threading.local()
        self._all: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.RLock() if self._memory else None
        self._shared: _Connection | None = None
        self._closed = False
        self._opened = False  # after the first connection, never create the file again
        with self._connection() as conn:
            self._init_schema(conn)
        self._opened = True

    # -- connections --
    def _connect(self, *, mmap: bool = False) -> _Connection:
        target, uri = self.path, False
        if self._opened and not self._memory:  # mode=rw: a missing file is an error, not a new file
            target, uri = f"file:{quote(os.path.abspath(self.path))}?mode=rw", True
        try:
            conn = sqlite3.connect(
                target, timeout=self._busy_timeout, isolation_level=None,
                check_same_thread=False, factory=_Connection, uri=uri,
            )
            if not self._memory:
                conn.file_id = _file_id(self.path)
                conn.execute("PRAGMA journal_mode=WAL")
                if mmap:
                    conn.execute(f"PRAGMA mmap_size={self._mmap_size}")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database: {exc}", store=self.url) from exc
        self._all.add(conn)
        return conn

    def _thread_connection(self, *, lookup: bool = False) -> sqlite3.Connection:
        """This thread's connection; with ``lookup``, the one ``load`` reads through the
        memory map (a separate one, so bulk reads do not map the whole file)."""
        if self._closed:
            raise StoreError("the store is closed", store=self.url)
        slot = "lookup" if lookup else "conn"
        conn = getattr(self._local, slot, None)
        if conn is None:
            conn = self._connect(mmap=lookup and self._mmap_size > 0)
            setattr(self._local, slot, conn)
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (or the shared one, locked); sqlite3 errors -> StoreError."""
        try:
            if self._lock is None:
                yield self._thread_connection()
                return
            with self._lock:
                if self._closed:
                    raise StoreError("the store is closed", store=self.url)
                if self._shared is None:
                    self._shared = self._connect()
                yield self._shared
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}", store=self.url) from exc

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Relaxed durability for a bulk load from this thread (``segmint import``).

        Commits are not synced one by one (WAL with ``synchronous=NORMAL``); a checkpoint at
        the end syncs everything at once. A crash midway loses at most the unsynced tail,
        which re-running the import restores: orders are deduplicated by ``order_id``.
        """
        with self._connection() as conn:
            conn.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint (and fsync) every ~40 MB of WAL rather than every ~4 MB.
            autocheckpoint = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            conn.execute("PRAGMA wal_autocheckpoint=10000")
        try:
            yield
        finally:
            with self._connection() as conn:
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
                conn.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
                conn.execute("PRAGMA wal_checkpoint(FULL)")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"cannot start a write transaction: {exc}", store=self.url) from exc
            stale = conn.file_id is not None and _file_id(self.path) != conn.file_id
            try:
                if stale:
                    raise StoreError("the database file was removed or replaced since it was opened; "
                                     "writing resumes when it is back", store=self.url)
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (e.g. "database or disk is full"): a
                # second ROLLBACK would raise and hide the real cause.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if stale:
                    self._drop(conn)
                raise

    def _drop(self, conn: sqlite3.Connection) -> None:
        """Close ``conn`` so that this thread opens the path afresh next time."""
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
            lookup = getattr(self._local, "lookup", None)
            if lookup is not None:  # it reads the same replaced file
                self._local.lookup = None
                lookup.close()
        conn.close()

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    found = SCHEMA_VERSION
                else:
                    found = int(row[0])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"not a usable segmint database: {exc}", store=self.url) from exc
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"the file was written by a newer segmint (schema version {found}; this "
                f"version reads up to {SCHEMA_VERSION}): upgrade segmint or use another file",
                store=self.url,
            )

    # -- ProfileStore --
    def load(self, *, visitor_id: str | None = None, customer_id: str | None = None) -> Profile | None:
        if customer_id:
            sql, args = _LOAD_CUSTOMER, ("c:" + customer_id,)
        elif visitor_id:
            sql, args = _LOAD_VISITOR, (visitor_id,)
        else:
            raise ValueError("load() needs a visitor_id or a customer_id")
        if self._lock is None:  # the hot path: no context manager, one statement
            try:
                row = self._thread_connection(lookup=True).execute(sql, args).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"database error: {exc}", store=self.url) from exc
        else:
            with self._connection() as conn:
                row = conn.execute(sql, args).fetchone()
        return None if row is None else _decode_profile(row[0])

    def append(self, events: Sequence[Event]) -> AppendResult:
        if not events:
            return AppendResult()
        with self._write() as conn:
            plan = fold_batch(events, _Transaction(conn), now=self._clock())
            conn.executemany(
                "INSERT INTO events (at, type, key, data) VALUES (?, ?, ?, ?)",
                [(e.at.timestamp(), type(e).__struct_config__.tag, key, _encode(e))  # type: ignore[union-attr]
                 for e, key in plan.logged],
            )
            conn.executemany("INSERT INTO orders VALUES (?, ?)", plan.orders)
            conn.executemany("INSERT OR REPLACE INTO links VALUES (?, ?)", plan.links.items())
            conn.executemany("DELETE FROM profiles WHERE key = ?", [(k,) for k in plan.deleted])
            conn.executemany(
                "INSERT INTO profiles VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET data = excluded.data",
                [(k, _encode(p)) for k, p in plan.profiles.items()],
            )
        return plan.result

    def iter_profiles(self, *, batch_size: int = 1000) -> Iterator[Profile]:
        last = ""
        while True:
            with self._connection() as conn:
                rows = conn.execute(
                    "SELECT key, data FROM profiles WHERE key > ? ORDER BY key LIMIT ?",
                    (last, batch_size),
                ).fetchall()
            for _, data in rows:
                yield _decode_profile(data)
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    def count_profiles(self) -> int:
        with self._connection() as conn:
            return conn.execute("SELECT count(*) FROM profiles").fetchone()[0]

    def iter_events(
        self, *, since: datetime | float | None = None, types: Collection[str] | None = None,
        batch_size: int = 1000,
    ) -> Iterator[Event]:
        start = since.timestamp() if isinstance(since, datetime) else since
        type_filter, type_args = "", []
        if types is not None:
            type_args = list(types)
            if not type_args:
                return
            type_filter = f" AND type IN ({','.join('?' * len(type_args))})"
        at, last_id = (float("-inf") if start is None else start), -1
        while True:
            with self._connection() as conn:
                rows = conn.execute(
                    # A row-value comparison lets SQLite seek the (at, id) index to the cursor;
                    # the equivalent OR form rescans the index from the start for every page.
                    f"SELECT id, at, data FROM events WHERE (at, id) > (?, ?){type_filter}"
                    " ORDER BY at, id LIMIT ?",
                    (at, last_id, *type_args, batch_size),
                ).fetchall()
            for _, _, data in rows:
                yield _decode_event(data)
            if len(rows) < batch_size:
                return
            last_id, at = rows[-1][0], rows[-1][1]

    def event_fingerprint(self, until: float) -> tuple[int, float]:
        """Changes when an event with ``at < until`` is logged or removed: their count and the
        sum of their ids (new rows get new ids). One covering-index scan, no row reads."""
        with self._connection() as conn:
            count, ids = conn.execute("SELECT count(*), total(id) FROM events WHERE at < ?", (until,)).fetchone()
        return count, ids

    def get_meta(self, name: str) -> bytes | None:
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, name: str, value: bytes) -> None:
        if name in RESERVED_META:
            raise ValueError(f"meta name {name!r} is reserved")
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, bytes(value)))

    # -- PersonalDataStore --
    def _person(self, conn: sqlite3.Connection, customer_id: str | None, visitor_id: str | None, *,
                events_after: int = -1) -> tuple[PersonalData, list[tuple[float, int, bytes]]]:
        """The person's data and the ``(at, id, data)`` rows of their events with ``id >
        events_after``, read inside the caller's transaction (``data.events`` is left empty).
        Links by customer and events by key have no index in this schema: table scans."""
        def link_of(visitor: str) -> str | None:
            row = conn.execute("SELECT customer_id FROM links WHERE visitor_id = ?", (visitor,)).fetchone()
            return None if row is None else row[0]

        customer, visitors = resolve_person(
            customer_id, visitor_id, link_of=link_of,
            visitors_of=lambda c: [r[0] for r in conn.execute(
                "SELECT visitor_id FROM links WHERE customer_id = ?", (c,))])
        data = PersonalData(customer_id=customer, visitor_ids=visitors)
        source = _Transaction(conn)
        keys = sorted(data.keys)
        data.profiles = [p for _, p in sorted(source.load_many(set(keys)).items())]
        data.links = source.links(set(visitors))
        rows = source._select(f"SELECT at, id, data FROM events WHERE id > {int(events_after)} AND key IN ({{}})", keys)
        return data, rows

    @staticmethod
    def _report_states(conn: sqlite3.Connection) -> list[str]:
        return [r[0] for r in conn.execute("SELECT name FROM meta WHERE substr(name, 1, ?) = ? ORDER BY name",
                                           (len(REPORT_STATE_META_PREFIX), REPORT_STATE_META_PREFIX))]

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same state of the file."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def export(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        with self._snapshot() as conn:
            data, rows = self._person(conn, customer_id, visitor_id)
            data.report_states = self._report_states(conn)
        data.events = [_decode_event(r[2]) for r in sorted(rows)]
        return data

    def forget(self, *, customer_id: str | None = None, visitor_id: str | None = None) -> PersonalData:
        # Finding the events scans the log: do that in a read snapshot, so the write lock (which
        # appends wait for) is held only to look at what was logged since, and to delete.
        with self._snapshot() as conn:
            seen, rows = self._person(conn, customer_id, visitor_id)
            last = conn.execute("SELECT coalesce(max(id), -1) FROM events").fetchone()[0]
        with self._write() as conn:
            data, newer = self._person(conn, customer_id, visitor_id, events_after=last)
            if data.keys == seen.keys:
                rows += newer
            else:  # linked or relinked meanwhile: older events of another key may belong now
                data, rows = self._person(conn, customer_id, visitor_id)
            conn.executemany("DELETE FROM events WHERE id = ?", [(r[1],) for r in rows])
            conn.executemany("DELETE FROM profiles WHERE key = ?", [(k,) for k in data.keys])
            conn.executemany("DELETE FROM links WHERE visitor_id = ?", [(v,) for v in data.links])
            data.report_states = self._report_states(conn)
            conn.executemany("DELETE FROM meta WHERE name = ?", [(n,) for n in data.report_states])
        data.events = [_decode_event(r[2]) for r in sorted(rows)]
        return data

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        self._closed = True
        for conn in list(self._all):
            conn.close()
        self._shared = None
        self._local = threading.local()
