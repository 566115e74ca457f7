"""EventWriter: batching thread, back-pressure without blocking, retries, counted losses."""

import logging
import time
import threading
from datetime import datetime, timezone

from segmint.engine.events import PageView
from segmint.engine.profiles import Profiles
from segmint.engine.stores import MemoryStore
from segmint.engine.stores.base import AppendResult
from segmint.engine.writer import EventWriter

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def views(n, visitor="v1"):
    return [PageView(visitor_id=visitor, at=T0) for _ in range(n)]


class FakeProfiles:
    """Records batches; fails the first ``failures`` calls; can be held to fill the queue."""

    def __init__(self, failures=0):
        self.batches = []
        self.failures = failures
        self.gate = threading.Event()
        self.gate.set()

    def note_pending(self, events):
        self.noted = getattr(self, "noted", 0) + len(events)

    def forget_pending(self, events):
        self.forgotten = getattr(self, "forgotten", 0) + len(events)

    def record(self, events, *, pending=False):
        self.gate.wait(5)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("disk full")
        self.batches.append(list(events))
        return AppendResult(stored=len(events), changed_keys=set())


def test_submitted_events_are_folded_into_the_store():
    store = MemoryStore()
    writer = EventWriter(Profiles(store), batch_size=10, flush_interval=0.01)
    assert writer.submit(views(25))
    assert writer.flush(timeout=5)
    assert store.load(visitor_id="v1").page_views == 25
    writer.close()
    stats = writer.stats
    assert (stats["submitted"], stats["written"], stats["pending"], stats["dropped"]) == (25, 25, 0, 0)


def test_batches_are_bounded_by_batch_size():
    fake = FakeProfiles()
    fake.gate.clear()
    writer = EventWriter(fake, batch_size=4, flush_interval=0.01)
    writer.submit(views(10))
    fake.gate.set()
    writer.close(timeout=5)
    assert sum(len(b) for b in fake.batches) == 10
    assert max(len(b) for b in fake.batches) <= 4


def test_a_full_queue_rejects_without_blocking_and_counts():
    fake = FakeProfiles()
    fake.gate.clear()  # the thread blocks inside record: nothing drains
    writer = EventWriter(fake, batch_size=2, flush_interval=0.01, max_pending=5)
    assert writer.submit(views(2))
    assert writer.submit(views(3))
    assert not writer.submit(views(1))
    assert writer.stats["rejected"] == 1
    fake.gate.set()
    writer.close(timeout=5)
    assert sum(len(b) for b in fake.batches) == 5
    assert not writer.submit(views(1))  # closed
    assert writer.stats["rejected"] == 2


def test_a_failing_batch_is_retried_then_written():
    fake = FakeProfiles(failures=2)
    writer = EventWriter(fake, batch_size=10, flush_interval=0.01, max_retries=3, retry_delay=0.001)
    writer.submit(views(3))
    writer.close(timeout=5)
    stats = writer.stats
    assert (stats["errors"], stats["retries"], stats["dropped"], stats["written"]) == (2, 2, 0, 3)
    assert fake.batches == [views(3)]


def test_a_batch_failing_every_retry_is_dropped_counted_and_logged_once(caplog):
    fake = FakeProfiles(failures=100)
    writer = EventWriter(fake, batch_size=2, flush_interval=0.01, max_retries=1, retry_delay=0.001,
                         log_interval=3600)
    with caplog.at_level(logging.ERROR, logger="segmint.writer"):
        writer.submit(views(4))
        writer.close(timeout=5)
    stats = writer.stats
    assert stats["dropped"] == 4 and stats["errors"] == 4 and stats["written"] == 0
    assert len([r for r in caplog.records if "disk full" in r.getMessage()]) == 1  # rate limited


def test_on_recorded_sees_each_written_batch():
    seen = []
    writer = EventWriter(FakeProfiles(), batch_size=3, flush_interval=0.01,
                         on_recorded=lambda events, result: seen.append((len(events), result.stored)))
    writer.submit(views(3))
    writer.close(timeout=5)
    assert seen == [(3, 3)]


class UnavailableStoreProfiles(FakeProfiles):
    """Raises StoreError (the store is down) for the first ``failures`` calls."""

    def record(self, events, *, pending=False):
        from segmint.engine.errors import StoreError

        if self.failures:
            self.failures -= 1
            raise StoreError("connection refused", store="redis://127.0.0.1:1")
        self.batches.append(list(events))
        return AppendResult(stored=len(events), changed_keys=set())


