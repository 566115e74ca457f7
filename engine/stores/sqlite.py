"""``SQLiteStore``: the embedded default store, one file, WAL, safe for several processes.

Tables: ``meta(name, value)`` (schema version, ``compacted_to``, RFM thresholds, ...),
``profiles(key, data, folded_to)`` (msgpack; the profile as folded up to log id
``folded_to``), ``links(visitor_id, customer_id)`` (indexed by customer too: a customer's
key group), ``orders(order_id, at)`` (dedupe) and the append-only log
``events(id, at, type, key, data)``, indexed by time and by routed key.

The log is the truth, the rows a materialized view of it (``batch.py`` has the rules):
``append`` only logs (one short ``BEGIN IMMEDIATE``: dedupe orders, route, store links,
insert the events; no profile is read or written); ``load`` is the row plus its key's
newer events folded on the fly; ``compact`` folds the log into the rows, a bounded chunk
per pass read and folded in a read snapshot (appends go on meanwhile), then every touched
row written once and ``compacted_to`` advanced in one short write transaction (a crashed
pass is redone; a row's ``folded_to`` makes a redone event a no-op; an erasure meanwhile,
counted in ``meta.erasures``, makes the pass start again).
One compactor per file at a time: an exclusive ``flock`` on ``<file>.fold.lock``, released
by the kernel if its process dies. ``iter_profiles`` and ``count_profiles`` first wait for
the rows to catch up with the log.

Schema version 2 (the two indexes, ``folded_to``, ``compacted_to``). A version 1 file is
upgraded when it is opened, in the same transaction that checks the version: the indexes
are built (a few seconds per million events), every row counts as folded up to the newest
event, and, having no ``newest_at`` (version 1 folded in arrival order), is refolded from
the log in event-time order when its next event arrives.

Concurrency: appends and the writes of a compaction pass are ``BEGIN IMMEDIATE``
transactions. IMMEDIATE takes the write lock *before* reading, so two processes appending
an order or a link at once serialize instead of counting the order twice. Waiting writers retry for ``busy_timeout`` seconds. Reads use WAL snapshots
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

import fcntl
import functools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from urllib.parse import quote

import msgspec

from ..errors import StoreError
from ..events import Event
from ..profile import Profile
from .base import (COMPACT_CHUNK, REPORT_STATE_META_PREFIX, AppendResult, PersonalData,
                   refuse_reserved_meta, report_state_names, resolve_person)
from .batch import LogRow, materialize, route_batch

__all__ = ["SQLiteStore", "SCHEMA_VERSION"]

SCHEMA_VERSION = 2
#: Bytes of the database file each connection reads through a memory map (see SQLiteStore).
DEFAULT_MMAP_SIZE = 256 * 2**20
#: How long ``catch_up`` (scans, counts) waits for another process's compactor.
CATCH_UP_SECONDS = 30.0
_CHUNK = 500  # ids per IN (...) query

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    key TEXT PRIMARY KEY, data BLOB NOT NULL, folded_to INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS links (
    visitor_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_by_customer ON links (customer_id);
CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL,
    data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_time ON events (at, id);
CREATE INDEX IF NOT EXISTS events_by_key ON events (key, id);
"""
#: Version 1 -> 2 (after ``_SCHEMA``, which adds the indexes): version 1 rows had folded everything.
_UPGRADE_1 = (
    "ALTER TABLE profiles ADD COLUMN folded_to INTEGER NOT NULL DEFAULT 0",
    "UPDATE profiles SET folded_to = (SELECT coalesce(max(id), 0) FROM events)",
    "INSERT OR REPLACE INTO meta VALUES ('compacted_to', (SELECT coalesce(max(id), 0) FROM events))",
)
_LOAD_ROW = "SELECT data, folded_to FROM profiles WHERE key = ?"
_TAIL = "SELECT id, at, data FROM events WHERE key = ? AND id > ? ORDER BY id"
_LOAD_CUSTOMER = "SELECT ?1, data, folded_to FROM (SELECT 1) LEFT JOIN profiles ON key = ?1"
_LOAD_VISITOR = (
    "SELECT k.key, p.data, p.folded_to FROM (SELECT coalesce("
    "(SELECT 'c:' || customer_id FROM links WHERE visitor_id = ?1), 'v:' || ?1) AS key) AS k"
    " LEFT JOIN profiles AS p ON p.key = k.key"
)

_encode = msgspec.msgpack.Encoder().encode


#: Rows per multi-row ``INSERT`` of events (4 parameters each, far below SQLite's limit).
_INSERT_ROWS = 250


