"""The store breaks mid-run: read-only, disk full, locked by another process, corrupted, removed.

For each: pages keep being served (personalized while reads work, unchanged when segmint
cannot decide), the intake answers 503 (nothing acknowledged that is not stored), the failure
is logged once with its cause and counted on the health endpoint, and once the store is fixed
segmint resumes by itself: the intake stores again, queued page views are written, pages are
personalized again. Real conditions wherever the test can create them (a second process
holding the lock, garbage bytes over the file, SQLite's own read-only and page-limit states).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from segmint.engine.signing import new_visitor_id
from segmint.engine.stores import SQLiteStore

VIP = 'data-segmint-campaign="vip"'
POSTS = 4


def on_all_connections(store: SQLiteStore, monkeypatch: Any, sql: str) -> None:
    """Run ``sql`` on every open connection of ``store`` and on every one it opens later."""
    for conn in list(store._all):
        conn.execute(sql)
    connect = store._connect

    def connect_and_apply(**options: Any) -> Any:
        conn = connect(**options)
        conn.execute(sql)
        return conn

    monkeypatch.setattr(store, "_connect", connect_and_apply)


class ReadOnly:
    """Really read-only: file modes when not root, else SQLite's ``query_only`` (root ignores modes)."""

    cause = "readonly database"

    def __init__(self, store: SQLiteStore, monkeypatch: Any) -> None:
        self.store, self.monkeypatch = store, monkeypatch
        self.files = [Path(store.path + s) for s in ("", "-wal", "-shm")]

    def apply(self) -> None:
        if os.geteuid() != 0:
            for path in self.files:
                path.chmod(0o444)
        on_all_connections(self.store, self.monkeypatch, "PRAGMA query_only=1")

    def undo(self) -> None:
        for path in self.files:
            path.chmod(0o644)
        self.monkeypatch.undo()
        for conn in list(self.store._all):
            conn.execute("PRAGMA query_only=0")


class DiskFull:
    """SQLite's page limit at the current size: every growing write fails with SQLITE_FULL."""

    cause = "database or disk is full"

    def __init__(self, store: SQLiteStore, monkeypatch: Any) -> None:
        self.store, self.monkeypatch = store, monkeypatch

    def apply(self) -> None:
        with sqlite3.connect(self.store.path) as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
        on_all_connections(self.store, self.monkeypatch, f"PRAGMA max_page_count={pages}")

    def undo(self) -> None:
        self.monkeypatch.undo()
        for conn in list(self.store._all):
            conn.execute("PRAGMA max_page_count=1073741823")