def test_an_unavailable_store_is_waited_out_past_max_retries_and_nothing_is_dropped(caplog):
    fake = UnavailableStoreProfiles(failures=8)
    writer = EventWriter(fake, batch_size=100, flush_interval=0.01, max_retries=2,
                         retry_delay=0.001, max_retry_delay=0.002)
    with caplog.at_level(logging.ERROR, logger="segmint.writer"):
        writer.submit(views(5))
        assert writer.flush(timeout=5)
    writer.close(timeout=5)
    stats = writer.stats
    assert stats["dropped"] == 0 and stats["written"] == 5
    assert stats["retries"] == 8
    assert [len(b) for b in fake.batches] == [5]
    assert "will retry" in caplog.text


def test_rejections_are_logged_with_a_count(caplog):
    fake = FakeProfiles()
    fake.gate.clear()
    writer = EventWriter(fake, batch_size=1, flush_interval=0.01, max_pending=3)
    with caplog.at_level(logging.WARNING, logger="segmint.writer"):
        writer.submit(views(3))
        assert not writer.submit(views(2))
    fake.gate.set()
    writer.close(timeout=5)
    assert "2 events rejected" in caplog.text


def test_close_returns_while_the_store_stays_down_and_counts_the_loss():
    fake = UnavailableStoreProfiles(failures=10**9)
    writer = EventWriter(fake, batch_size=100, flush_interval=0.01, max_retries=2,
                         retry_delay=0.001, max_retry_delay=0.002)
    writer.submit(views(5))
    done = threading.Event()
    threading.Thread(target=lambda: (writer.close(), done.set()), daemon=True).start()
    assert done.wait(10), "close() hung on a store that stays down"
    assert writer.stats["dropped"] == 5 and writer.stats["written"] == 0


class GatedStore(MemoryStore):
    """A store whose appends wait for ``gate``: the events stay queued meanwhile."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()

    def append(self, events):
        self.gate.wait(5)
        return super().append(events)


def test_reads_see_queued_events_before_they_are_stored_and_count_them_once():
    store = GatedStore()
    profiles = Profiles(store)
    assert profiles.get(visitor_id="v1").page_views == 0  # cached: an unknown visitor
    writer = EventWriter(profiles, batch_size=10, flush_interval=0.01)
    assert writer.submit(views(2))
    assert profiles.get(visitor_id="v1").page_views == 2  # not stored yet: still queued
    assert profiles.peek(visitor_id="v1").page_views == 2
    store.gate.set()
    writer.flush(5)
    assert store.load(visitor_id="v1").page_views == 2
    assert profiles.get(visitor_id="v1").page_views == 2  # stored, and no longer overlaid
    writer.close()


def test_a_dropped_batch_is_no_longer_shown():
    fake = FakeProfiles(failures=10)
    writer = EventWriter(fake, batch_size=10, flush_interval=0.01, max_retries=1, retry_delay=0.001)
    writer.submit(views(3))
    writer.flush(5)
    writer.close()
    assert fake.noted == 3 and fake.forgotten == 3


def test_a_full_queue_is_logged_once_per_interval_with_the_events_rejected(caplog):
    fake = FakeProfiles()
    fake.gate.clear()  # nothing drains
    writer = EventWriter(fake, batch_size=2, flush_interval=0.01, max_pending=2, log_interval=3600)
    with caplog.at_level(logging.WARNING, logger="segmint.writer"):
        assert writer.submit(views(2))
        for size in (3, 4, 5):
            assert not writer.submit(views(size))
    lines = [r.getMessage() for r in caplog.records if "queue full" in r.getMessage()]
    assert len(lines) == 1 and "3 events rejected" in lines[0]  # the first rejection; the rest counted
    assert writer.stats["rejected"] == 12
    fake.gate.set()
    writer.close(timeout=5)


def test_a_batch_never_splits_one_submit():
    """A page's view and impressions (one submit, one time) are stored in one batch: split,
    the cache could not extend the visitor's profile with the second half."""
    fake = FakeProfiles()
    fake.gate.clear()  # hold the thread so the queue fills before batches are taken
    writer = EventWriter(fake, batch_size=4, flush_interval=0.01)
    writer.submit(views(1))  # taken alone while the gate is shut
    time.sleep(0.05)
    for size in (3, 3, 6, 1):
        writer.submit(views(size))
    fake.gate.set()
    writer.close(timeout=5)
    assert [len(b) for b in fake.batches] == [1, 3, 3, 4, 3]  # only a submit larger than a batch splits
    assert writer.stats["written"] == 14 and writer.stats["pending"] == 0
