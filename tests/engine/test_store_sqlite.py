"""SQLite specifics: schema version, URLs, reopening, and concurrent writers (real processes)."""

import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from segmint.engine.errors import StoreError
from segmint.engine.events import Identify, Order, OrderItem, PageView
from segmint.engine.folding import fold
from segmint.engine.profile import Profile
from segmint.engine.stores import SCHEMA_VERSION, SQLiteStore, open_store
from segmint.engine.stores.migrate import migrate

UTC = timezone.utc
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def order(order_id, customer="c1", price=10.0):
    return Order(order_id=order_id, customer_id=customer, at=T0,
                 items=[OrderItem(sku="s", category="k", quantity=1, price=price)])


def test_data_survives_reopening_and_uses_wal(tmp_path):
    path = str(tmp_path / "p.db")
    store = SQLiteStore(path)
    store.append([order("o1"), Identify(visitor_id="v1", customer_id="c1", at=T0)])
    store.set_meta("rfm", b"x")
    store.close()
    again = SQLiteStore(path)
    assert again.load(visitor_id="v1").orders == 1
    assert again.get_meta("rfm") == b"x"
    again.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_a_file_from_a_newer_version_is_a_clear_error(tmp_path):
    path = str(tmp_path / "p.db")
    SQLiteStore(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="newer segmint") as info:
        SQLiteStore(path)
    assert info.value.store == f"sqlite:///{path}"
    assert f"schema version {SCHEMA_VERSION + 1}" in str(info.value)