LOCKER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
""")


class LockedByAnotherProcess:
    cause = "database is locked"

    def __init__(self, store: SQLiteStore, monkeypatch: Any) -> None:
        self.store = store
        self.process: subprocess.Popen[str] | None = None

    def apply(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", LOCKER, self.store.path], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "locked"

    def undo(self) -> None:
        assert self.process is not None
        self.process.communicate("\n", timeout=10)  # commit, exit, close the pipes
        assert self.process.returncode == 0


def vip_runtime(rel: Any, **options: Any) -> tuple[Any, SQLiteStore, str]:
    """A runtime over a real SQLite file (short busy timeout) holding one VIP visitor."""
    store = SQLiteStore(str(rel.tmp_path / "segmint.db"), busy_timeout=0.2)
    runtime = rel.runtime(store=store, cache_ttl=0, **options)
    visitor = new_visitor_id()
    runtime.record([dict(rel.order("vip-order", "ignored"), customer_id=None, visitor_id=visitor)])
    return runtime, store, visitor


def batch(rel: Any, number: int) -> list[dict[str, Any]]:
    """30 orders of 100 lines: enough new data that a write must grow the file."""
    orders = [rel.order(f"o-{number}-{k}", f"c-{k}") for k in range(30)]
    return [dict(o, items=o["items"] * 100) for o in orders]


def failure_lines(caplog: Any, cause: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and cause in r.getMessage()]


@pytest.mark.parametrize("fault", [ReadOnly, DiskFull, LockedByAnotherProcess])
def test_unwritable_store_keeps_pages_refuses_intake_then_resumes(rel: Any, caplog: Any, monkeypatch: Any,
                                                                    fault: Callable[..., Any]):
    runtime, store, visitor = vip_runtime(rel)
    page = rel.visitor_cookie(visitor)
    breaker = fault(store, monkeypatch)
    with rel.client(runtime) as client, caplog.at_level(logging.INFO):
        assert VIP in client.get("/", headers=page).text
        runtime.writer.flush(5)
        breaker.apply()
        try:
            pages = [client.get("/", headers=page) for _ in range(3)]
            posts = [client.post("/_segmint/events", json=batch(rel, i), headers=rel.AUTH) for i in range(POSTS)]
            health = client.get("/_segmint/health", headers=rel.AUTH).json()
            runtime.writer.flush(0.5)  # queued page views wait (or fit in free pages); never dropped
        finally:
            breaker.undo()
        # Pages: still served, and personalized, since reading still works.
        assert all(r.status_code == 200 and VIP in r.text for r in pages)
        # Intake: refused with 503 + Retry-After, nothing acknowledged.
        assert [r.status_code for r in posts] == [503] * POSTS and "retry-after" in posts[0].headers
        assert health["counters"]["failure.intake"] == POSTS
        assert health["writer"]["dropped"] == 0
        assert len(failure_lines(caplog, "failed open (intake)")) == 1
        assert any(breaker.cause in line for line in failure_lines(caplog, "failed open (intake)"))
        assert len(failure_lines(caplog, "will retry")) <= 1  # the writer logs its outage once
        # Recovery, by itself: the retry is stored, the queued page views are written.
        assert client.post("/_segmint/events", json=batch(rel, 0), headers=rel.AUTH).json()["stored"] == 30
        assert runtime.writer.flush(10)
        assert runtime.writer.stats["dropped"] == 0
        assert runtime.profile(visitor_id=visitor).page_views == 4
        assert VIP in client.get("/", headers=page).text


def test_corrupted_file_serves_unchanged_pages_then_resumes_when_restored(rel: Any, caplog: Any):
    runtime, store, visitor = vip_runtime(rel)
    page = rel.visitor_cookie(visitor)
    db = Path(store.path)
    with rel.client(runtime) as client, caplog.at_level(logging.INFO):
        assert VIP in client.get("/", headers=page).text
        runtime.writer.flush(5)
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        good = db.read_bytes()
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):  # garbage over every byte, in place
            if path.exists():
                with open(path, "r+b") as handle:
                    handle.write(b"\xa5" * max(path.stat().st_size, 4096))
        broken = [client.get("/", headers=page) for _ in range(5)]
        post = client.post("/_segmint/events", json=[rel.order("o-x", "c-1")], headers=rel.AUTH)
        health = client.get("/_segmint/health", headers=rel.AUTH).json()["counters"]
        # Restore the backup in place (what an operator's restore does to the same inode).
        with open(db, "r+b") as handle:
            handle.write(good)
            handle.truncate()
        with open(f"{db}-wal", "r+b") as handle:
            handle.truncate(0)
        shm = Path(f"{db}-shm")  # SQLite maps this file: zero it, never shrink it (SIGBUS)
        with open(shm, "r+b") as handle:
            handle.write(bytes(shm.stat().st_size))
        recovered = [client.get("/", headers=page).text for _ in range(3)]
        stored = client.post("/_segmint/events", json=[rel.order("o-y", "c-1")], headers=rel.AUTH)
    assert all(r.status_code == 200 and r.text == rel.PAGE for r in broken)  # unchanged: cannot decide
    assert post.status_code == 503
    assert health["failure.decide"] == 5 and health["failure.intake"] == 1
    assert len(failure_lines(caplog, "failed open (decide)")) == 1
    assert "malformed" in failure_lines(caplog, "failed open (decide)")[0] or "not a database" in \
        failure_lines(caplog, "failed open (decide)")[0]
    assert all(VIP in text for text in recovered)
    assert stored.status_code == 200


def test_removed_file_refuses_writes_instead_of_losing_them_then_resumes_when_restored(rel: Any, caplog: Any):
    runtime, store, visitor = vip_runtime(rel)
    db = Path(store.path)
    backup = rel.tmp_path / "backup.db"
    with rel.client(runtime) as client, caplog.at_level(logging.INFO):
        assert client.post("/_segmint/events", json=[rel.order("before", "c-1")], headers=rel.AUTH).status_code == 200
        runtime.writer.flush(5)
        with sqlite3.connect(db) as source, sqlite3.connect(backup) as target:
            source.backup(target)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        pages = [client.get("/", headers=rel.visitor_cookie(visitor)) for _ in range(3)]
        posts = [client.post("/_segmint/events", json=[rel.order(f"lost-{i}", "c-1")], headers=rel.AUTH)
                 for i in range(POSTS)]
        assert not db.exists()  # segmint did not quietly start an empty database there
        shutil.copy(backup, db)
        retried = [client.post("/_segmint/events", json=[rel.order("lost-0", "c-1")], headers=rel.AUTH).status_code
                   for _ in range(12)]
    assert all(r.status_code == 200 and "footer" in r.text for r in pages)
    assert [r.status_code for r in posts] == [503] * POSTS
    assert len(failure_lines(caplog, "failed open (intake)")) == 1
    # Each pool thread notices the new file once; then the retried order is stored, once.
    assert 200 in retried and retried[retried.index(200) + 1:] == [200] * (len(retried) - retried.index(200) - 1)
    reopened = SQLiteStore(str(db))
    try:
        ids = {e.order_id for e in reopened.iter_events(types=("order",))}
    finally:
        reopened.close()
    assert ids == {"vip-order", "before", "lost-0"}