def _insert_events(conn: sqlite3.Connection, rows: Sequence[tuple[float, str, str, bytes]]) -> None:
    """Insert event rows with multi-row ``INSERT``s, not ``executemany``.

    ``sqlite3`` releases the GIL around every step, and ``executemany`` steps once per row:
    the event writer's thread then waits to get the GIL back once per event, behind a busy
    event loop (up to the interpreter's 5 ms switch interval each time), and fell behind the
    pages it logs. A multi-row statement steps once per ``_INSERT_ROWS`` rows."""
    for start in range(0, len(rows), _INSERT_ROWS):
        part = rows[start:start + _INSERT_ROWS]
        conn.execute(_insert_sql(len(part)), [value for row in part for value in row])


@functools.lru_cache(maxsize=64)
def _insert_sql(n: int) -> str:
    return "INSERT INTO events (at, type, key, data) VALUES " + ",".join(("(?, ?, ?, ?)",) * n)


def _meta_names(conn: sqlite3.Connection, prefix: str) -> list[str]:
    """The meta names that start with ``prefix``, sorted."""
    return [r[0] for r in conn.execute("SELECT name FROM meta WHERE substr(name, 1, ?) = ? ORDER BY name",
                                       (len(prefix), prefix))]


def _meta_int(conn: sqlite3.Connection, name: str) -> int:
    """An integer kept in ``meta`` (0 when absent)."""
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row is not None else 0
_decode_profile = msgspec.msgpack.Decoder(Profile).decode
_decode_event = msgspec.msgpack.Decoder(Event).decode


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (so ``close()`` can find them all)."""

    #: (st_dev, st_ino) of the database file when this connection opened it.
    file_id: tuple[int, int] | None = None
    #: Its ``PRAGMA synchronous`` now (``append_unsynced`` lowers it for its commits).
    synchronous = ""


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


    def linked_visitors(self, customer_ids: set[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for customer, visitor in self._select(
                "SELECT customer_id, visitor_id FROM links WHERE customer_id IN ({})", customer_ids):
            found.setdefault(customer, set()).add(visitor)
        return found

    def group_events(self, keys: set[str]) -> list[LogRow]:
        return self._select("SELECT id, at, data FROM events WHERE key IN ({})", keys)

    def load_many(self, keys: set[str]) -> dict[str, Profile]:
        """The profiles of ``keys`` as ``load`` gives them (row plus tail), those that exist; a
        linked visitor's ``v:`` key has none (its events are its customer's)."""
        found: dict[str, Profile] = {}
        linked = self.links({key[2:] for key in keys if key.startswith("v:")})
        for key in keys:
            if key.startswith("v:") and key[2:] in linked:
                continue
            row = self.conn.execute(_LOAD_ROW, (key,)).fetchone()
            result = self.materialize(key, *(row or (None, 0)))
            if result is not None:
                found[key] = result[0]
        return found

    def materialize(self, key: str, data: bytes | None, folded_to: int) -> tuple[Profile, int, bool] | None:
        """``batch.materialize`` of a row read through this connection."""
        if data is None:
            return materialize(key, None, (), self)
        tail = self.conn.execute(_TAIL, (key, folded_to)).fetchall()
        return materialize(key, (_decode_profile(data), folded_to), tail, self)


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
        #: One compaction pass at a time in this process; ``flock`` orders processes.
        self._fold_mutex = threading.RLock()
        self._fold_held = 0  # depth of this process's hold (``compactor_lock`` around passes)
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
            conn.synchronous = self._synchronous
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
    def _write(self, synchronous: str | None = None) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction, committed with ``synchronous`` (default: the
        store's level)."""
        with self._connection() as conn:
            level = synchronous or self._synchronous
            if conn.synchronous != level:  # type: ignore[attr-defined]
                conn.execute(f"PRAGMA synchronous={level}")
                conn.synchronous = level  # type: ignore[attr-defined]
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
                if found == 1:
                    for statement in _UPGRADE_1:
                        conn.execute(statement)
                    conn.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION),))
                    found = SCHEMA_VERSION
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
        """The compacted row plus its key's newer log events, folded (``batch.materialize``)."""
        if customer_id:
            sql, args = _LOAD_CUSTOMER, ("c:" + customer_id,)
        elif visitor_id:
            sql, args = _LOAD_VISITOR, (visitor_id,)
        else:
            raise ValueError("load() needs a visitor_id or a customer_id")
        if self._lock is None:  # the hot path: no context manager
            try:
                conn = self._thread_connection(lookup=True)
                key, data, folded_to = conn.execute(sql, args).fetchone()
                found = _Transaction(conn).materialize(key, data, folded_to)
            except sqlite3.Error as exc:
                raise StoreError(f"database error: {exc}", store=self.url) from exc
        else:
            with self._connection() as conn:
                key, data, folded_to = conn.execute(sql, args).fetchone()
                found = _Transaction(conn).materialize(key, data, folded_to)
        return None if found is None else found[0]

    def append(self, events: Sequence[Event]) -> AppendResult:
        """Log the batch (dedupe orders, route, store links); no profile is read or written.
        Durable when it returns, at the store's ``synchronous`` level."""
        return self._append(events, None)

    def append_unsynced(self, events: Sequence[Event]) -> AppendResult:
        """``append``, committed without waiting for the disk (WAL, ``synchronous=NORMAL``):
        the batch survives the process dying (``kill -9``), and is synced with the next
        checkpoint or durable commit; only the machine losing power can lose it. For the
        event writer's batches (page views, impressions: nobody waits for them), whose
        ``fsync`` per batch would otherwise compete with the pages for the CPU."""
        return self._append(events, "OFF" if self._synchronous == "OFF" else "NORMAL")

    def _append(self, events: Sequence[Event], synchronous: str | None) -> AppendResult:
        if not events:
            return AppendResult()
        with self._write(synchronous) as conn:
            plan = route_batch(events, _Transaction(conn), now=self._clock())
            _insert_events(conn, plan.rows())
            if plan.orders:
                conn.executemany("INSERT INTO orders VALUES (?, ?)", plan.orders)
            if plan.links:
                conn.executemany("INSERT OR REPLACE INTO links VALUES (?, ?)", plan.links.items())
        return plan.result

    # -- compaction --
    @contextmanager
    def compactor_lock(self, *, wait: bool = True) -> Iterator[bool]:
        """Hold this file's compactor lock across passes (True), or yield False when another
        process holds it. ``segmint fold --follow`` holds it for its lifetime, so the serving
        processes' compactor threads leave the folding to it."""
        with self._fold_lock(wait) as held:
            yield held

    @contextmanager
    def _fold_lock(self, wait: bool) -> Iterator[bool]:
        """Hold this file's compactor lock (True), or yield False when another holds it."""
        if not self._fold_mutex.acquire(blocking=wait):
            yield False
            return
        try:
            if self._memory or self._fold_held:  # in-memory, or this thread holds it already
                self._fold_held += 1
                try:
                    yield True
                finally:
                    self._fold_held -= 1
                return
            try:
                fd = os.open(f"{self.path}.fold.lock", os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(f"cannot open the compactor lock: {exc}", store=self.url) from exc
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
                self._fold_held += 1
                try:
                    yield True
                finally:
                    self._fold_held -= 1
            finally:
                os.close(fd)  # releases the flock
        finally:
            self._fold_mutex.release()

    def compact(self, *, max_events: int = COMPACT_CHUNK, wait: bool = False) -> int | None:
        """One compaction pass over at most ``max_events`` log events: the number folded, or
        None when another compactor holds the file's lock (``wait``: wait for it instead).

        The rows are read and folded in a read snapshot, so appends go on meanwhile (they
        never wait for a fold); only the writing of the folded rows takes the write lock.
        That is safe because nothing else writes rows while this process holds the
        compactor lock, except ``forget``: it bumps ``erasures``, and a pass that sees it
        changed is done again (it would otherwise bring an erased row back). Events
        appended meanwhile are left for the next pass (or folded already, by a row's tail:
        its ``folded_to`` makes them no-ops then)."""
        with self._fold_lock(wait) as held:
            if not held:
                return None
            while True:
                with self._snapshot() as conn:
                    erasures = _meta_int(conn, "erasures")
                    start = _meta_int(conn, "compacted_to")
                    chunk = conn.execute("SELECT id, key FROM events WHERE id > ? ORDER BY id LIMIT ?",
                                         (start, max_events)).fetchall()
                    if not chunk:
                        return 0
                    folded = self._fold_groups(conn, {key for _, key in chunk})
                with self._write() as conn:
                    if _meta_int(conn, "erasures") != erasures:
                        continue  # someone was erased meanwhile: fold again from what is left
                    conn.executemany(
                        "INSERT INTO profiles VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                        " data = excluded.data, folded_to = excluded.folded_to",
                        [(group, data, folded_to) for group, data, folded_to, _ in folded])
                    # A refolded customer holds its joined visitors' events: their rows go.
                    conn.executemany("DELETE FROM profiles WHERE key IN (SELECT 'v:' || visitor_id"
                                     " FROM links WHERE customer_id = ?)",
                                     [(group[2:],) for group, _, _, refolded in folded
                                      if refolded and group.startswith("c:")])
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('compacted_to', ?)", (str(chunk[-1][0]),))
                return len(chunk)

    @staticmethod
    def _fold_groups(conn: sqlite3.Connection, keys: set[str]) -> list[tuple[str, bytes, int, bool]]:
        """Each key group of ``keys`` materialized: ``(group, row data, folded_to, refolded)``."""
        source = _Transaction(conn)
        links = source.links({key[2:] for key in keys if key.startswith("v:")})
        groups = {f"c:{links[key[2:]]}" if key[2:] in links and key.startswith("v:") else key
                  for key in keys}
        folded = []
        for group in sorted(groups):
            found = conn.execute(_LOAD_ROW, (group,)).fetchone()
            result = source.materialize(group, *(found or (None, 0)))
            if result is not None:
                profile, folded_to, refolded = result
                folded.append((group, _encode(profile), folded_to, refolded))
        return folded

    def catch_up(self, *, timeout: float = CATCH_UP_SECONDS) -> bool:
        """Compact until the rows hold every event logged before the call; while another
        process holds the compactor lock, wait for it to get there instead. False when
        ``timeout`` seconds passed first (the rows are then behind by what is left)."""
        folded, end = self.compaction_position()
        deadline = time.monotonic() + timeout
        while folded < end:
            if self.compact() is None:  # another compactor folds: it will get there
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
            folded = self.compaction_position()[0]
        return True

    def compaction_position(self) -> tuple[int, int]:
        """``(folded, logged)``: the log position the rows hold everything up to, and the
        log's last position (the difference is what waits to be folded)."""
        with self._connection() as conn:
            end = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            row = conn.execute("SELECT value FROM meta WHERE name = 'compacted_to'").fetchone()
        return (int(row[0]) if row is not None else 0), end

    def iter_profiles(self, *, batch_size: int = 1000) -> Iterator[Profile]:
        self.catch_up()
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
        self.catch_up()
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

    def event_fingerprint(self, until: float) -> tuple[int, int]:
        """Changes when an event with ``at < until`` is logged or removed: the erasures so far
        (``forget`` is the one way events leave the log, and it counts each) and the newest log
        id among those events (a new row's id is above every id in the table, so logging one
        with ``at < until`` raises it). The rowid is scanned from the newest row back to the
        first one before ``until``: a read of the rows logged after it, which a report that
        resumes there reads anyway (counting every event before ``until`` scanned the whole
        time index: 1.3-1.6 s for 9M events)."""
        with self._connection() as conn:
            erasures = _meta_int(conn, "erasures")
            row = conn.execute("SELECT id FROM events NOT INDEXED WHERE at < ? ORDER BY id DESC LIMIT 1",
                               (until,)).fetchone()
        return erasures, (0 if row is None else row[0])

    def get_meta(self, name: str) -> bytes | None:
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, name: str, value: bytes) -> None:
        refuse_reserved_meta((name,))
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, bytes(value)))

    def meta_names(self, prefix: str) -> list[str]:
        with self._connection() as conn:
            return _meta_names(conn, prefix)

    def update_meta(self, values: Mapping[str, bytes], delete: Collection[str] = ()) -> None:
        refuse_reserved_meta([*values, *delete])
        with self._write() as conn:
            conn.executemany("DELETE FROM meta WHERE name = ?", [(name,) for name in delete])
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             [(name, bytes(value)) for name, value in values.items()])

    def delete_meta(self, name: str) -> None:
        refuse_reserved_meta((name,))
        with self._write() as conn:
            conn.execute("DELETE FROM meta WHERE name = ?", (name,))

    # -- PersonalDataStore --
    def _person(self, conn: sqlite3.Connection, customer_id: str | None, visitor_id: str | None, *,
                events_after: int = -1) -> tuple[PersonalData, list[tuple[float, int, bytes]]]:
        """The person's data and the ``(at, id, data)`` rows of their events with ``id >
        events_after``, read inside the caller's transaction (``data.events`` is left empty)."""
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
        """Every meta name of the saved report states, their parts included."""
        return _meta_names(conn, REPORT_STATE_META_PREFIX)

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
            data.report_states = report_state_names(self._report_states(conn))
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
            # A compaction pass folding meanwhile must not write the erased rows back.
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('erasures', ?)",
                         (str(_meta_int(conn, "erasures") + 1),))
            conn.executemany("DELETE FROM links WHERE visitor_id = ?", [(v,) for v in data.links])
            states = self._report_states(conn)
            conn.executemany("DELETE FROM meta WHERE name = ?", [(n,) for n in states])
            data.report_states = report_state_names(states)
        data.events = [_decode_event(r[2]) for r in sorted(rows)]
        return data

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        self._closed = True
        for conn in list(self._all):
            conn.close()
        self._shared = None
        self._local = threading.local()