#: A version 1 file as segmint wrote it before the event-time rule (schema and rows).
_V1_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE profiles (key TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE links (visitor_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE orders (order_id TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE events (id INTEGER PRIMARY KEY, at REAL NOT NULL, type TEXT NOT NULL, key TEXT NOT NULL,
                     data BLOB NOT NULL);
CREATE INDEX events_by_time ON events (at, id);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def _version_1_file(path):
    """A v1 file whose profile was folded in arrival order: a page view posted two days late
    left ``visits`` at 1."""
    today, late = PageView(visitor_id="v1", path="/", at=T0 + timedelta(days=2)), PageView(visitor_id="v1", path="/", at=T0)
    profile = Profile(key="v:v1")
    for event in (today, late):  # arrival order, as version 1 folded
        fold(profile, event)
    assert profile.visits == 1
    profile.newest_at = None  # version 1 did not keep it
    with sqlite3.connect(path) as raw:
        raw.executescript(_V1_SCHEMA)
        raw.execute("INSERT INTO profiles VALUES ('v:v1', ?)", (msgspec.msgpack.encode(profile),))
        raw.executemany("INSERT INTO events (at, type, key, data) VALUES (?, 'page_view', 'v:v1', ?)",
                        [(e.at.timestamp(), msgspec.msgpack.encode(e)) for e in (today, late)])
    raw.close()
    return today, late


def test_opening_a_version_1_file_upgrades_it_and_its_profiles_are_refolded_when_touched(tmp_path):
    path = str(tmp_path / "v1.db")
    today, late = _version_1_file(path)
    store = SQLiteStore(path)
    assert store.load(visitor_id="v1").visits == 1  # as stored, until an event reaches it
    later = PageView(visitor_id="v1", path="/", at=T0 + timedelta(days=3))
    store.append([later])
    profile = store.load(visitor_id="v1")
    expected = Profile(key="v:v1")
    for event in (late, today, later):
        fold(expected, event)
    assert profile == expected and profile.visits == 3
    store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0] == "2"
        indexes = {row[1] for row in raw.execute("SELECT * FROM sqlite_master WHERE type = 'index'")}
        assert {"events_by_key", "links_by_customer"} <= indexes
        assert int(raw.execute("SELECT value FROM meta WHERE name = 'compacted_to'").fetchone()[0]) == 2
    raw.close()


def test_migrate_copies_a_version_1_file_and_the_copy_refolds_in_event_time(tmp_path):
    source, target = str(tmp_path / "v1.db"), str(tmp_path / "v2.db")
    _version_1_file(source)
    report = migrate(f"sqlite:///{source}", f"sqlite:///{target}")
    assert (report.counts["profiles"], report.counts["events"]) == (1, 2)
    store = SQLiteStore(target)
    store.append([PageView(visitor_id="v1", path="/", at=T0 + timedelta(days=3))])
    assert store.load(visitor_id="v1").visits == 3
    store.close()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the tables you are looking for" * 100)
    with pytest.raises(StoreError, match="notes.db"):
        SQLiteStore(str(path))


def test_open_store_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for url in ("rel.db", "sqlite:///rel2.db", f"sqlite:///{tmp_path}/abs.db", str(tmp_path / "plain.db")):
        store = open_store(url)
        assert isinstance(store, SQLiteStore)
        store.close()
    assert {p.name for p in tmp_path.glob("*.db")} == {"rel.db", "rel2.db", "abs.db", "plain.db"}
    with pytest.raises(StoreError, match="unsupported store URL"):
        open_store("mongodb://localhost/profiles")
    with pytest.raises(StoreError) as info:  # the error is logged and shown on /health
        open_store("postgres://shop:pa55word@db:5432/profiles")
    assert info.value.store == "postgres://shop:***@db:5432/profiles" and "pa55word" not in str(info.value)
    with pytest.raises(StoreError, match="needs a file path"):
        open_store("sqlite://")


def test_a_closed_store_refuses_work(tmp_path):
    store = SQLiteStore(str(tmp_path / "p.db"))
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.load(customer_id="c")


def test_threads_writing_one_customer_lose_no_update(tmp_path):
    store = SQLiteStore(str(tmp_path / "p.db"), synchronous="NORMAL")
    errors = []

    def work(worker):
        try:
            for i in range(40):
                store.append([order(f"t{worker}-{i}"), PageView(customer_id="c1", at=T0)])
                assert store.load(customer_id="c1") is not None
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    profile = store.load(customer_id="c1")
    assert (profile.orders, profile.page_views, profile.spend) == (160, 160, 1600.0)
    store.close()


WRITER = textwrap.dedent("""
    import sys
    import time
    from datetime import datetime, timezone
    from segmint.engine.events import Order, OrderItem
    from segmint.engine.stores import SQLiteStore

    path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = SQLiteStore(path, synchronous="NORMAL")
    at = datetime(2025, 3, 1, tzinfo=timezone.utc)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(count):
        # one transaction per order: the most chances to interleave with the other process
        store.append([Order(order_id=f"{name}-{i}", customer_id="shared", at=at,
                            items=[OrderItem(sku="s", quantity=1, price=1.0)])])
        if i % 7 == 0:  # and a resent order now and then
            store.append([Order(order_id=f"{name}-{i}", customer_id="shared", at=at,
                                items=[OrderItem(sku="s", quantity=1, price=1.0)])])
        if i == 0:  # handshake: go on only once the other process wrote too (they overlap)
            deadline = time.monotonic() + 30
            while store.load(customer_id="shared").orders < 2 and time.monotonic() < deadline:
                time.sleep(0.001)
    store.close()
""")


def test_two_processes_writing_one_customer_lose_no_update(tmp_path):
    path = str(tmp_path / "shared.db")
    SQLiteStore(path).close()
    count = 300
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, path, name, str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    for proc in procs:  # both imported and connected: start them at once
        assert proc.stdout.readline() == "ready\n"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    store = SQLiteStore(path)
    profile = store.load(customer_id="shared")
    assert (profile.orders, profile.items, profile.spend) == (2 * count, 2 * count, 2.0 * count)
    writers = [e.order_id[0] for e in store.iter_events(types=["order"])]
    assert len(writers) == 2 * count
    # The writes really interleaved (otherwise this test would prove nothing).
    assert sum(a != b for a, b in zip(writers, writers[1:])) >= 2
    store.close()


def test_a_writer_waits_for_busy_timeout_then_fails_clearly_while_readers_go_on(tmp_path):
    path = str(tmp_path / "p.db")
    store = SQLiteStore(path, busy_timeout=0.05)
    store.append([order("o1")])
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        assert store.load(customer_id="c1").orders == 1  # WAL: reads are not blocked
        with pytest.raises(StoreError, match="locked") as info:
            store.append([order("o2")])
        assert info.value.store == f"sqlite:///{path}"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.append([order("o2")])
    assert store.load(customer_id="c1").orders == 2
    store.close()


def test_a_replaced_file_refuses_the_write_and_drops_this_threads_connections(tmp_path):
    path = tmp_path / "p.db"
    store = SQLiteStore(str(path))
    store.append([order("o1")])
    assert store.load(customer_id="c1").orders == 1  # opens this thread's lookup connection
    lookup = store._thread_connection(lookup=True)

    other = SQLiteStore(str(tmp_path / "other.db"))
    other.append([order("x1", customer="c2")])
    other.close()
    (tmp_path / "other.db").replace(path)

    with pytest.raises(StoreError, match="removed or replaced"):
        store.append([order("o2")])  # not acknowledged into the removed file
    # Both of this thread's connections read the removed file: both are reopened.
    assert store._thread_connection(lookup=True) is not lookup
    with pytest.raises(sqlite3.ProgrammingError):
        lookup.execute("SELECT 1")
    store.close()


def test_lookups_read_through_a_memory_map_and_bulk_reads_do_not(tmp_path):
    path = str(tmp_path / "p.db")
    mapped = SQLiteStore(path, mmap_size=2**20)
    mapped.append([order("o1")])
    assert mapped.load(customer_id="c1").orders == 1
    assert mapped._thread_connection(lookup=True).execute("PRAGMA mmap_size").fetchone()[0] == 2**20
    assert mapped._thread_connection().execute("PRAGMA mmap_size").fetchone()[0] == 0
    mapped.close()
    plain = SQLiteStore(path, mmap_size=0)
    assert plain.load(customer_id="c1").orders == 1
    assert plain._thread_connection(lookup=True).execute("PRAGMA mmap_size").fetchone()[0] == 0
    plain.close()
    for bad in (-1, 1.5, True, "256M"):
        with pytest.raises(ValueError, match="mmap_size"):
            SQLiteStore(path, mmap_size=bad)


def test_one_compactor_per_file_and_a_killed_one_blocks_nobody(tmp_path):
    path = str(tmp_path / "p.db")
    store = SQLiteStore(path)
    store.append([PageView(visitor_id="v1", path="/", at=T0)])
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from segmint.engine.stores import SQLiteStore
        store = SQLiteStore({path!r})
        with store.compactor_lock(wait=True):
            print("holding", flush=True)
            time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert store.compact() is None  # another process folds this file now
        assert waiting(store) == 1
        assert store.load(visitor_id="v1").page_views == 1  # reads fold the tail meanwhile
    finally:
        holder.kill()  # kill -9: the kernel releases its flock
        holder.wait()
        holder.stdout.close()
    assert store.compact() == 1 and waiting(store) == 0
    store.close()


def waiting(store):
    folded, logged = store.compaction_position()
    return logged - folded


def test_a_held_compactor_lock_folds_pass_after_pass_and_keeps_others_out(tmp_path):
    path = str(tmp_path / "p.db")
    follower, worker = SQLiteStore(path), SQLiteStore(path)
    with follower.compactor_lock() as held:
        assert held
        for n in range(3):
            worker.append([PageView(visitor_id="v1", path="/", at=T0 + timedelta(hours=n))])
            assert worker.compact() is None  # the worker's thread leaves it to the holder
            assert worker.catch_up(timeout=0.1) is False  # a scan waits for the holder's pass
            assert follower.compact() == 1
            assert worker.catch_up(timeout=0.1) is True
    assert worker.compact() == 0  # released: anyone may fold again
    assert worker.load(visitor_id="v1").visits == 3
    follower.close()
    worker.close()


def _during_the_fold(store, monkeypatch, action):
    """Run ``action`` in another thread while the next compaction pass folds (after it read
    the log and the rows, before it writes them), once; returns what ``action`` returned."""
    real, done = SQLiteStore._fold_groups, {}

    def folding(conn, keys):
        folded = real(conn, keys)
        if "result" not in done:
            worker = threading.Thread(target=lambda: done.setdefault("result", action()))
            worker.start()
            worker.join(10)
        return folded

    monkeypatch.setattr(SQLiteStore, "_fold_groups", staticmethod(folding))
    return done


def test_appends_go_on_while_a_compaction_pass_folds(tmp_path, monkeypatch):
    """A pass folds in a read snapshot: an append meanwhile does not wait for its write lock
    (one that waited would time out here), and the next pass folds it."""
    path = str(tmp_path / "p.db")
    store = SQLiteStore(path)
    impatient = SQLiteStore(path, busy_timeout=0.2)
    store.append([PageView(visitor_id="v1", path="/a", at=T0)])
    done = _during_the_fold(store, monkeypatch, lambda: impatient.append(
        [PageView(visitor_id="v1", path="/b", at=T0 + timedelta(minutes=1))]).stored)
    assert store.compact() == 1
    assert done["result"] == 1
    assert store.compact() == 1 and store.compact() == 0
    with sqlite3.connect(path) as raw:
        (data,) = raw.execute("SELECT data FROM profiles WHERE key = 'v:v1'").fetchone()
    assert msgspec.msgpack.decode(data, type=Profile).page_views == 2
    impatient.close()
    store.close()


def test_a_person_erased_while_a_pass_folds_is_not_written_back(tmp_path, monkeypatch):
    path = str(tmp_path / "p.db")
    store = SQLiteStore(path)
    store.append([PageView(visitor_id="v1", path="/a", at=T0), PageView(visitor_id="v2", path="/a", at=T0)])
    other = SQLiteStore(path)
    done = _during_the_fold(store, monkeypatch, lambda: other.forget(visitor_id="v1"))
    assert store.compact() == 1  # done again: v1's event is gone from the log
    assert done["result"].keys == {"v:v1"}
    with sqlite3.connect(path) as raw:
        keys = {key for (key,) in raw.execute("SELECT key FROM profiles")}
    assert keys == {"v:v2"}
    assert store.load(visitor_id="v1") is None and store.load(visitor_id="v2").page_views == 1
    other.close()
    store.close()


def test_unsynced_appends_survive_the_process_being_killed(tmp_path):
    """The event writer's batches commit without an fsync each (``append_unsynced``), yet a
    batch that returned is in the file after a ``kill -9``; durable appends keep the store's
    synchronous level."""
    path = str(tmp_path / "p.db")
    SQLiteStore(path).close()
    script = textwrap.dedent(f"""
        import os, signal
        from datetime import datetime, timedelta, timezone
        from segmint.engine.events import PageView
        from segmint.engine.stores import SQLiteStore
        store = SQLiteStore({path!r})
        at = datetime(2025, 3, 1, tzinfo=timezone.utc)
        for batch in range(20):
            store.append_unsynced([PageView(visitor_id="v1", path="/", at=at + timedelta(minutes=batch, seconds=i))
                                   for i in range(50)])
        with store._connection() as conn:
            print(conn.execute("PRAGMA synchronous").fetchone()[0], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    assert done.stdout.strip() == "1"  # NORMAL while the writer's batches commit
    store = SQLiteStore(path)
    assert store.load(visitor_id="v1").page_views == 1000
    store.append([PageView(visitor_id="v2", path="/", at=T0)])
    with store._connection() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for a durable one
    store.close()
